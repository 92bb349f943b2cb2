"""Supervisors' statistics: the measures of an org unit's subtree over a period, per child unit, per BPMN step.

Every measure is aggregated in SQL, in a handful of grouped queries per page, each reading one index range:
the rows of the subtree are counted per org path (at most one result row per unit, however many rows are
counted), and those per-unit counts are added up per group (the unit's children, or the counties being
ranked). A unit's figure is the sum of its groups' counts, and every rate is computed from summed
numerators and denominators, never averaged. A measure
whose denominator is empty is None (shown as "—"), not zero.

The measures (``UnitStats``), for the period ``[first, last]`` in local (Asia/Shanghai) days:

* 新收案件 ``cases_opened``: cases created in the period at a unit of the subtree;
* 办结案件 ``cases_closed``: cases closed (status closed, not cancelled) in the period;
* 在办任务 ``open_tasks``: human tasks open at the end of the period (or now, while it runs): created
  before that instant and not completed or cancelled by it;
* 逾期任务 ``overdue_tasks``: those of them already past their due time at that instant;
* 逾期率 ``overdue_rate``: overdue_tasks / open_tasks;
* 按期办结率 ``on_time_rate``: tasks completed in the period no later than their due time / tasks completed
  in the period that had a due time (cancelled tasks count in neither);
* 平均办理时长 ``avg_task_hours``: mean of completed − created over the tasks completed in the period;
* 调解成功率 ``mediation_success_rate``: mediation cases closed in the period with a settled outcome /
  those closed with any registered mediation outcome (``register_mediation_outcomes``: for the disputes
  lifecycle 调解成功 / 调解成功 + 调解不成 + 终止; 不予受理 was never mediated and counts in neither);
* 脱管 ``out_of_contact``: 脱管 events in the period, where an event is a completed check whose finding
  says the offender is out of contact (``register_out_of_contact``: for corrections, the 核查监控报警
  task of ``corrections_alarm`` completed with 核查结论 = 失联, as the task's audit event records it);
  零脱管 ``zero_out_of_contact`` is True when there was none; 零脱管天数 ``out_of_contact_streak_days`` is
  the days from the last event (ever, up to the end of the period) to the period's last day, or since the
  unit was set up when it never had one.

Time per BPMN step (``step_durations``): per process key and user task, the count, mean and 90th
percentile (nearest rank) of completed − created over the tasks completed in the period, overall and per
group. Tasks and events are counted where they were handled (their ``org_path``); cases where they are now.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from engine.access import is_wide_path
from engine.clock import LOCAL_ZONE, now
from engine.db import starts_with
from engine.definitions import process_bundle
from engine.errors import ValidationFailed
from engine.i18n import N_
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask

#: the kinds of period a supervisor picks from; ``month`` (the previous full month) is the default
PERIOD_KINDS = ('month', 'quarter', 'year', 'custom')
#: a custom range may span at most this many days
MAX_CUSTOM_DAYS = 3 * 366
#: nothing before this year is asked for
FIRST_YEAR = 2000

MSG_INVALID = N_('统计期间有误，请检查。')
MSG_PERIOD = N_('请选择上月、上季度、上年、某月（YYYY-MM）、某季度（YYYY-Q1）、某年（YYYY）或自定义期间。')
MSG_DATE = N_('请输入 YYYY-MM-DD 格式的日期。')
MSG_ORDER = N_('结束日期不能早于开始日期。')
MSG_TOO_LONG = N_('自定义期间最长三年。')
MSG_FUTURE = N_('所选期间尚未开始。')
MSG_TOO_EARLY = N_('所选期间过早：统计从 2000 年开始。')


# -- where the domain measures come from ------------------------------------------------------------------

@dataclass(frozen=True)
class MediationOutcomes:
    """How the cases of a mediation lifecycle end, for 调解成功率.

    :param kind: the case kind (the lifecycle's process key)
    :param settled: outcomes that count as success (``Case.outcome``)
    :param unsettled: outcomes of a mediation that did not succeed
    """

    kind: str
    settled: frozenset[str]
    unsettled: frozenset[str]


@dataclass(frozen=True)
class OutOfContactSignal:
    """A user task whose completion with ``field == value`` records that an offender is out of contact (脱管).

    :param process_key: the process of the check, e.g. ``corrections_alarm``
    :param bpmn_id: its user task, e.g. ``verify`` (核查监控报警)
    :param field: the form field holding the finding, e.g. ``finding``
    :param value: the finding that means out of contact, e.g. ``失联``
    """

    process_key: str
    bpmn_id: str
    field: str
    value: str


_mediations: dict[str, MediationOutcomes] = {}
_out_of_contact: dict[tuple[str, str], OutOfContactSignal] = {}


def register_mediation_outcomes(kind: str, *, settled: Iterable[str], unsettled: Iterable[str]) -> None:
    """Declare how cases of ``kind`` end for 调解成功率 (the domain registers this; idempotent).

    :param settled: outcomes counted as a successful mediation
    :param unsettled: outcomes counted as a mediation that did not succeed
    """
    _mediations[kind] = MediationOutcomes(kind, frozenset(settled), frozenset(unsettled))


def register_out_of_contact(process_key: str, bpmn_id: str, field: str, value: str) -> None:
    """Declare the check whose finding records a 脱管 event (the domain registers this; idempotent)."""
    _out_of_contact[(process_key, bpmn_id)] = OutOfContactSignal(process_key, bpmn_id, field, value)


def mediation_outcomes() -> tuple[MediationOutcomes, ...]:
    """The registered mediation lifecycles."""
    return tuple(_mediations.values())


def out_of_contact_signals() -> tuple[OutOfContactSignal, ...]:
    """The registered 脱管 signals."""
    return tuple(_out_of_contact.values())


# -- periods --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A span of local days, ``first`` to ``last`` inclusive.

    :param kind: month, quarter, year or custom
    """

    kind: str
    first: date
    last: date

    @property
    def start_dt(self) -> datetime:
        """The first instant of the period (UTC)."""
        return _local_midnight(self.first)

    @property
    def end_dt(self) -> datetime:
        """The instant after the period (UTC, exclusive)."""
        return _local_midnight(self.last + timedelta(days=1))

    @property
    def token(self) -> str:
        """The period as the ``period`` query argument spells it: ``2026-10``, ``2026-Q3``, ``2026``, ``custom``."""
        if self.kind == 'month':
            return f'{self.first:%Y-%m}'
        if self.kind == 'quarter':
            return f'{self.first.year}-Q{(self.first.month - 1) // 3 + 1}'
        if self.kind == 'year':
            return str(self.first.year)
        return 'custom'

    def as_of(self, instant: datetime) -> datetime:
        """The instant the period's snapshot measures are taken at: its end, or ``instant`` if earlier."""
        return min(self.end_dt, instant)

    def is_complete(self, instant: datetime) -> bool:
        """Whether the period has ended by ``instant``."""
        return self.end_dt <= instant


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), LOCAL_ZONE).astimezone(UTC)


