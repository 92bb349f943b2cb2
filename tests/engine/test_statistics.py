"""Statistics: periods, every measure of the October scenario (tests/engine/statistics_support.py), drill-down,
the time per BPMN step, and empty denominators."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import statistics
from engine.clock import FrozenClock
from engine.errors import ValidationFailed
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.statistics import Period, UnitStats, month_period, parse_period, step_durations, unit_breakdown
from tests.engine.statistics_support import DEMO, REGISTER, Driver, October, bj, build_october
from tests.fixtures.directory import Org

OCTOBER = month_period(2025, 10)


@pytest.fixture
def october(session: Session, clock: FrozenClock, org: Org, people: dict[str, User],
            deploy_file: Callable[[str], object]) -> October:
    return build_october(session, clock, org, people, deploy_file)


def _stats(session: Session, october: October) -> dict[str, UnitStats]:
    """The city's breakdown by county code, plus the city total under 'city'."""
    breakdown = unit_breakdown(session, october.org.city, OCTOBER)
    return {'city': breakdown.total, **{s.unit.code: s for s in breakdown.children}}


TAOJIANG, HESHAN = '430922', '430903'


# -- periods --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(('value', 'first', 'last', 'kind'), [
    (None, date(2026, 10, 1), date(2026, 10, 31), 'month'),
    ('month', date(2026, 10, 1), date(2026, 10, 31), 'month'),
    ('quarter', date(2026, 7, 1), date(2026, 9, 30), 'quarter'),
    ('year', date(2025, 1, 1), date(2025, 12, 31), 'year'),
    ('2026-02', date(2026, 2, 1), date(2026, 2, 28), 'month'),
    ('2024-Q1', date(2024, 1, 1), date(2024, 3, 31), 'quarter'),
    ('2026', date(2026, 1, 1), date(2026, 12, 31), 'year'),
])
def test_period_names(value: str | None, first: date, last: date, kind: str) -> None:
    period = parse_period(value, today=date(2026, 11, 24))
    assert (period.first, period.last, period.kind) == (first, last, kind)


def test_previous_quarter_in_january_is_last_years_fourth() -> None:
    assert parse_period('quarter', today=date(2026, 1, 5)) == Period('quarter', date(2025, 10, 1), date(2025, 12, 31))


def test_custom_period() -> None:
    period = parse_period('custom', '2026-03-05', '2026-04-02', today=date(2026, 11, 24))
    assert (period.first, period.last, period.token) == (date(2026, 3, 5), date(2026, 4, 2), 'custom')


