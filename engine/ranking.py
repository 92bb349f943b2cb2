"""工作评比: the monthly ranking of the counties under a city or the province, every score explained.

The formula (documented for users in ``docs/ranking.md``):

1. Each measure of ``MEASURES`` is taken for each county over the month (``engine.statistics``).
2. It is normalised to 0–1, 1 being best:

   * ``target`` measures are rates, scored against their ideal: a rate where higher is better counts as
     itself (按期办结率 0.92 → 0.92), one where lower is better as 1 − rate (逾期率 0.10 → 0.90); 零脱管 is
     1 or 0. A county's normalised value does not depend on the other counties.
   * ``range`` measures (durations, counts) are scored min–max across the counties compared that have a
     value: (value − min) / (max − min), or (max − value) / (max − min) where lower is better. When every
     county has the same value (or only one has any), each gets 1.

   The normalised value is rounded to four decimals.
3. A measure a county has no data for (an empty denominator: no mediation closed that month) is left out
   of that county's score, and the weights of the measures it does have are scaled up to sum to 100, so
   the county is neither punished nor rewarded for it. The explanation says so.
4. contribution = 100 × weight / (sum of the weights of the county's measures with data) × normalised,
   rounded to 0.01; score = the sum of the contributions, so the explanation always adds up to the score
   exactly. A county with no data for any weighted measure has no score.
5. Rank: score descending; equal scores are ordered by the number of measures with data (more first), then
   by the unit code (ascending), so every county gets its own rank and the order never changes between
   runs; tied counties are flagged. Counties without a score come last, by code.

Weights are relative and stored per unit (``RankingWeight``): a city's ranking uses the city's own weights,
else the nearest ancestor's, else the defaults below. A published month (``publish_ranking``) is frozen in a
``RankingSnapshot`` and never recomputed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import now
from engine.db import starts_with
from engine.errors import Conflict, ValidationFailed
from engine.i18n import N_
from engine.models.org_units import OrgUnit
from engine.models.ranking import RankingSnapshot, RankingWeight
from engine.models.users import User
from engine.statistics import Period, group_stats

#: the levels whose counties are ranked
RANKING_LEVELS = ('province', 'city')
#: a weight is at most this (weights are relative; 0–100 reads naturally)
MAX_WEIGHT = Decimal('1000')
HUNDRED = Decimal('100')
_NORMAL = Decimal('0.0001')
_CENT = Decimal('0.01')

MSG_INVALID = N_('权重有误，请检查标出的字段。')
MSG_WEIGHT = N_('请输入 0 到 1000 之间的数，最多两位小数。')
MSG_SUM = N_('权重之和必须大于 0。')
MSG_UNKNOWN = N_('没有这个评比指标。')
MSG_NOT_RANKED = N_('只有省、市两级排列所辖县（市、区）的工作评比。')
MSG_PUBLISHED = N_('该月的评比结果已经发布，不能再次发布。')
MSG_NOT_OVER = N_('该月尚未结束，不能发布评比结果。')
MSG_CHANGED = N_('权重刚被他人修改，请刷新后重试。')


@dataclass(frozen=True)
class MeasureSpec:
    """A measure the ranking can weigh.

    :param key: the ``engine.statistics.UnitStats`` attribute
    :param label: its name (msgid)
    :param higher_is_better: the direction of "good"
    :param normalisation: ``target`` (a rate against its ideal) or ``range`` (min–max across the counties)
    :param default_weight: the weight when no unit on the path set one
    """

    key: str
    label: str
    higher_is_better: bool
    normalisation: str
    default_weight: Decimal


#: the measures and their default weights (sum 100); see docs/ranking.md
MEASURES: tuple[MeasureSpec, ...] = (
    MeasureSpec('on_time_rate', N_('按期办结率'), True, 'target', Decimal('30')),
    MeasureSpec('overdue_rate', N_('逾期率'), False, 'target', Decimal('20')),
    MeasureSpec('mediation_success_rate', N_('调解成功率'), True, 'target', Decimal('20')),
    MeasureSpec('zero_out_of_contact', N_('零脱管'), True, 'target', Decimal('20')),
    MeasureSpec('avg_task_hours', N_('平均办理时长'), False, 'range', Decimal('10')),
    MeasureSpec('cases_closed', N_('办结案件数'), True, 'range', Decimal('0')),
)
MEASURE_KEYS = tuple(spec.key for spec in MEASURES)
DEFAULT_WEIGHTS: Mapping[str, Decimal] = {spec.key: spec.default_weight for spec in MEASURES}


# -- the formula ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeasureScore:
    """One line of a score's explanation.

    :param raw: the measure's value (None: no data)
    :param normalised: 0–1, 1 best (None: no data)
    :param weight: the configured weight
    :param share: the weight's share of the county's weights with data, in percent (None: left out)
    :param contribution: points added to the score (None: left out)
    :param low: the smallest value across the counties (``range`` measures)
    :param high: the largest value across the counties (``range`` measures)
    """

    spec: MeasureSpec
    raw: float | None
    normalised: Decimal | None
    weight: Decimal
    share: Decimal | None
    contribution: Decimal | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class CountyScore:
    """A county's place in the ranking and the explanation of its score.

    :param score: 0–100, the sum of the contributions (None: no data for any weighted measure)
    :param rank: 1-based and unique (see the tie rule in the module docstring)
    :param tied: another county has the same score
    """

    unit_id: int
    code: str
    name: str
    score: Decimal | None
    rank: int
    tied: bool
    measures: tuple[MeasureScore, ...]

    @property
    def measures_with_data(self) -> int:
        """How many weighted measures had data."""
        return sum(1 for m in self.measures if m.contribution is not None)


@dataclass(frozen=True)
class CountyValues:
    """The raw measures of one county, the input of :func:`score_counties`."""

    unit_id: int
    code: str
    name: str
    values: Mapping[str, float | None]


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


def normalise(spec: MeasureSpec, value: float | None, low: float | None, high: float | None) -> Decimal | None:
    """``value`` on 0–1 (1 best), by the spec's normalisation; None for no value.

    :param low: the smallest value across the counties compared (``range`` only)
    :param high: the largest
    """
    if value is None:
        return None
    if spec.normalisation == 'target':
        rate = min(max(_decimal(value), Decimal(0)), Decimal(1))
        result = rate if spec.higher_is_better else 1 - rate
    elif low is None or high is None or high == low:
        result = Decimal(1)
    else:
        span = _decimal(high) - _decimal(low)
        gap = _decimal(value) - _decimal(low) if spec.higher_is_better else _decimal(high) - _decimal(value)
        result = gap / span
    return result.quantize(_NORMAL, ROUND_HALF_UP)


def score_counties(counties: Sequence[CountyValues], weights: Mapping[str, Decimal]) -> list[CountyScore]:
    """Score and rank ``counties`` with ``weights`` (missing keys weigh 0); the formula of the module docstring.

    :return: the counties in rank order
    """
    bounds = {spec.key: _bounds(spec, counties) for spec in MEASURES}
    scored = [_score_one(county, weights, bounds) for county in counties]
    scored.sort(key=_rank_key)
    repeats = Counter(score for _, score, _ in scored if score is not None)
    return [CountyScore(county.unit_id, county.code, county.name, score, index + 1,
                        score is not None and repeats[score] > 1, lines)
            for index, (county, score, lines) in enumerate(scored)]


def _bounds(spec: MeasureSpec, counties: Sequence[CountyValues]) -> tuple[float | None, float | None]:
    values = [v for c in counties if (v := c.values.get(spec.key)) is not None]
    return (min(values), max(values)) if values else (None, None)


def _score_one(county: CountyValues, weights: Mapping[str, Decimal],
               bounds: Mapping[str, tuple[float | None, float | None]]
               ) -> tuple[CountyValues, Decimal | None, tuple[MeasureScore, ...]]:
    normalised = {spec.key: normalise(spec, county.values.get(spec.key), *bounds[spec.key]) for spec in MEASURES}
    counted = sum((weights.get(k, Decimal(0)) for k, n in normalised.items() if n is not None), Decimal(0))
    lines = []
    for spec in MEASURES:
        weight, value = weights.get(spec.key, Decimal(0)), normalised[spec.key]
        share = contribution = None
        if value is not None and counted > 0:
            share = (HUNDRED * weight / counted).quantize(_CENT, ROUND_HALF_UP)
            contribution = (HUNDRED * weight * value / counted).quantize(_CENT, ROUND_HALF_UP)
        low, high = bounds[spec.key] if spec.normalisation == 'range' else (None, None)
        lines.append(MeasureScore(spec, county.values.get(spec.key), value, weight, share, contribution, low, high))
    score = sum((m.contribution for m in lines if m.contribution is not None), Decimal(0)) if counted > 0 else None
    return county, score, tuple(lines)


def _rank_key(item: tuple[CountyValues, Decimal | None, tuple[MeasureScore, ...]]) -> tuple[Any, ...]:
    county, score, lines = item
    with_data = sum(1 for m in lines if m.contribution is not None)
    return (score is None, -(score or 0), -with_data, county.code)


# -- ranking a unit's counties ------------------------------------------------------------------------------

def counties_under(session: Session, unit: OrgUnit) -> list[OrgUnit]:
    """The county-level units below ``unit``, in code order."""
    return list(session.scalars(sa.select(OrgUnit).where(OrgUnit.level == 'county', OrgUnit.id != unit.id,
                                                         starts_with(OrgUnit.path, unit.path))
                                .order_by(OrgUnit.code)))


def check_ranked_unit(unit: OrgUnit) -> None:
    """Refuse a unit whose counties are not ranked (a county or township).

    :raise ValidationFailed: it is not a city or the province
    """
    if unit.level not in RANKING_LEVELS:
        raise ValidationFailed(MSG_NOT_RANKED, {'unit': [MSG_NOT_RANKED]})


def rank_counties(session: Session, parent_unit: OrgUnit, month: Period, weights: Mapping[str, Decimal], *,
                  at: datetime | None = None) -> list[CountyScore]:
    """Rank the counties under ``parent_unit`` for ``month`` with ``weights``.

    :param month: the month (a ``Period``; any period works, the ranking is monthly by convention)
    :param weights: ``{measure: weight}``, e.g. ``effective_weights(session, parent_unit).values``
    :param at: now (the engine clock by default): the snapshot measures of a running month are taken now
    :return: the counties in rank order, each with its explanation
    """
    check_ranked_unit(parent_unit)
    counties = counties_under(session, parent_unit)
    stats = group_stats(session, parent_unit, counties, month, at=at)
    values = [CountyValues(s.unit.id, s.unit.code, s.unit.name, {key: s.measure(key) for key in MEASURE_KEYS})
              for s in stats]
    return score_counties(values, weights)


# -- weights ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Weights:
    """The weights in force for a unit's ranking and where they come from.

    :param source: the unit that set them (this one or an ancestor); None for the defaults
    """

    values: Mapping[str, Decimal]
    source: OrgUnit | None
    set_by: User | None
    set_dt: datetime | None


def effective_weights(session: Session, unit: OrgUnit) -> Weights:
    """The weights of the nearest unit on ``unit``'s path (itself first) that set any, else the defaults."""
    ids = [int(part) for part in unit.path.strip('/').split('/') if part]
    rows = list(session.scalars(sa.select(RankingWeight).where(RankingWeight.org_unit_id.in_(ids))))
    for unit_id in reversed(ids):
        own = [row for row in rows if row.org_unit_id == unit_id]
        if own:
            values = dict.fromkeys(MEASURE_KEYS, Decimal(0)) | {row.measure: row.weight for row in own
                                                                 if row.measure in MEASURE_KEYS}
            latest = max(own, key=lambda row: row.set_dt)
            return Weights(values, own[0].org_unit, latest.set_by, latest.set_dt)
    return Weights(dict(DEFAULT_WEIGHTS), None, None, None)