def month_period(year: int, month: int) -> Period:
    """The calendar month ``year``-``month``."""
    return Period('month', date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))


def quarter_period(year: int, quarter: int) -> Period:
    """Quarter 1–4 of ``year``."""
    first = date(year, 3 * quarter - 2, 1)
    last_month = 3 * quarter
    return Period('quarter', first, date(year, last_month, calendar.monthrange(year, last_month)[1]))


def year_period(year: int) -> Period:
    """The calendar year."""
    return Period('year', date(year, 1, 1), date(year, 12, 31))


def previous_period(kind: str, today: date) -> Period:
    """The last full month, quarter or year before ``today``."""
    if kind == 'year':
        return year_period(today.year - 1)
    if kind == 'quarter':
        quarter = (today.month - 1) // 3  # the current quarter's number minus one
        return quarter_period(today.year - 1, 4) if quarter == 0 else quarter_period(today.year, quarter)
    last = today.replace(day=1) - timedelta(days=1)
    return month_period(last.year, last.month)


def parse_period(value: str | None, first: str | None = None, last: str | None = None, *,
                 today: date) -> Period:
    """Read the ``period`` query argument (with ``from``/``to`` for a custom range).

    ``month`` / ``quarter`` / ``year`` (or nothing) mean the previous full one; ``2026-10``, ``2026-Q3`` and
    ``2026`` name one; ``custom`` takes ``from`` and ``to`` (``YYYY-MM-DD``). A period that has begun but not
    ended is allowed (its figures run to now).

    :raise ValidationFailed: with the offending field (``period``, ``from`` or ``to``)
    """
    text = (value or 'month').strip()
    if text == 'custom':
        period = _custom(first, last)
    elif text in ('month', 'quarter', 'year'):
        period = previous_period(text, today)
    else:
        period = _named(text)
    if period.first.year < FIRST_YEAR:
        raise ValidationFailed(MSG_INVALID, {_field(period): [MSG_TOO_EARLY]})
    if period.first > today:
        raise ValidationFailed(MSG_INVALID, {_field(period): [MSG_FUTURE]})
    return period


