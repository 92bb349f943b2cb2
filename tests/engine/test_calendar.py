"""The working-day calendar: chinesecalendar's data, overrides from the database, years it does not cover."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from engine.calendar import (
    COVERED_YEARS,
    WorkCalendar,
    add_override,
    ancestor_ids,
    coverage_warning,
    load_calendar,
    remove_override,
    uncovered_years,
)
from engine.errors import NotFound, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.calendar import CalendarOverride
from tests.fixtures.directory import Org

D = date.fromisoformat


# -- the package's data ---------------------------------------------------------------------------------

@pytest.mark.parametrize(('start', 'n', 'expected'), [
    ('2025-09-26', 10, '2025-10-16'),  # across National Day, with the 09-28 and 10-11 make-up days
    ('2025-09-26', 5, '2025-10-10'),
    ('2025-09-26', 30, '2025-11-13'),
    ('2025-09-26', 0, '2025-09-26'),
    ('2025-09-26', 1, '2025-09-28'),   # Sunday 09-28 is a 调休 working day
])
def test_add_working_days_worked_examples(start: str, n: int, expected: str) -> None:
    assert WorkCalendar().add_working_days(D(start), n) == D(expected)


def test_add_working_days_matches_find_workday() -> None:
    calendar = WorkCalendar()
    day = D('2025-01-01')
    while day < D('2026-03-01'):  # every start day, rest days included, across both Spring Festivals
        for n in (0, 1, 3, 10, 30, -1, -5):
            assert calendar.add_working_days(day, n) == chinese_calendar.find_workday(n, day), (day, n)
        day += timedelta(days=3)


def test_workdays_holidays_and_make_up_days() -> None:
    calendar = WorkCalendar()
    assert calendar.is_workday(D('2025-09-26'))          # Friday
    assert calendar.is_workday(D('2025-09-28'))          # Sunday, 调休 working day
    assert calendar.is_workday(D('2025-10-11'))          # Saturday, 调休 working day
    assert not calendar.is_workday(D('2025-10-06'))      # Monday in the National Day holiday
    assert not calendar.is_workday(D('2025-10-04'))      # Saturday
    assert calendar.next_workday(D('2025-09-30')) == D('2025-10-09')
    assert calendar.roll_forward(D('2025-10-05')) == D('2025-10-09')
    assert calendar.roll_forward(D('2025-10-09')) == D('2025-10-09')
    assert calendar.previous_workday(D('2025-10-09')) == D('2025-09-30')
    assert calendar.working_days_between(D('2025-10-10'), D('2025-10-16')) == 5  # 10-11 counts
    assert calendar.fallback_years == set()


# -- years the package does not cover -------------------------------------------------------------------

def test_uncovered_year_falls_back_to_weekdays_and_says_so() -> None:
    calendar = WorkCalendar()
    assert COVERED_YEARS.stop - 1 == 2026
    assert calendar.is_workday(D('2027-01-01'))          # a Friday: New Year unknown without data
    assert not calendar.is_workday(D('2027-01-02'))      # Saturday
    assert calendar.add_working_days(D('2026-12-30'), 3) == D('2027-01-04')
    assert calendar.fallback_years == {2027}
    assert calendar.source()['fallback_years'] == [2027]
    assert uncovered_years([2025, 2026, 2027, 2003]) == [2003, 2027]


def test_uncovered_year_honours_overrides() -> None:
    calendar = WorkCalendar({D('2027-01-01'): False, D('2027-01-02'): True})
    assert not calendar.is_workday(D('2027-01-01'))
    assert calendar.is_workday(D('2027-01-02'))
    assert calendar.add_working_days(D('2026-12-31'), 1) == D('2027-01-02')


def test_coverage_warning() -> None:
    assert coverage_warning(D('2025-11-23')) is None
    warning = coverage_warning(D('2026-11-23'))
    assert warning is not None and '2027' in warning and 'chinesecalendar' in warning
    assert '2028' in (coverage_warning(D('2027-03-01')) or '')


def test_ancestor_ids() -> None:
    assert ancestor_ids('/1/4/9/') == [1, 4, 9]
    assert ancestor_ids('') == []


# -- overrides ------------------------------------------------------------------------------------------

def _events(session: Session, kind: str) -> list[AuditEvent]:
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def test_global_extra_holiday_moves_working_day_counts(session: Session, org: Org) -> None:
    add_override(session, D('2025-10-13'), False, org_unit=None, note='临时闭馆', actor=None)
    session.commit()
    calendar = load_calendar(session, org.township.path)
    assert not calendar.is_workday(D('2025-10-13'))
    assert calendar.add_working_days(D('2025-09-26'), 10) == D('2025-10-17')
    assert load_calendar(session, org.other_township.path).add_working_days(D('2025-09-26'), 10) == D('2025-10-17')
    [event] = _events(session, 'calendar.override_added')
    assert event.after == {'day': '2025-10-13', 'is_workday': False, 'note': '临时闭馆', 'org_unit_id': None}
    assert event.note == '临时闭馆'


def test_make_up_workday(session: Session, org: Org) -> None:
    add_override(session, D('2025-10-04'), True, org_unit=None, note='补班', actor=None)
    session.commit()
    calendar = load_calendar(session, org.county.path)
    assert calendar.is_workday(D('2025-10-04'))
    assert calendar.add_working_days(D('2025-09-26'), 10) == D('2025-10-15')


def test_unit_override_applies_to_its_subtree_only(session: Session, org: Org) -> None:
    add_override(session, D('2025-10-13'), False, org_unit=org.county, note='县里停电', actor=None)
    session.commit()
    assert not load_calendar(session, org.county.path).is_workday(D('2025-10-13'))
    assert not load_calendar(session, org.township.path).is_workday(D('2025-10-13'))
    assert load_calendar(session, org.other_county.path).is_workday(D('2025-10-13'))
    assert load_calendar(session, org.other_township.path).is_workday(D('2025-10-13'))
    assert load_calendar(session, org.city.path).is_workday(D('2025-10-13'))
    assert load_calendar(session, '').is_workday(D('2025-10-13'))


def test_deeper_override_wins(session: Session, org: Org) -> None:
    add_override(session, D('2025-10-13'), False, org_unit=None, note='全省停工', actor=None)
    add_override(session, D('2025-10-13'), True, org_unit=org.county, note='本县照常上班', actor=None)
    add_override(session, D('2025-10-13'), False, org_unit=org.township, note='本所外出培训', actor=None)
    session.commit()
    assert not load_calendar(session, org.other_county.path).is_workday(D('2025-10-13'))
    assert load_calendar(session, org.county.path).is_workday(D('2025-10-13'))
    assert not load_calendar(session, org.township.path).is_workday(D('2025-10-13'))


def test_change_and_remove_override_are_audited(session: Session, org: Org) -> None:
    add_override(session, D('2027-01-01'), False, org_unit=None, note='元旦', actor=None)
    add_override(session, D('2027-01-01'), False, org_unit=None, note='元旦（国办发通知）', actor=None)
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(CalendarOverride)) == 1
    [changed] = _events(session, 'calendar.override_changed')
    assert changed.before is not None and changed.before['note'] == '元旦'
    assert changed.after is not None and changed.after['note'] == '元旦（国办发通知）'
    assert not load_calendar(session, org.county.path).is_workday(D('2027-01-01'))
    remove_override(session, D('2027-01-01'), org_unit=None, actor=None, note='录入有误')
    session.commit()
    assert load_calendar(session, org.county.path).is_workday(D('2027-01-01'))
    [removed] = _events(session, 'calendar.override_removed')
    assert removed.before is not None and removed.before['day'] == '2027-01-01' and removed.note == '录入有误'


def test_override_needs_a_note_and_remove_needs_a_row(session: Session, org: Org) -> None:
    with pytest.raises(ValidationFailed):
        add_override(session, D('2025-10-13'), False, org_unit=None, note='  ', actor=None)
    with pytest.raises(NotFound):
        remove_override(session, D('2025-10-13'), org_unit=org.county, actor=None)


def test_one_global_override_per_day_in_the_database(session: Session, org: Org) -> None:
    from engine.clock import now
    session.add(CalendarOverride(day=D('2025-10-13'), is_workday=False, org_unit_id=None, note='a',
                                 created_dt=now()))
    session.add(CalendarOverride(day=D('2025-10-13'), is_workday=False, org_unit_id=org.county.id, note='b',
                                 created_dt=now()))
    session.commit()
    session.add(CalendarOverride(day=D('2025-10-13'), is_workday=True, org_unit_id=None, note='c',
                                 created_dt=now()))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_calendar_cache_is_per_session_and_dropped_on_change(session: Session, org: Org,
                                                             session_factory: sessionmaker[Session]) -> None:
    assert load_calendar(session, org.county.path).is_workday(D('2025-10-13'))
    with session_factory() as other:
        add_override(other, D('2025-10-13'), False, org_unit=None, note='另一会话录入', actor=None)
        other.commit()
    # The first session's calendar is reused until it ages out or this session changes an override...
    assert load_calendar(session, org.county.path).is_workday(D('2025-10-13'))
    session.commit()
    add_override(session, D('2025-10-14'), False, org_unit=None, note='本会话录入', actor=None)
    calendar = load_calendar(session, org.county.path)
    assert not calendar.is_workday(D('2025-10-13')) and not calendar.is_workday(D('2025-10-14'))
