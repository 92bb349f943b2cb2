"""The working-day calendar: ``chinesecalendar`` plus overrides kept in the database.

``chinesecalendar`` knows mainland China's statutory holidays and 调休 make-up working days for the years
it was released for (1.11: 2004–2026) and raises ``NotImplementedError`` for any other year. Here a year it
does not cover falls back to Monday–Friday, so nothing crashes; :func:`uncovered_years` and
:func:`coverage_warning` tell admins to bump the package (or enter the year's holidays as overrides)
before deadlines in that year can be trusted, and every computed due date records which years fell back.

Overrides (:class:`~engine.models.calendar.CalendarOverride`) win over the package: a global one
applies everywhere, one for an org unit applies to its subtree and wins over a global one for the
same day, a deeper unit over a shallower one. All days are Asia/Shanghai calendar days.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import metadata
from typing import Any, Final

import chinese_calendar
import sqlalchemy as sa
from chinese_calendar import constants as _cc_data
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import get_clock, now
from engine.db import unflushed
from engine.errors import NotFound, ValidationFailed
from engine.models.calendar import CalendarOverride
from engine.models.org_units import OrgUnit
from engine.models.users import User

__all__ = [
    'CALENDAR_CACHE_SECONDS',
    'COVERED_YEARS',
    'PACKAGE_VERSION',
    'WorkCalendar',
    'add_override',
    'ancestor_ids',
    'coverage_warning',
    'invalidate_calendars',
    'load_calendar',
    'remove_override',
    'uncovered_years',
]

#: the installed ``chinesecalendar`` release
PACKAGE_VERSION: Final = metadata.version('chinesecalendar')
#: the years the installed package has holiday data for
COVERED_YEARS: Final = range(min(_cc_data.holidays).year, max(_cc_data.holidays).year + 1)
#: how long :func:`load_calendar` reuses a calendar within one session
CALENDAR_CACHE_SECONDS: Final = 60.0
#: longest span a single count may walk, in days (a 30-month deadline is about 900)
_MAX_WALK_DAYS: Final = 20_000
_CACHE_KEY: Final = 'fengqiao_calendars'


def uncovered_years(years: Iterable[int]) -> list[int]:
    """The years among ``years`` the installed ``chinesecalendar`` has no holiday data for, sorted."""
    return sorted({year for year in years if year not in COVERED_YEARS})


def coverage_warning(today: date | None = None) -> str | None:
    """A warning for admins when this year or next is not covered by the package, else None.

    :param today: the local date to judge by (default: the engine clock's today)
    """
    today = today or get_clock().today()
    missing = uncovered_years((today.year, today.year + 1))
    if not missing:
        return None
    years = '、'.join(str(y) for y in missing)
    return (f'工作日历：chinesecalendar {PACKAGE_VERSION} 仅含 {COVERED_YEARS.start}–{COVERED_YEARS.stop - 1} '
            f'年的法定节假日与调休数据，{years} 年暂按周一至周五加人工调整计算。请在国务院办公厅放假通知发布后'
            f'升级 chinesecalendar，或在“工作日历”中录入该年的节假日与调休。')


def ancestor_ids(path: str) -> list[int]:
    """The ids on a materialised path, root first: ``'/1/4/9/'`` → ``[1, 4, 9]``."""
    return [int(part) for part in path.strip('/').split('/') if part]


@functools.lru_cache(maxsize=8192)
def _package_workday(day: date) -> bool:
    # The package's answer is fixed for a given release; its own lookup validates the date on every call.
    return bool(chinese_calendar.is_workday(day))


@dataclass
class WorkCalendar:
    """Working days for one org unit: the package's data, then the overrides that apply there.

    :param overrides: day → is-a-working-day, already resolved for the unit
    :param org_path: the unit's path (for the record only)
    """

    overrides: Mapping[date, bool] = field(default_factory=dict)
    org_path: str = ''
    #: years looked at that the package does not cover (filled as days are asked about)
    fallback_years: set[int] = field(default_factory=set)

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day (调休 Saturdays are; weekends and statutory holidays are not)."""
        if day in self.overrides:
            return self.overrides[day]
        if day.year in COVERED_YEARS:
            return _package_workday(day)
        self.fallback_years.add(day.year)
        return day.weekday() < 5

    def roll_forward(self, day: date) -> date:
        """``day`` if it is a working day, else the first working day after it."""
        for _ in range(_MAX_WALK_DAYS):
            if self.is_workday(day):
                return day
            day += timedelta(days=1)
        raise ValidationFailed('工作日历中找不到工作日，请检查节假日调整。')

    def next_workday(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        return self.roll_forward(day + timedelta(days=1))

    def previous_workday(self, day: date) -> date:
        """The last working day strictly before ``day``."""
        for _ in range(_MAX_WALK_DAYS):
            day -= timedelta(days=1)
            if self.is_workday(day):
                return day
        raise ValidationFailed('工作日历中找不到工作日，请检查节假日调整。')

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start``, ``start`` not counted (``chinesecalendar.find_workday``).

        As with ``find_workday``, a ``start`` that is a rest day is first moved to the next working day,
        which is then not counted either (a 委托函 received on a Sunday counts as received on Monday);
        ``n = 0`` gives that day. A negative ``n`` counts back: ``-1`` is the working day before ``start``.
        """
        if n < 0:
            day = start
            for _ in range(-n):
                day = self.previous_workday(day)
            return day
        day = self.roll_forward(start)
        for _ in range(n):
            day = self.next_workday(day)
        return day

    def working_days_between(self, after: date, until: date) -> int:
        """How many working days lie after ``after`` up to and including ``until`` (0 if none)."""
        count, day = 0, after + timedelta(days=1)
        while day <= until:
            count += self.is_workday(day)
            day += timedelta(days=1)
        return count

    def source(self) -> dict[str, Any]:
        """What the calendar's answers rest on, for a due date's rule record."""
        return {'package': 'chinesecalendar', 'version': PACKAGE_VERSION,
                'covered': [COVERED_YEARS.start, COVERED_YEARS.stop - 1], 'org_path': self.org_path,
                'overrides': len(self.overrides), 'fallback_years': sorted(self.fallback_years)}


# -- loading ------------------------------------------------------------------------------------------

# Built once: every command that creates a task with a working-day deadline reads it.
_OVERRIDE_ROWS = (
    sa.select(CalendarOverride.day, CalendarOverride.is_workday, OrgUnit.path)
    .outerjoin(OrgUnit, OrgUnit.id == CalendarOverride.org_unit_id)
    .where(sa.or_(CalendarOverride.org_unit_id.is_(None),
                  CalendarOverride.org_unit_id.in_(sa.bindparam('ids', expanding=True)))))


def _override_rows(session: Session, org_paths: Iterable[str]) -> Sequence[Any]:
    """The global overrides and those of every unit on the way down to each of ``org_paths``."""
    ids = set().union(*(ancestor_ids(path) for path in org_paths))
    if any(unflushed(session, CalendarOverride)) or any(unflushed(session, OrgUnit)):
        session.flush()
    with session.no_autoflush:  # nothing else pending changes what this reads (a command's task and job rows)
        return session.execute(_OVERRIDE_ROWS, {'ids': sorted(ids)}).all()


def _overrides_of(org_path: str, rows: Iterable[Any]) -> dict[date, bool]:
    mine = [row for row in rows if row.path is None or org_path.startswith(row.path)]
    # Global first, then shallower units before deeper ones: the most specific override is applied last.
    ordered = sorted(mine, key=lambda row: len(row.path) if row.path else 0)
    return {row.day: row.is_workday for row in ordered}


def _read_overrides(session: Session, org_path: str) -> dict[date, bool]:
    return _overrides_of(org_path, _override_rows(session, [org_path]))


def preload_calendars(session: Session, org_paths: Iterable[str]) -> None:
    """Read the calendars of ``org_paths`` into the session's cache in one query (a list of tasks at many
    units), so that :func:`load_calendar` then reads nothing."""
    cache: dict[str, tuple[float, dict[date, bool]]] = session.info.setdefault(_CACHE_KEY, {})
    stale = {path for path in org_paths
             if path not in cache or time.monotonic() - cache[path][0] > CALENDAR_CACHE_SECONDS}
    if not stale:
        return
    rows = _override_rows(session, stale)
    for path in stale:
        cache[path] = (time.monotonic(), _overrides_of(path, rows))


def load_calendar(session: Session, org_path: str = '') -> WorkCalendar:
    """The calendar of the unit at ``org_path`` (``''``: global overrides only).

    Calendars are kept on the session for :data:`CALENDAR_CACHE_SECONDS`, so a command creating many
    tasks reads the overrides once; changing an override through this module drops them.
    """
    cache: dict[str, tuple[float, dict[date, bool]]] = session.info.setdefault(_CACHE_KEY, {})
    hit = cache.get(org_path)
    if hit is None or time.monotonic() - hit[0] > CALENDAR_CACHE_SECONDS:
        hit = (time.monotonic(), _read_overrides(session, org_path))
        cache[org_path] = hit
    # A fresh object each time: fallback_years is per computation, the overrides are shared read-only.
    return WorkCalendar(hit[1], org_path)


def invalidate_calendars(session: Session) -> None:
    """Forget the calendars cached on ``session``."""
    session.info.pop(_CACHE_KEY, None)


# -- overrides ----------------------------------------------------------------------------------------

def _find_override(session: Session, day: date, org_unit: OrgUnit | None) -> CalendarOverride | None:
    unit_clause = (CalendarOverride.org_unit_id.is_(None) if org_unit is None
                   else CalendarOverride.org_unit_id == org_unit.id)
    return session.scalars(sa.select(CalendarOverride).where(CalendarOverride.day == day, unit_clause)
                           ).one_or_none()


def _override_values(row: CalendarOverride) -> dict[str, Any]:
    return {'day': row.day.isoformat(), 'is_workday': row.is_workday, 'note': row.note,
            'org_unit_id': row.org_unit_id}


def add_override(session: Session, day: date, is_workday: bool, *, org_unit: OrgUnit | None, note: str,
                 actor: User | None) -> CalendarOverride:
    """Declare ``day`` a working day or a rest day, everywhere or in ``org_unit``'s subtree.

    An existing override for the same day and unit is changed instead. Due dates already computed
    keep the rule that made them.

    :param day: the local calendar day
    :param is_workday: True for a (make-up) working day, False for a rest day
    :param org_unit: the unit whose subtree it applies to; None for everywhere
    :param note: why (required), e.g. the notice that announced it
    :param actor: the admin making the change
    """
    note = note.strip()
    if not note:
        raise ValidationFailed('数据有误', {'note': ['请说明调整依据。']})
    row = _find_override(session, day, org_unit)
    before = _override_values(row) if row is not None else None
    if row is None:
        row = CalendarOverride(day=day, org_unit_id=org_unit.id if org_unit else None, is_workday=is_workday,
                               note=note, created_by_id=actor.id if actor else None, created_dt=now())
        session.add(row)
    else:
        row.is_workday, row.note = is_workday, note
        row.created_by_id, row.created_dt = (actor.id if actor else None), now()
    session.flush()
    invalidate_calendars(session)
    audit.record(session, 'calendar.override_changed' if before else 'calendar.override_added', actor=actor,
                 org_path=org_unit.path if org_unit else None, before=before, after=_override_values(row),
                 note=note)
    return row


def remove_override(session: Session, day: date, *, org_unit: OrgUnit | None, actor: User | None,
                    note: str | None = None) -> None:
    """Delete the override of ``day`` for ``org_unit`` (None: the global one).

    :param note: why it is withdrawn
    :raises NotFound: there is no such override
    """
    row = _find_override(session, day, org_unit)
    if row is None:
        raise NotFound('该日期没有节假日调整')
    before = _override_values(row)
    session.delete(row)
    session.flush()
    invalidate_calendars(session)
    audit.record(session, 'calendar.override_removed', actor=actor, org_path=org_unit.path if org_unit else None,
                 before=before, note=note)