def _field(period: Period) -> str:
    return 'from' if period.kind == 'custom' else 'period'


def _named(text: str) -> Period:
    try:
        if len(text) == 4 and text.isdigit():
            return year_period(int(text))
        if len(text) == 7 and text[4] == '-' and text[5] in 'Qq' and text[6] in '1234' and text[:4].isdigit():
            return quarter_period(int(text[:4]), int(text[6]))
        if len(text) == 7 and text[4] == '-' and text[:4].isdigit() and text[5:].isdigit():
            return month_period(int(text[:4]), int(text[5:]))
    except ValueError:
        pass
    raise ValidationFailed(MSG_INVALID, {'period': [MSG_PERIOD]})


def _custom(first: str | None, last: str | None) -> Period:
    problems: dict[str, list[str]] = {}
    days = {}
    for name, raw in (('from', first), ('to', last)):
        try:
            days[name] = date.fromisoformat((raw or '').strip())
        except ValueError:
            problems[name] = [MSG_DATE]
    if problems:
        raise ValidationFailed(MSG_INVALID, problems)
    if days['to'] < days['from']:
        raise ValidationFailed(MSG_INVALID, {'to': [MSG_ORDER]})
    if (days['to'] - days['from']).days >= MAX_CUSTOM_DAYS:
        raise ValidationFailed(MSG_INVALID, {'to': [MSG_TOO_LONG]})
    return Period('custom', days['from'], days['to'])


# -- the counts -------------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Additive counts of one group of rows: a unit's figure is the sum of its groups' tallies."""

    #: cases created in the period
    cases_opened: int = 0
    #: cases closed in the period
    cases_closed: int = 0
    #: mediation cases closed in the period with a settled outcome
    mediations_settled: int = 0
    #: mediation cases closed in the period with any mediation outcome
    mediations_concluded: int = 0
    #: tasks completed in the period
    tasks_completed: int = 0
    #: of those, tasks that had a due time
    tasks_with_due: int = 0
    #: of those, tasks completed no later than their due time
    tasks_on_time: int = 0
    #: the summed completed − created of the completed tasks, in seconds
    task_seconds: float = 0.0
    #: tasks open at the snapshot instant
    open_tasks: int = 0
    #: of those, past their due time
    overdue_tasks: int = 0
    #: 脱管 events in the period
    out_of_contact: int = 0
    #: the last 脱管 event up to the snapshot instant, ever
    last_out_of_contact_dt: datetime | None = None

    def __add__(self, other: Tally) -> Tally:
        lasts = [dt for dt in (self.last_out_of_contact_dt, other.last_out_of_contact_dt) if dt is not None]
        sums = {name: getattr(self, name) + getattr(other, name) for name in _ADDITIVE}
        return Tally(**sums, last_out_of_contact_dt=max(lasts) if lasts else None)


