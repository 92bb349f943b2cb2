"""工作评比: the formula (normalisation, weights, empty measures, ties, explanations), weights, publishing."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import ranking
from engine.clock import FrozenClock
from engine.errors import Conflict, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.users import User
from engine.ranking import (
    DEFAULT_WEIGHTS,
    MEASURE_KEYS,
    MEASURES,
    CountyScore,
    CountyValues,
    effective_weights,
    normalise,
    parse_weights,
    publish_ranking,
    published_ranking,
    rank_counties,
    score_counties,
    scores_from_json,
    set_weights,
)
from engine.statistics import month_period
from tests.engine.statistics_support import October, bj, build_october, case_row
from tests.fixtures.directory import Org

SPECS = {spec.key: spec for spec in MEASURES}
D = Decimal
OCTOBER = month_period(2025, 10)


def county(code: str, **values: float | None) -> CountyValues:
    return CountyValues(int(code), code, f'县{code}', {key: values.get(key) for key in MEASURE_KEYS})


def only(**weights: int) -> dict[str, Decimal]:
    return {key: D(weights.get(key, 0)) for key in MEASURE_KEYS}


def line(score: CountyScore, key: str) -> ranking.MeasureScore:
    return next(m for m in score.measures if m.spec.key == key)


# -- normalisation ------------------------------------------------------------------------------------------

def test_a_rate_where_higher_is_better_counts_as_itself() -> None:
    assert normalise(SPECS['on_time_rate'], 0.92, 0.5, 1.0) == D('0.9200')
    assert normalise(SPECS['mediation_success_rate'], 2 / 3, None, None) == D('0.6667')


def test_a_rate_where_lower_is_better_counts_as_its_complement() -> None:
    assert normalise(SPECS['overdue_rate'], 0.1, 0.0, 0.5) == D('0.9000')


def test_zero_out_of_contact_is_all_or_nothing() -> None:
    assert (normalise(SPECS['zero_out_of_contact'], 1.0, 0, 1), normalise(SPECS['zero_out_of_contact'], 0.0, 0, 1)) == (
        D('1.0000'), D('0.0000'))


def test_range_measures_are_min_max_across_the_counties() -> None:
    hours = SPECS['avg_task_hours']  # lower is better
    assert [normalise(hours, v, 10.0, 50.0) for v in (10.0, 20.0, 50.0)] == [D('1.0000'), D('0.7500'), D('0.0000')]
    closed = SPECS['cases_closed']  # higher is better
    assert [normalise(closed, v, 0.0, 8.0) for v in (0.0, 2.0, 8.0)] == [D('0.0000'), D('0.2500'), D('1.0000')]


def test_range_measure_all_equal_scores_one() -> None:
    assert normalise(SPECS['avg_task_hours'], 12.0, 12.0, 12.0) == D('1.0000')


def test_no_value_no_normalised_value() -> None:
    assert normalise(SPECS['on_time_rate'], None, None, None) is None


# -- scores ---------------------------------------------------------------------------------------------------

def test_score_is_the_weighted_sum_on_a_scale_of_100() -> None:
    [score] = score_counties([county('1', on_time_rate=0.8, overdue_rate=0.25)], only(on_time_rate=3, overdue_rate=1))
    # 100 × (3 × 0.8 + 1 × 0.75) / 4
    assert score.score == D('78.75')
    assert (line(score, 'on_time_rate').share, line(score, 'on_time_rate').contribution) == (D('75.00'), D('60.00'))
    assert (line(score, 'overdue_rate').share, line(score, 'overdue_rate').contribution) == (D('25.00'), D('18.75'))


def test_weights_are_relative() -> None:
    counties = [county('1', on_time_rate=0.8, avg_task_hours=20.0), county('2', on_time_rate=0.6, avg_task_hours=10.0)]
    small = score_counties(counties, only(on_time_rate=3, avg_task_hours=1))
    large = score_counties(counties, only(on_time_rate=30, avg_task_hours=10))
    assert [(s.code, s.score) for s in small] == [(s.code, s.score) for s in large]


def test_a_measure_without_data_is_left_out_and_its_weight_shared() -> None:
    counties = [county('1', on_time_rate=0.5, mediation_success_rate=1.0), county('2', on_time_rate=0.5)]
    first, second = score_counties(counties, only(on_time_rate=50, mediation_success_rate=50))
    assert (first.code, first.score) == ('1', D('75.00'))
    # 县2 closed no mediation: on-time alone carries the whole weight, neither a penalty nor a bonus.
    assert (second.code, second.score) == ('2', D('50.00'))
    missing = line(second, 'mediation_success_rate')
    assert (missing.raw, missing.normalised, missing.share, missing.contribution) == (None, None, None, None)
    assert (line(second, 'on_time_rate').share, line(second, 'on_time_rate').contribution) == (D('100.00'), D('50.00'))


def test_a_zero_weight_contributes_nothing() -> None:
    [score] = score_counties([county('1', on_time_rate=0.5, cases_closed=9.0)], only(on_time_rate=1))
    assert score.score == D('50.00')
    assert (line(score, 'cases_closed').share, line(score, 'cases_closed').contribution) == (D('0.00'), D('0.00'))


def test_a_county_without_data_has_no_score_and_comes_last() -> None:
    ranked = score_counties([county('9'), county('1', on_time_rate=0.1)], only(on_time_rate=1))
    assert [(s.code, s.score, s.rank) for s in ranked] == [('1', D('10.00'), 1), ('9', None, 2)]
    assert not ranked[1].tied


@pytest.mark.parametrize('seed', range(20))
def test_explanation_adds_up_to_the_score(seed: int) -> None:
    rng = random.Random(seed)
    counties = [county(f'{i:02d}', on_time_rate=rng.choice([None, rng.random()]), overdue_rate=rng.random(),
                       mediation_success_rate=rng.choice([None, rng.random()]),
                       zero_out_of_contact=rng.choice([0.0, 1.0]), avg_task_hours=rng.uniform(1, 200),
                       cases_closed=float(rng.randrange(50))) for i in range(12)]
    weights = {key: D(rng.randrange(0, 40)) for key in MEASURE_KEYS} | {'overdue_rate': D(7)}
    for score in score_counties(counties, weights):
        assert score.score == sum(m.contribution for m in score.measures if m.contribution is not None)
        assert score.score is not None and D(0) <= score.score <= D('100.05')
        assert sum(m.share for m in score.measures if m.share is not None) == pytest.approx(100, abs=0.05)


def test_ranks_follow_the_score() -> None:
    counties = [county('1', on_time_rate=0.2), county('2', on_time_rate=0.9), county('3', on_time_rate=0.5)]
    ranked = score_counties(counties, DEFAULT_WEIGHTS)
    assert [(s.code, s.rank) for s in ranked] == [('2', 1), ('3', 2), ('1', 3)]


def test_ties_go_to_more_measures_with_data_then_to_the_code() -> None:
    counties = [county('30', on_time_rate=0.5), county('20', on_time_rate=0.5),
                county('10', on_time_rate=0.5, mediation_success_rate=0.5), county('40', on_time_rate=0.4)]
    ranked = score_counties(counties, only(on_time_rate=1, mediation_success_rate=1))
    assert [(s.code, s.score, s.rank, s.tied) for s in ranked] == [
        ('10', D('50.00'), 1, True), ('20', D('50.00'), 2, True), ('30', D('50.00'), 3, True),
        ('40', D('40.00'), 4, False)]
    # The same input in another order ranks the same way.
    again = score_counties(list(reversed(counties)), only(on_time_rate=1, mediation_success_rate=1))
    assert [s.code for s in again] == [s.code for s in ranked]


def test_snapshot_json_round_trip() -> None:
    ranked = score_counties([county('1', on_time_rate=0.5, avg_task_hours=3.0), county('2')], DEFAULT_WEIGHTS)
    assert scores_from_json(ranking.scores_to_json(ranked)) == ranked


# -- weights --------------------------------------------------------------------------------------------------

def test_default_weights_sum_to_100() -> None:
    assert sum(DEFAULT_WEIGHTS.values()) == 100


@pytest.mark.parametrize(('change', 'field'), [
    ({'on_time_rate': '-1'}, 'on_time_rate'),
    ({'on_time_rate': 'abc'}, 'on_time_rate'),
    ({'on_time_rate': '1.234'}, 'on_time_rate'),
    ({'on_time_rate': '1001'}, 'on_time_rate'),
    ({'on_time_rate': 'NaN'}, 'on_time_rate'),
    ({'on_time_rate': None}, 'on_time_rate'),
    ({'speed': '3'}, 'speed'),
    (dict.fromkeys(MEASURE_KEYS, '0'), 'weights'),
])
def test_bad_weights_are_refused(change: dict[str, str | None], field: str) -> None:
    raw = {key: str(value) for key, value in DEFAULT_WEIGHTS.items()} | change
    with pytest.raises(ValidationFailed) as caught:
        parse_weights(raw)
    assert field in caught.value.fields


def test_weights_may_be_zero_except_all() -> None:
    assert parse_weights({key: '0' for key in MEASURE_KEYS} | {'on_time_rate': '0.5'})['on_time_rate'] == D('0.50')


def test_weights_come_from_the_nearest_unit_that_set_them(session: Session, org: Org, clock: FrozenClock,
                                                          create_member: Callable[..., User]) -> None:
    boss = create_member('boss', 'supervisor', org.province)
    assert effective_weights(session, org.city).source is None
    assert effective_weights(session, org.city).values == DEFAULT_WEIGHTS
    set_weights(session, org.province, {key: '10' for key in MEASURE_KEYS}, actor=boss)
    session.commit()
    inherited = effective_weights(session, org.city)
    assert inherited.source is org.province and set(inherited.values.values()) == {D('10.00')}
    set_weights(session, org.city, {key: '0' for key in MEASURE_KEYS} | {'on_time_rate': '1'}, actor=boss)
    session.commit()
    own = effective_weights(session, org.city)
    assert own.source is org.city and own.values['on_time_rate'] == D('1.00') and own.set_by is boss
    assert effective_weights(session, org.province).values['on_time_rate'] == D('10.00')


def test_changing_weights_is_audited(session: Session, org: Org, clock: FrozenClock,
                                     create_member: Callable[..., User]) -> None:
    boss = create_member('boss', 'supervisor', org.city)
    set_weights(session, org.city, {key: '5' for key in MEASURE_KEYS}, actor=boss)
    session.commit()
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'ranking.weights_changed')).one()
    assert event.actor_id == boss.id and event.org_path == org.city.path
    assert event.before == {key: str(value) for key, value in DEFAULT_WEIGHTS.items()}
    assert event.after == dict.fromkeys(MEASURE_KEYS, '5.00')


def test_bad_weights_change_nothing(session: Session, org: Org, clock: FrozenClock,
                                    create_member: Callable[..., User]) -> None:
    boss = create_member('boss', 'supervisor', org.city)
    with pytest.raises(ValidationFailed):
        set_weights(session, org.city, {key: '-5' for key in MEASURE_KEYS}, actor=boss)
    session.rollback()
    assert effective_weights(session, org.city).source is None
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                          .where(AuditEvent.kind == 'ranking.weights_changed')) == 0


def test_counties_and_townships_rank_nothing(session: Session, org: Org, clock: FrozenClock,
                                             create_member: Callable[..., User]) -> None:
    boss = create_member('boss', 'supervisor', org.county)
    with pytest.raises(ValidationFailed):
        rank_counties(session, org.county, OCTOBER, DEFAULT_WEIGHTS)
    with pytest.raises(ValidationFailed):
        set_weights(session, org.county, {key: '5' for key in MEASURE_KEYS}, actor=boss)


# -- the October ranking of 益阳市 (tests/engine/statistics_support.py) ---------------------------------------

@pytest.fixture
def october(session: Session, clock: FrozenClock, org: Org, people: dict[str, User],
            deploy_file: Callable[[str], object]) -> October:
    return build_october(session, clock, org, people, deploy_file)


def test_october_ranking_of_the_city(session: Session, october: October) -> None:
    first, second = rank_counties(session, october.org.city, OCTOBER, DEFAULT_WEIGHTS)
    # 桃江: on time 1/2 → 15.00; overdue 1/2 → 10.00; mediation 2/3 → 13.33; 零脱管 → 20.00;
    # 72 h is the slower of the two → 0.00; 5 cases closed (weight 0) → 0.00.
    assert (first.code, first.rank, first.score) == ('430922', 1, D('58.33'))
    assert [line(first, key).contribution for key in MEASURE_KEYS] == [
        D('15.00'), D('10.00'), D('13.33'), D('20.00'), D('0.00'), D('0.00')]
    # 赫山 closed no mediation: the other 80 points of weight are scaled to 100. On time 2/3 → 25.00;
    # overdue 2/3 → 0.3333 × 25 = 8.33; one 脱管 → 0.00; 13.3 h is the faster → 12.50.
    assert (second.code, second.rank, second.score) == ('430903', 2, D('45.83'))
    assert [line(second, key).contribution for key in MEASURE_KEYS] == [
        D('25.00'), D('8.33'), None, D('0.00'), D('12.50'), D('0.00')]
    hours = line(second, 'avg_task_hours')
    assert (hours.low, hours.high) == (pytest.approx(40 / 3), pytest.approx(72))


def test_the_province_ranks_every_county_below_it(session: Session, october: October) -> None:
    ranked = rank_counties(session, october.org.province, OCTOBER, DEFAULT_WEIGHTS)
    assert [(s.code, s.score) for s in ranked] == [('430922', D('58.33')), ('430903', D('45.83'))]


def test_publishing_freezes_the_month(session: Session, october: October, people: dict[str, User]) -> None:
    chief = people['chief']
    snapshot = publish_ranking(session, october.org.city, OCTOBER, actor=chief)
    session.commit()
    assert snapshot.month == '2025-10' and snapshot.weights['on_time_rate'] == '30'
    # A correction afterwards (a late-recorded success at 赫山) changes the live ranking, not the published one.
    case_row(session, october.org.other_county, 'dispute_mediation', '2025-10-01 09:00', closed='2025-10-20 09:00',
             outcome='调解成功')
    live = rank_counties(session, october.org.city, OCTOBER, DEFAULT_WEIGHTS)
    # 30 × 0.6667 + 20 × 0.3333 + 20 × 1 + 20 × 0 + 10 × 1, now over the full 100 of weight
    assert [(s.code, s.score) for s in live] == [('430922', D('58.33')), ('430903', D('56.67'))]
    stored = published_ranking(session, october.org.city, OCTOBER)
    assert stored is not None
    assert [(s.code, s.score) for s in scores_from_json(stored.results)] == [
        ('430922', D('58.33')), ('430903', D('45.83'))]
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'ranking.published')).one()
    assert event.after['ranking'] == [[1, '430922', '58.33'], [2, '430903', '45.83']]


def test_a_month_is_published_once(session: Session, october: October, people: dict[str, User]) -> None:
    publish_ranking(session, october.org.city, OCTOBER, actor=people['chief'])
    session.commit()
    with pytest.raises(Conflict):
        publish_ranking(session, october.org.city, OCTOBER, actor=people['chief'])


def test_a_running_month_cannot_be_published(session: Session, october: October, people: dict[str, User],
                                             clock: FrozenClock) -> None:
    clock.set(bj('2025-10-31 23:59'))
    with pytest.raises(Conflict):
        publish_ranking(session, october.org.city, OCTOBER, actor=people['chief'])
    assert published_ranking(session, october.org.city, OCTOBER) is None