def parse_weights(raw: Mapping[str, Any]) -> dict[str, Decimal]:
    """Validate a full set of weights: every measure, each 0–1000 with at most two decimals, sum > 0.

    :raise ValidationFailed: naming each bad field (the measure key)
    """
    problems: dict[str, list[str]] = {key: [MSG_UNKNOWN] for key in raw if key not in MEASURE_KEYS}
    weights: dict[str, Decimal] = {}
    for key in MEASURE_KEYS:
        weight = _weight(raw.get(key))
        if weight is None:
            problems[key] = [MSG_WEIGHT]
        else:
            weights[key] = weight
    if not problems and sum(weights.values()) <= 0:
        problems['weights'] = [MSG_SUM]
    if problems:
        raise ValidationFailed(MSG_INVALID, problems)
    return weights


def _weight(value: Any) -> Decimal | None:
    try:
        weight = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not weight.is_finite() or weight < 0 or weight > MAX_WEIGHT or weight != weight.quantize(_CENT):
        return None
    return weight.quantize(_CENT)


def set_weights(session: Session, unit: OrgUnit, raw: Mapping[str, Any], *, actor: User) -> Weights:
    """Store the ranking weights of ``unit``'s counties (validated, audited); the caller commits.

    :param raw: ``{measure: weight}`` for every measure, as numbers or strings
    :raise ValidationFailed: a weight is missing, negative, too large, or all are zero
    """
    check_ranked_unit(unit)
    weights = parse_weights(raw)
    before = effective_weights(session, unit)
    rows = {row.measure: row for row in session.scalars(
        sa.select(RankingWeight).where(RankingWeight.org_unit_id == unit.id))}
    stamp = now()
    try:
        with session.begin_nested():  # another editor's first save at the same moment: theirs stands
            for key, weight in weights.items():
                row = rows.get(key) or RankingWeight(org_unit_id=unit.id, measure=key)
                row.weight, row.set_by_id, row.set_dt = weight, actor.id, stamp
                session.add(row)
    except IntegrityError:
        raise Conflict(MSG_CHANGED) from None
    audit.record(session, 'ranking.weights_changed', actor=actor, org_path=unit.path,
                 before={key: str(value) for key, value in before.values.items()},
                 after={key: str(value) for key, value in weights.items()},
                 note=None if before.source is unit else '此前沿用上级或默认权重')
    return effective_weights(session, unit)