_ADDITIVE = ('cases_opened', 'cases_closed', 'mediations_settled', 'mediations_concluded', 'tasks_completed',
             'tasks_with_due', 'tasks_on_time', 'task_seconds', 'open_tasks', 'overdue_tasks', 'out_of_contact')


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class UnitStats:
    """The measures of one unit's subtree (or of the rows at a unit itself) over a period.

    :param unit: the unit
    :param tally: its counts
    :param period: the period measured
    :param as_of: the snapshot instant (the period's end, or now while it runs)
    :param tracked: whether 脱管 is recorded at all (a signal is registered)
    """

    unit: OrgUnit
    tally: Tally
    period: Period
    as_of: datetime
    tracked: bool = True

    @property
    def on_time_rate(self) -> float | None:
        """按期办结率: completed on time / completed with a due time; None without such tasks."""
        return _ratio(self.tally.tasks_on_time, self.tally.tasks_with_due)

    @property
    def overdue_rate(self) -> float | None:
        """逾期率: overdue / open at the snapshot instant; None without open tasks."""
        return _ratio(self.tally.overdue_tasks, self.tally.open_tasks)

    @property
    def mediation_success_rate(self) -> float | None:
        """调解成功率: settled / concluded mediations closed in the period; None without any."""
        return _ratio(self.tally.mediations_settled, self.tally.mediations_concluded)

    @property
    def avg_task_hours(self) -> float | None:
        """平均办理时长 in hours: summed durations / completed tasks; None without completed tasks."""
        seconds = _ratio(self.tally.task_seconds, self.tally.tasks_completed)
        return None if seconds is None else seconds / 3600

    @property
    def zero_out_of_contact(self) -> bool | None:
        """零脱管: no 脱管 event in the period; None when nothing records 脱管."""
        return self.tally.out_of_contact == 0 if self.tracked else None

    @property
    def out_of_contact_streak_days(self) -> int | None:
        """Days from the last 脱管 event (or from the unit's set-up, if none) to the period's last day so far."""
        if not self.tracked:
            return None
        last_day = (self.as_of - timedelta(microseconds=1)).astimezone(LOCAL_ZONE).date()
        event = self.tally.last_out_of_contact_dt
        if event is not None:
            return max(0, (last_day - event.astimezone(LOCAL_ZONE).date()).days)
        return max(0, (last_day - self.unit.created_dt.astimezone(LOCAL_ZONE).date()).days + 1)

    def measure(self, key: str) -> float | None:
        """A measure by key (a rate or a count of the tally), as a number (零脱管 as 1.0 or 0.0)."""
        value = getattr(self.tally if key in _ADDITIVE else self, key)
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        return None if value is None else float(value)


@dataclass(frozen=True)
class Breakdown:
    """A unit's measures, each child's, and those of the records kept at the unit itself.

    :param total: the whole subtree
    :param children: one per child unit, in code order
    :param own: the rows at the unit itself, not below a child (a county's own staff's tasks); None when there
        are none, or when the unit has no children (then they are the total)
    """

    total: UnitStats
    children: list[UnitStats]
    own: UnitStats | None


#: the id of the unit of the group a row falls in; None for rows in no group (the unit's own)
GroupKey = int | None


def unit_breakdown(session: Session, unit: OrgUnit, period: Period, *, at: datetime | None = None) -> Breakdown:
    """The measures of ``unit``'s subtree over ``period``, and of each child unit (for drill-down).

    :param at: now (the engine clock by default); snapshot measures are taken at the period's end or now
    """
    children = list(session.scalars(sa.select(OrgUnit).where(OrgUnit.parent_id == unit.id).order_by(OrgUnit.code)))
    as_of = period.as_of(at or now())
    tallies = tally_groups(session, unit.path, children, period, as_of)
    total = sum(tallies.values(), Tally())
    own = tallies.get(None)
    tracked = bool(_out_of_contact)
    return Breakdown(
        total=UnitStats(unit, total, period, as_of, tracked),
        children=[UnitStats(child, tallies.get(child.id, Tally()), period, as_of, tracked) for child in children],
        own=UnitStats(unit, own, period, as_of, tracked) if children and own is not None and own != Tally() else None)


def group_stats(session: Session, within: OrgUnit, groups: Sequence[OrgUnit], period: Period, *,
                at: datetime | None = None) -> list[UnitStats]:
    """The measures of each of ``groups`` (disjoint subtrees below ``within``, e.g. the counties of a city)."""
    as_of = period.as_of(at or now())
    tallies = tally_groups(session, within.path, groups, period, as_of)
    tracked = bool(_out_of_contact)
    return [UnitStats(unit, tallies.get(unit.id, Tally()), period, as_of, tracked) for unit in groups]