@pytest.mark.parametrize(('value', 'first', 'last', 'field'), [
    ('2026-13', None, None, 'period'),
    ('2026-Q5', None, None, 'period'),
    ('last week', None, None, 'period'),
    ('2027-01', None, None, 'period'),        # not begun
    ('1999', None, None, 'period'),
    ('custom', '2026-02-30', '2026-03-01', 'from'),
    ('custom', '2026-03-01', None, 'to'),
    ('custom', '2026-03-02', '2026-03-01', 'to'),
    ('custom', '2020-01-01', '2026-01-01', 'to'),  # longer than three years
])
def test_bad_periods_name_the_field(value: str, first: str | None, last: str | None, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_period(value, first, last, today=date(2026, 11, 24))
    assert field in caught.value.fields


def test_period_runs_over_local_days() -> None:
    assert OCTOBER.start_dt == datetime(2025, 9, 30, 16, 0, tzinfo=UTC)
    assert OCTOBER.end_dt == datetime(2025, 10, 31, 16, 0, tzinfo=UTC)
    assert OCTOBER.token == '2025-10'


# -- the measures ----------------------------------------------------------------------------------------------

def test_cases_opened_and_closed(session: Session, october: October) -> None:
    stats = _stats(session, october)
    # 桃江: A and C opened, and the mediation case cancelled in October; B was opened in September.
    assert stats[TAOJIANG].tally.cases_opened == 3
    # 桃江: A and four mediations; not the cancelled one, not the one closed in September.
    assert stats[TAOJIANG].tally.cases_closed == 5
    assert (stats[HESHAN].tally.cases_opened, stats[HESHAN].tally.cases_closed) == (1, 0)


def test_mediation_success_rate(session: Session, october: October) -> None:
    stats = _stats(session, october)
    # 调解成功 2 of 调解成功 + 调解不成 3; 不予受理 counts on neither side.
    assert (stats[TAOJIANG].tally.mediations_settled, stats[TAOJIANG].tally.mediations_concluded) == (2, 3)
    assert stats[TAOJIANG].mediation_success_rate == pytest.approx(2 / 3)
    assert stats[HESHAN].mediation_success_rate is None  # no mediation closed: no rate, not 0


def test_on_time_rate(session: Session, october: October) -> None:
    stats = _stats(session, october)
    # 桃江: 登记 A on time, 审核 A late. 赫山: 登记 D and the 10-12 check on time, the 10-20 check late.
    assert (stats[TAOJIANG].tally.tasks_with_due, stats[TAOJIANG].tally.tasks_on_time) == (2, 1)
    assert stats[TAOJIANG].on_time_rate == pytest.approx(0.5)
    assert stats[HESHAN].on_time_rate == pytest.approx(2 / 3)
    assert stats['city'].on_time_rate == pytest.approx(3 / 5)  # summed, not the mean of the two rates


def test_average_task_duration(session: Session, october: October) -> None:
    stats = _stats(session, october)
    assert stats[TAOJIANG].avg_task_hours == pytest.approx((24 + 120) / 2)
    assert stats[HESHAN].avg_task_hours == pytest.approx((36 + 1 + 3) / 3)
    assert stats['city'].avg_task_hours == pytest.approx((24 + 120 + 36 + 1 + 3) / 5)


def test_open_and_overdue_tasks_at_the_end_of_the_period(session: Session, october: October) -> None:
    stats = _stats(session, october)
    # 桃江: 登记 B (overdue since 10-01) and 登记 C (no due time; done only on 11-03).
    assert (stats[TAOJIANG].tally.open_tasks, stats[TAOJIANG].tally.overdue_tasks) == (2, 1)
    # 赫山: 审核 D (no due time) and the two 查找 tasks after 失联 (due 24 hours after each alarm).
    assert (stats[HESHAN].tally.open_tasks, stats[HESHAN].tally.overdue_tasks) == (3, 2)
    assert stats[HESHAN].overdue_rate == pytest.approx(2 / 3)


def test_open_tasks_of_a_running_period_are_counted_now(session: Session, october: October) -> None:
    november = month_period(2025, 11)  # the clock stands at 11-05 09:00
    taojiang = {s.unit.code: s for s in unit_breakdown(session, october.org.city, november).children}[TAOJIANG]
    assert taojiang.as_of == bj('2025-11-05 09:00')
    # 登记 C was done on 11-03, which opened 审核 C: B and 审核 C are open now.
    assert (taojiang.tally.open_tasks, taojiang.tally.overdue_tasks) == (2, 1)
    assert taojiang.tally.tasks_completed == 1


def test_out_of_contact_events_and_streaks(session: Session, october: October) -> None:
    stats = _stats(session, october)
    heshan, taojiang = stats[HESHAN], stats[TAOJIANG]
    # The 失联 finding of 10-12 counts; the one of 09-29 is before the period, the 误报 is no 脱管.
    assert heshan.tally.out_of_contact == 1 and heshan.zero_out_of_contact is False
    assert heshan.tally.last_out_of_contact_dt == bj('2025-10-12 11:30')
    assert heshan.out_of_contact_streak_days == 19  # 10-13 … 10-31
    # 桃江 never had one: counted from the unit's set-up on 2025-01-01 to 10-31.
    assert taojiang.zero_out_of_contact is True and taojiang.out_of_contact_streak_days == 304
    assert stats['city'].out_of_contact_streak_days == 19


def test_september_sees_the_earlier_event_only(session: Session, october: October) -> None:
    heshan = {s.unit.code: s for s in unit_breakdown(session, october.org.city, month_period(2025, 9)).children}
    assert heshan[HESHAN].tally.out_of_contact == 1
    assert heshan[HESHAN].tally.last_out_of_contact_dt == bj('2025-09-29 11:30')
    assert heshan[HESHAN].out_of_contact_streak_days == 1  # 09-30


def test_drill_down_sums_to_the_parent(session: Session, october: October) -> None:
    province = unit_breakdown(session, october.org.province, OCTOBER)
    city = unit_breakdown(session, october.org.city, OCTOBER)
    assert [s.unit.code for s in province.children] == ['430900']
    assert province.children[0].tally == city.total.tally
    assert city.total.tally == city.children[0].tally + city.children[1].tally
    assert city.own is None  # nothing is handled at the city itself


def test_rows_at_the_unit_itself_are_its_own(session: Session, october: October) -> None:
    county = unit_breakdown(session, october.org.county, OCTOBER)
    assert county.own is not None
    assert (county.own.tally.cases_closed, county.own.tally.mediations_concluded) == (4, 3)
    assert [s.unit.code for s in county.children] == ['430922101']
    assert county.children[0].tally.cases_closed == 1
    assert county.total.tally == county.own.tally + county.children[0].tally


def test_township_without_children(session: Session, october: October) -> None:
    township = unit_breakdown(session, october.org.township, OCTOBER)
    assert township.children == [] and township.own is None
    assert township.total.tally.tasks_completed == 2


def test_empty_unit_has_no_rates(session: Session, org: Org, clock: FrozenClock) -> None:
    stats = unit_breakdown(session, org.city, OCTOBER).total
    assert (stats.on_time_rate, stats.overdue_rate, stats.mediation_success_rate, stats.avg_task_hours) == (
        None, None, None, None)
    assert stats.tally.cases_opened == 0 and stats.zero_out_of_contact is True
    assert stats.measure('zero_out_of_contact') == 1.0 and stats.measure('on_time_rate') is None


def test_without_a_registered_signal_nothing_claims_zero_out_of_contact(session: Session, org: Org,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistics, '_out_of_contact', {})
    stats = unit_breakdown(session, org.city, OCTOBER).total
    assert stats.zero_out_of_contact is None and stats.out_of_contact_streak_days is None


def test_registered_domain_sources() -> None:
    assert [m.kind for m in statistics.mediation_outcomes()] == ['dispute_mediation']
    [signal] = statistics.out_of_contact_signals()
    assert (signal.process_key, signal.bpmn_id, signal.field, signal.value) == (
        'corrections_alarm', 'verify', 'finding', '失联')


# -- time per BPMN step ------------------------------------------------------------------------------------

def test_time_per_step_by_child_unit(session: Session, october: October) -> None:
    city = october.org.city
    rows = {(r.process_key, r.bpmn_id): r for r in step_durations(
        session, city, [october.org.county, october.org.other_county], OCTOBER)}
    register = rows[('demo_intake', 'register')]
    assert (register.title, register.count) == ('登记案件情况', 2)  # A at 桃江, D at 赫山
    assert register.avg_hours == pytest.approx(30)
    assert register.cells[october.org.county.id].avg_hours == pytest.approx(24)
    assert register.cells[october.org.other_county.id].avg_hours == pytest.approx(36)
    assert rows[('demo_intake', 'review')].cells.keys() == {october.org.county.id}
    verify = rows[('corrections_alarm', 'verify')]
    assert (verify.count, verify.avg_hours, verify.p90_hours) == (2, pytest.approx(2), pytest.approx(3))


def test_p90_is_the_nearest_rank(session: Session, clock: FrozenClock, org: Org, people: dict[str, User],
                                 deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    d = Driver(session, clock, people)
    tasks = [d.start(org.township, '2025-10-01 08:00') for _ in range(10)]
    for hours, task in enumerate(tasks, start=1):
        d.complete(task, REGISTER, 'staff', f'2025-10-01 {8 + hours:02d}:00')
    [row] = [r for r in step_durations(session, org.township, [], OCTOBER) if r.bpmn_id == 'register']
    # Ten durations 1 … 10 h: rank ceil(0.9 × 10) = 9.
    assert (row.count, row.avg_hours, row.p90_hours) == (10, pytest.approx(5.5), pytest.approx(9))
    assert row.cells.keys() == {None}


def test_cancelled_tasks_are_neither_done_nor_open(session: Session, october: October) -> None:
    # 登记 B is cancelled on 10-15 (as the runtime does when a step is withdrawn): not done, not open at the end.
    b = session.scalars(sa.select(HumanTask).where(HumanTask.org_path == october.org.township.path,
                                                  HumanTask.created_dt == bj('2025-09-28 09:00'))).one()
    b.status, b.completed_dt = 'cancelled', bj('2025-10-15 09:00')
    session.commit()
    stats = _stats(session, october)
    assert stats[TAOJIANG].tally.tasks_completed == 2
    assert (stats[TAOJIANG].tally.open_tasks, stats[TAOJIANG].tally.overdue_tasks) == (1, 0)