# -- published months -------------------------------------------------------------------------------------

def scores_to_json(scores: Sequence[CountyScore]) -> dict[str, Any]:
    """A ranking as stored in a snapshot (decimals as strings)."""
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {'counties': [
        {'unit_id': s.unit_id, 'code': s.code, 'name': s.name, 'score': text(s.score), 'rank': s.rank,
         'tied': s.tied, 'measures': [
             {'key': m.spec.key, 'raw': m.raw, 'normalised': text(m.normalised), 'weight': text(m.weight),
              'share': text(m.share), 'contribution': text(m.contribution), 'low': m.low, 'high': m.high}
             for m in s.measures]}
        for s in scores]}


def scores_from_json(data: Mapping[str, Any]) -> list[CountyScore]:
    """A snapshot's ranking read back (measures no longer defined are skipped)."""
    specs = {spec.key: spec for spec in MEASURES}

    def number(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return [CountyScore(c['unit_id'], c['code'], c['name'], number(c['score']), c['rank'], c['tied'], tuple(
        MeasureScore(specs[m['key']], m['raw'], number(m['normalised']), Decimal(m['weight']), number(m['share']),
                     number(m['contribution']), m['low'], m['high'])
        for m in c['measures'] if m['key'] in specs)) for c in data['counties']]


def published_ranking(session: Session, unit: OrgUnit, month: Period) -> RankingSnapshot | None:
    """The snapshot of ``unit``'s ranking for ``month``, if it was published."""
    return session.scalars(sa.select(RankingSnapshot).where(RankingSnapshot.org_unit_id == unit.id,
                                                            RankingSnapshot.month == month.token)).one_or_none()


def publish_ranking(session: Session, unit: OrgUnit, month: Period, *, actor: User,
                    at: datetime | None = None) -> RankingSnapshot:
    """Compute and freeze ``unit``'s ranking of ``month`` with the weights in force (audited).

    :raise Conflict: the month is not over yet, or was published already
    """
    check_ranked_unit(unit)
    instant = at or now()
    if month.kind != 'month' or not month.is_complete(instant):
        raise Conflict(MSG_NOT_OVER)
    if published_ranking(session, unit, month) is not None:
        raise Conflict(MSG_PUBLISHED)
    weights = effective_weights(session, unit).values
    scores = rank_counties(session, unit, month, weights, at=instant)
    snapshot = RankingSnapshot(org_unit_id=unit.id, month=month.token, published_by_id=actor.id, published_dt=instant,
                               weights={key: str(value) for key, value in weights.items()},
                               results=scores_to_json(scores))
    try:
        with session.begin_nested():  # two supervisors publishing at once: the second gets a conflict
            session.add(snapshot)
    except IntegrityError:
        raise Conflict(MSG_PUBLISHED) from None
    audit.record(session, 'ranking.published', actor=actor, org_path=unit.path,
                 after={'month': month.token, 'weights': snapshot.weights,
                        'ranking': [[s.rank, s.code, None if s.score is None else str(s.score)] for s in scores]})
    return snapshot