def tally_groups(session: Session, path: str, groups: Sequence[OrgUnit], period: Period,
                 as_of: datetime) -> dict[GroupKey, Tally]:
    """Count the rows under ``path`` per group (the group whose path prefixes theirs; None for no group).

    Each query groups by ``org_path`` in SQL, so it returns at most one row per unit of the subtree however
    many rows it counts; those rows are added up per group here.
    """
    group_of = GroupIndex(groups)
    tallies: dict[GroupKey, Tally] = {}

    def tally(org_path: str) -> Tally:
        return tallies.setdefault(group_of(org_path), Tally())

    for org_path, opened in _cases_opened(session, path, period):
        tally(org_path).cases_opened += opened
    for org_path, closed, settled, concluded in _cases_closed(session, path, period):
        counts = tally(org_path)
        counts.cases_closed += closed
        counts.mediations_settled += settled
        counts.mediations_concluded += concluded
    for org_path, done, with_due, on_time, seconds in _tasks_completed(session, path, period):
        counts = tally(org_path)
        counts.tasks_completed += done
        counts.tasks_with_due += with_due
        counts.tasks_on_time += on_time
        counts.task_seconds += float(seconds)
    for org_path, open_count, overdue in _tasks_open(session, path, as_of):
        tally(org_path).open_tasks += open_count
        tally(org_path).overdue_tasks += overdue
    for org_path, events, last in _out_of_contact_events(session, path, period, as_of):
        counts = tally(org_path)
        counts.out_of_contact += events
        if counts.last_out_of_contact_dt is None or last > counts.last_out_of_contact_dt:
            counts.last_out_of_contact_dt = last
    return tallies


class GroupIndex:
    """Finds the group (one of some disjoint subtrees) an org path lies in: the id of the group unit, or None."""

    def __init__(self, groups: Sequence[OrgUnit]) -> None:
        self._ids = {unit.path: unit.id for unit in groups}
        self._seen: dict[str, GroupKey] = {}

    def __call__(self, org_path: str) -> GroupKey:
        if org_path not in self._seen:
            parts = org_path.split('/')
            prefixes = ('/'.join(parts[:end]) + '/' for end in range(2, len(parts)))
            self._seen[org_path] = next((self._ids[p] for p in prefixes if p in self._ids), None)
        return self._seen[org_path]


# -- the grouped queries ----------------------------------------------------------------------------------
#
# Each reads one index range (see the indexes of HumanTask and Case) and groups by org_path.

class _Seconds(FunctionElement[float]):
    """Seconds from the first argument to the second (two timestamps of the same table)."""

    type = sa.Float()
    name = 'seconds_between'
    inherit_cache = True


@compiles(_Seconds)
def _seconds_default(element: _Seconds, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f'EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))'


@compiles(_Seconds, 'sqlite')
def _seconds_sqlite(element: _Seconds, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f'((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 86400.0)'


def seconds_between(start: Any, end: Any) -> sa.ColumnElement[float]:
    """SQL for the seconds from ``start`` to ``end`` on SQLite and PostgreSQL."""
    return _Seconds(start, end)


def _under(column: Any, path: str) -> sa.ColumnElement[bool]:
    """``column`` (an org path) lies under ``path``, as a filter that no index on ``column`` serves.

    For the queries that should range over their time index (which holds the org path too): SQLite's planner
    cannot tell how much of the tree a path covers, and would otherwise walk the whole province by path.
    """
    return starts_with(column.concat(''), path)


def _sum_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _cases_opened(session: Session, path: str, period: Period) -> list[sa.Row[Any]]:
    return list(session.execute(
        sa.select(Case.org_path, sa.func.count())
        .where(starts_with(Case.org_path, path), Case.created_dt >= period.start_dt, Case.created_dt < period.end_dt)
        .group_by(Case.org_path)))


def _cases_closed(session: Session, path: str, period: Period) -> list[sa.Row[Any]]:
    settled = [sa.and_(Case.kind == m.kind, Case.outcome.in_(sorted(m.settled))) for m in _mediations.values()]
    concluded = [sa.and_(Case.kind == m.kind, Case.outcome.in_(sorted(m.settled | m.unsettled)))
                 for m in _mediations.values()]
    return list(session.execute(
        sa.select(Case.org_path, sa.func.count(), _sum_if(sa.or_(sa.false(), *settled)),
                  _sum_if(sa.or_(sa.false(), *concluded)))
        .where(Case.closed_dt >= period.start_dt, Case.closed_dt < period.end_dt, Case.status == 'closed',
               _under(Case.org_path, path))
        .group_by(Case.org_path)))


def _completed_in(path: str, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(HumanTask.completed_dt >= period.start_dt, HumanTask.completed_dt < period.end_dt,
                   HumanTask.status == 'completed', _under(HumanTask.org_path, path))


def _tasks_completed(session: Session, path: str, period: Period) -> list[sa.Row[Any]]:
    return list(session.execute(
        sa.select(HumanTask.org_path, sa.func.count(), _sum_if(HumanTask.due_dt.is_not(None)),
                  _sum_if(HumanTask.completed_dt <= HumanTask.due_dt),
                  sa.func.coalesce(sa.func.sum(seconds_between(HumanTask.created_dt, HumanTask.completed_dt)), 0.0))
        .where(_completed_in(path, period))
        .group_by(HumanTask.org_path)))


def _tasks_open(session: Session, path: str, as_of: datetime) -> list[sa.Row[Any]]:
    """Tasks open at ``as_of``: open now and created before it, plus finished since but created before it.

    Neither part reads the finished history: a past month costs what happened since. Open tasks of a wide
    subtree (a city, the province) are read as one range of the created-time index, which holds the path;
    a narrow subtree's by path, where the to-do index finds its few rows.
    """
    def part(org_path: Any, *conditions: sa.ColumnElement[bool]) -> list[sa.Row[Any]]:
        return list(session.execute(sa.select(org_path, sa.func.count(), _sum_if(HumanTask.due_dt < as_of))
                                    .where(*conditions, starts_with(org_path, path)).group_by(org_path)))

    # Grouping by an expression rather than the column keeps SQLite from walking a path-ordered index of
    # every open task to save itself the sort; ``|| ''`` also keeps the path out of index selection.
    loose = HumanTask.org_path.concat('')
    wide = is_wide_path(path)
    return [*part(loose if wide else HumanTask.org_path, HumanTask.status == 'open', HumanTask.created_dt < as_of),
            *part(loose, HumanTask.completed_dt >= as_of, HumanTask.created_dt < as_of)]


def _out_of_contact_events(session: Session, path: str, period: Period, as_of: datetime) -> list[sa.Row[Any]]:
    if not _out_of_contact:
        return []
    signals = [sa.and_(HumanTask.process_key == s.process_key, HumanTask.bpmn_id == s.bpmn_id,
                       AuditEvent.after[s.field].as_string() == s.value) for s in _out_of_contact.values()]
    return list(session.execute(
        sa.select(HumanTask.org_path, _sum_if(AuditEvent.occurred_dt >= period.start_dt),
                  sa.func.max(AuditEvent.occurred_dt))
        .join(HumanTask, HumanTask.id == AuditEvent.human_task_id)
        .where(AuditEvent.kind == 'task.completed', AuditEvent.occurred_dt < as_of,
               starts_with(HumanTask.org_path, path), sa.or_(*signals))
        .group_by(HumanTask.org_path)))


# -- time per BPMN step -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepCell:
    """The completed tasks of one step in one group: how many, and their mean duration in hours."""

    count: int
    avg_hours: float


@dataclass
class StepRow:
    """One user task of one process: its durations over the whole unit, and per group.

    :param cells: per group id (None: rows in no group, such as the unit's own)
    """

    process_key: str
    bpmn_id: str
    title: str
    count: int = 0
    avg_hours: float = 0.0
    p90_hours: float | None = None
    cells: dict[GroupKey, StepCell] = field(default_factory=dict)


def step_durations(session: Session, unit: OrgUnit, groups: Sequence[OrgUnit], period: Period) -> list[StepRow]:
    """Time spent per BPMN step: the tasks completed in ``period`` under ``unit``, per process and user task.

    Two queries: count and total duration per step and org path (added up per group here), and the 90th
    percentile per step (nearest rank, by a window function, which both databases have). Titles are the
    steps' names in the newest version of their process. Rows come by process key, then by mean duration,
    longest first.
    """
    group_of = GroupIndex(groups)
    sums: dict[tuple[str, str], dict[GroupKey, list[float]]] = {}
    for key, bpmn_id, org_path, count, seconds in session.execute(
            sa.select(HumanTask.process_key, HumanTask.bpmn_id, HumanTask.org_path, sa.func.count(),
                      sa.func.sum(seconds_between(HumanTask.created_dt, HumanTask.completed_dt)))
            .where(_completed_in(unit.path, period))
            .group_by(HumanTask.process_key, HumanTask.bpmn_id, HumanTask.org_path)):
        cell = sums.setdefault((key, bpmn_id), {}).setdefault(group_of(org_path), [0, 0.0])
        cell[0] += count
        cell[1] += float(seconds)
    titles = step_titles(session, sums)
    p90 = {(key, bpmn_id): seconds for key, bpmn_id, seconds in _p90(session, unit.path, period)}
    rows = [_step_row(key, bpmn_id, titles.get((key, bpmn_id), bpmn_id), cells, p90.get((key, bpmn_id)))
            for (key, bpmn_id), cells in sums.items()]
    return sorted(rows, key=lambda r: (r.process_key, -r.avg_hours, r.bpmn_id))


def _step_row(key: str, bpmn_id: str, title: str, cells: Mapping[GroupKey, list[float]],
              p90_seconds: float | None) -> StepRow:
    count = int(sum(c[0] for c in cells.values()))
    seconds = sum(c[1] for c in cells.values())
    return StepRow(key, bpmn_id, title, count, seconds / count / 3600,
                   None if p90_seconds is None else float(p90_seconds) / 3600,
                   {group: StepCell(int(c[0]), c[1] / c[0] / 3600) for group, c in cells.items()})


def _p90(session: Session, path: str, period: Period) -> list[sa.Row[Any]]:
    # Nearest rank: the smallest duration with at least 90 % of the step's durations at or below it, i.e. the
    # first whose cumulative distribution reaches 0.9. One window, so one sort.
    seconds = seconds_between(HumanTask.created_dt, HumanTask.completed_dt)
    step = (HumanTask.process_key, HumanTask.bpmn_id)
    ranked = (sa.select(*step, seconds.label('seconds'),
                        sa.func.cume_dist().over(partition_by=step, order_by=seconds).label('share'))
              .where(_completed_in(path, period)).subquery())
    return list(session.execute(sa.select(ranked.c.process_key, ranked.c.bpmn_id, sa.func.min(ranked.c.seconds))
                                .where(ranked.c.share >= 0.9).group_by(ranked.c.process_key, ranked.c.bpmn_id)))


def step_titles(session: Session, steps: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The name of each (process key, user task id) in the newest version of its process.

    A step that the newest version no longer has is named by its newest task row.
    """
    wanted = set(steps)
    titles: dict[tuple[str, str], str] = {}
    for key in sorted({key for key, _ in wanted}):
        definition = session.scalars(sa.select(ProcessDefinition).where(
            ProcessDefinition.key == key, ProcessDefinition.kind == 'bpmn')
            .order_by(ProcessDefinition.version.desc()).limit(1)).first()
        if definition is not None:
            tasks = process_bundle(session, definition).user_tasks
            titles.update({(key, bpmn_id): tasks[bpmn_id].title for k, bpmn_id in wanted
                           if k == key and bpmn_id in tasks})
    for key, bpmn_id in sorted(wanted - titles.keys()):
        title = session.scalar(sa.select(HumanTask.title).where(HumanTask.process_key == key,
                                                                HumanTask.bpmn_id == bpmn_id)
                               .order_by(HumanTask.id.desc()).limit(1))
        titles[(key, bpmn_id)] = title or bpmn_id
    return titles


def process_names(session: Session, keys: Iterable[str]) -> Mapping[str, str]:
    """The name of each process key's newest version (for headings); keys never deployed are left out."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = session.execute(sa.select(ProcessDefinition.key, ProcessDefinition.name)
                           .where(ProcessDefinition.key.in_(wanted)).order_by(ProcessDefinition.version))
    return {key: name for key, name in rows}
