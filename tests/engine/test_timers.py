"""BPMN timers end to end: the real engine, database and worker, with the frozen clock moved by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.clock import LOCAL_ZONE, FrozenClock
from engine.messages import signal_case, waiting_signals
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import ClaimedJob, Worker
from tests.conftest import executed_statements
from tests.fixtures.directory import Org

BPMN = 'tests/engine/bpmn'
Starter = Callable[..., tuple[Case, ProcessInstance]]


@pytest.fixture
def worker(session_factory: sessionmaker[Session], clock: FrozenClock) -> Worker:
    return Worker(session_factory, name='timer-test', batch_size=50, clock=clock)


@pytest.fixture
def start(session: Session, org: Org, deploy_file: Callable[[str], ProcessDefinition],
          clock: FrozenClock) -> Starter:
    """Deploy ``tests/engine/bpmn/<key>.bpmn`` and open a case on it (committed), on the frozen clock."""
    def factory(key: str, data: dict[str, object] | None = None) -> tuple[Case, ProcessInstance]:
        deploy_file(f'{BPMN}/{key}.bpmn')
        case, _ = runtime.start_case(session, key, data or {}, actor=None, org_unit=org.township)
        session.commit()
        return case, _lifecycle(session, case)
    return factory


def _lifecycle(session: Session, case: Case) -> ProcessInstance:
    return session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id,
                                                            ProcessInstance.is_lifecycle)).one()


def _jobs(session: Session, instance: ProcessInstance) -> list[Job]:
    """The instance's BPMN timer jobs (its tasks' deadlines add reminder and escalation jobs of their own)."""
    session.expire_all()
    return list(session.scalars(sa.select(Job).where(Job.instance_id == instance.id, Job.kind == 'timer')
                                .order_by(Job.id)))


def _tasks(session: Session, instance: ProcessInstance) -> list[tuple[str, str]]:
    session.expire_all()
    return [(t.bpmn_id, t.status) for t in session.scalars(
        sa.select(HumanTask).where(HumanTask.instance_id == instance.id).order_by(HumanTask.id))]


def _refresh(session: Session, instance: ProcessInstance) -> ProcessInstance:
    session.expire_all()
    fresh = session.get(ProcessInstance, instance.id)
    assert fresh is not None
    return fresh


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_intermediate_duration_timer_waits_then_fires(session: Session, start: Starter,
                                                      clock: FrozenClock, worker: Worker) -> None:
    _, instance = start('timer_intermediate')
    due = clock.now() + timedelta(days=3)
    [job] = _jobs(session, instance)
    assert (job.kind, job.status, job.due_dt, job.payload) == ('timer', 'pending', due, {'bpmn_id': 'wait_3d'})
    assert job.key.startswith(f'timer:{instance.id}:') and job.key.endswith(due.isoformat())
    assert instance.status == 'waiting' and instance.next_timer_dt == due
    assert _tasks(session, instance) == []

    clock.advance(timedelta(days=2, hours=23))
    assert worker.run_once() == 0  # not due yet: nothing claimed
    clock.advance(timedelta(hours=1, minutes=1))
    assert worker.run_once() == 1

    [job] = _jobs(session, instance)
    assert job.status == 'done' and job.done_dt == clock.now() and job.attempts == 1
    assert job.lock_expires_dt is None
    fresh = _refresh(session, instance)
    assert fresh.status == 'running' and fresh.next_timer_dt is None
    assert _tasks(session, instance) == [('follow_up', 'open')]
    assert worker.run_once() == 0


def test_timer_after_an_event_based_gateway_fires_and_takes_its_branch(session: Session, start: Starter,
                                                                        clock: FrozenClock, worker: Worker) -> None:
    _, instance = start('timer_event_gateway')
    due = clock.now() + timedelta(days=3)
    [job] = _jobs(session, instance)
    assert (job.status, job.due_dt) == ('pending', due) and instance.next_timer_dt == due
    assert waiting_signals(runtime.restore_workflow(session, instance)[0]) == {'tests.withdrawn'}
    clock.advance(timedelta(days=3, minutes=1))
    assert worker.run_once() == 1
    [job] = _jobs(session, instance)
    assert job.status == 'done' and _refresh(session, instance).next_timer_dt is None
    assert _tasks(session, instance) == [('follow_up', 'open')]


def test_the_other_event_at_the_gateway_withdraws_its_timer(session: Session, start: Starter,
                                                            clock: FrozenClock, worker: Worker) -> None:
    case, instance = start('timer_event_gateway')
    assert signal_case(session, case, 'tests.withdrawn', actor=None) == [instance.id]
    session.commit()
    [job] = _jobs(session, instance)
    assert job.status == 'cancelled'  # withdrawn, not fired
    fresh = _refresh(session, instance)
    assert fresh.status == 'completed' and fresh.next_timer_dt is None and _tasks(session, instance) == []
    clock.advance(timedelta(days=4))
    assert worker.run_once() == 0


def test_timer_due_exactly_now_is_postponed_not_lost(session: Session, start: Starter,
                                                     clock: FrozenClock, worker: Worker) -> None:
    # SpiffWorkflow fires only once "now" is strictly past the due time; the job must not be marked
    # done while its timer still waits, or the timer would never fire.
    _, instance = start('timer_intermediate')
    clock.advance(timedelta(days=3))
    assert worker.run_once() == 1
    [job] = _jobs(session, instance)
    assert job.status == 'pending' and job.attempts == 0 and job.lock_owner is None
    assert job.due_dt == clock.now() + timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    assert worker.run_once() == 1
    assert _jobs(session, instance)[0].status == 'done'
    assert _tasks(session, instance) == [('follow_up', 'open')]


def test_time_date_timer_reads_task_data_in_beijing_time(session: Session, start: Starter,
                                                         clock: FrozenClock, worker: Worker) -> None:
    # hearing_on + "T09:00:00" is naive: 09:00 in Asia/Shanghai, 01:00 UTC.
    _, instance = start('timer_date', {'hearing_on': '2025-10-09'})
    due = _utc(2025, 10, 9, 1, 0)
    [job] = _jobs(session, instance)
    assert job.due_dt == due and instance.next_timer_dt == due

    clock.set(due - timedelta(minutes=1))
    assert worker.run_once() == 0
    clock.set(due + timedelta(minutes=1))
    assert worker.run_once() == 1
    assert _tasks(session, instance) == [('attend_hearing', 'open')]
    assert _refresh(session, instance).next_timer_dt is None


def test_boundary_timers_non_interrupting_then_interrupting(session: Session,
                                                            start: Starter,
                                                            clock: FrozenClock, worker: Worker) -> None:
    t0 = clock.now()
    _, instance = start('timer_boundary')
    jobs = _jobs(session, instance)
    assert sorted((j.payload['bpmn_id'], j.due_dt) for j in jobs) == [
        ('overdue_10d', t0 + timedelta(days=10)), ('remind_5d', t0 + timedelta(days=5))]
    assert instance.next_timer_dt == t0 + timedelta(days=5)

    # Day 5: the non-interrupting timer adds a side task; review stays open.
    clock.advance(timedelta(days=5, minutes=1))
    assert worker.run_once() == 1
    assert _tasks(session, instance) == [('review', 'open'), ('chase_review', 'open')]
    assert _refresh(session, instance).next_timer_dt == t0 + timedelta(days=10)

    # Day 10: the interrupting timer cancels review (its row too) and opens the supervisor's task.
    clock.advance(timedelta(days=5))
    assert worker.run_once() == 1
    assert _tasks(session, instance) == [('review', 'cancelled'), ('chase_review', 'open'),
                                         ('supervisor_review', 'open')]
    assert [j.status for j in _jobs(session, instance)] == ['done', 'done']
    assert _refresh(session, instance).next_timer_dt is None


def test_a_command_whose_timers_still_wait_keeps_their_jobs_without_looking_up_keys(
        session: Session, start: Starter, clock: FrozenClock) -> None:
    _, instance = start('timer_boundary')
    before = [(j.id, j.status) for j in _jobs(session, instance)]
    clock.advance(timedelta(days=1))
    with executed_statements(session) as statements:
        runtime.fire_timers(session, instance.id)  # nothing due: the instance is run on and saved
    session.commit()
    assert [(j.id, j.status) for j in _jobs(session, instance)] == before == [(before[0][0], 'pending'),
                                                                             (before[1][0], 'pending')]
    # Both waiting timers have their pending job: no key is new, so no key needs looking up.
    assert not [sql for sql, _ in statements if 'key' in sql and 'FROM jobs' in sql and 'jobs.status' not in sql]


def test_completing_the_task_first_cancels_its_boundary_timer_jobs(
        session: Session, start: Starter, clock: FrozenClock, worker: Worker,
        create_member: Callable[..., User], org: Org) -> None:
    officer = create_member('officer', 'county_officer', org.county)
    case, instance = start('timer_boundary')
    review = session.scalars(sa.select(HumanTask).where(HumanTask.bpmn_id == 'review')).one()
    clock.advance(timedelta(days=1))
    runtime.complete_task(session, review.id, {}, actor=officer, scope=load_scope(session, officer))
    session.commit()
    assert [j.status for j in _jobs(session, instance)] == ['cancelled', 'cancelled']
    assert _refresh(session, instance).status == 'completed'
    clock.advance(timedelta(days=30))
    assert worker.run_once() == 0


def test_cycle_boundary_timer_fires_three_times(session: Session, start: Starter,
                                                clock: FrozenClock, worker: Worker) -> None:
    t0 = clock.now()
    _, instance = start('timer_cycle')
    assert instance.next_timer_dt == t0 + timedelta(hours=1)
    for hour in (1, 2, 3):
        clock.set(t0 + timedelta(hours=hour, minutes=1))
        assert worker.run_once() == 1
        assert _tasks(session, instance) == [('supervise', 'open')] + [('check_in', 'open')] * hour
        assert _refresh(session, instance).next_timer_dt == t0 + timedelta(hours=hour + 1)
    # After the third firing SpiffWorkflow settles the exhausted cycle at its next time: no fourth task.
    clock.set(t0 + timedelta(hours=10))
    assert worker.run_once() == 1
    assert worker.run_once() == 0
    assert len(_tasks(session, instance)) == 4
    jobs = _jobs(session, instance)
    assert [j.status for j in jobs] == ['done'] * 4 and len({j.key for j in jobs}) == 4
    assert _refresh(session, instance).next_timer_dt is None


def test_timer_start_event_on_a_request_instance(session: Session, start: Starter,
                                                 deploy_file: Callable[[str], ProcessDefinition], clock: FrozenClock,
                                                 worker: Worker) -> None:
    case, _ = start('timer_intermediate')
    definition = deploy_file(f'{BPMN}/timer_start.bpmn')
    request, tasks = runtime.start_instance(session, case, definition, {'reason': '次日走访'}, actor=None,
                                            is_lifecycle=False)
    session.commit()
    assert tasks == [] and request.status == 'waiting'
    assert request.next_timer_dt == clock.now() + timedelta(days=1)

    clock.advance(timedelta(days=1, minutes=1))
    assert worker.run_once() == 1  # only the request's timer is due; the lifecycle's is at day 3
    assert _tasks(session, request) == [('home_visit', 'open')]
    assert _refresh(session, request).status == 'running'
    assert _jobs(session, _lifecycle(session, case))[0].status == 'pending'


def test_timer_job_run_twice_changes_nothing(session: Session, start: Starter,
                                             session_factory: sessionmaker[Session], clock: FrozenClock,
                                             worker: Worker) -> None:
    from engine.worker import fire_timer_job
    _, instance = start('timer_intermediate')
    clock.advance(timedelta(days=3, minutes=1))
    worker.run_once()
    revision = _refresh(session, instance).revision
    # A second delivery of the same job (say, after a crash before the worker saw its commit).
    with session_factory.begin() as other:
        job = other.scalars(sa.select(Job).where(Job.instance_id == instance.id, Job.kind == 'timer')).one()
        fire_timer_job(other, job)
        assert job.status == 'done'
    assert _tasks(session, instance) == [('follow_up', 'open')]
    assert len(_jobs(session, instance)) == 1
    assert _refresh(session, instance).revision == revision + 1  # re-saved, nothing else


def test_timer_fired_by_a_user_command_marks_its_job_done(
        session: Session, start: Starter, clock: FrozenClock, worker: Worker,
        create_member: Callable[..., User], org: Org) -> None:
    # Every command runs the engine, which fires timers that are past due; their jobs must be settled
    # then, not left for the worker to fire a second time.
    staff = create_member('staff', 'township_staff', org.township)
    t0 = clock.now()
    _, instance = start('timer_cycle')
    clock.set(t0 + timedelta(hours=1, minutes=1))
    worker.run_once()
    check_in = session.scalars(sa.select(HumanTask).where(HumanTask.bpmn_id == 'check_in')).one()
    clock.set(t0 + timedelta(hours=2, minutes=1))  # the second hour is due, the worker has not run
    runtime.complete_task(session, check_in.id, {}, actor=staff, scope=load_scope(session, staff))
    session.commit()
    assert [j.status for j in _jobs(session, instance)] == ['done', 'done', 'pending']
    assert _tasks(session, instance) == [('supervise', 'open'), ('check_in', 'completed'), ('check_in', 'open')]
    assert worker.run_once() == 0


def test_task_completed_after_its_boundary_timer_was_due_wins(
        session: Session, start: Starter, clock: FrozenClock, worker: Worker,
        create_member: Callable[..., User], org: Org) -> None:
    # The user got there before the worker: SpiffWorkflow completes the task and withdraws its boundary
    # timers, so the due-but-unfired reminder is cancelled, never fired afterwards.
    officer = create_member('officer', 'county_officer', org.county)
    _, instance = start('timer_boundary')
    clock.advance(timedelta(days=5, minutes=1))
    review = session.scalars(sa.select(HumanTask).where(HumanTask.bpmn_id == 'review')).one()
    runtime.complete_task(session, review.id, {}, actor=officer, scope=load_scope(session, officer))
    session.commit()
    assert [j.status for j in _jobs(session, instance)] == ['cancelled', 'cancelled']
    assert _tasks(session, instance) == [('review', 'completed')]
    assert worker.run_once() == 0


# -- the clock moved across the National Day holiday week -----------------------------------------------

def _bj(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_ZONE)


@pytest.fixture
def holiday_cases(session: Session, org: Org, create_member: Callable[..., User],
                  start: Starter,
                  deploy_file: Callable[[str], ProcessDefinition]) -> dict[int, str]:
    """Timers due on 09-29, 10-01, 10-04 and 10-08 (started out of order) and a 10-working-day task.

    :return: instance id → label
    """
    create_member('staff', 'township_staff', org.township)
    create_member('city_sup', 'supervisor', org.city)
    labels = {}
    for hearing in ('2025-10-08', '2025-10-01', '2025-10-04'):
        _, instance = start('timer_date', {'hearing_on': hearing})
        labels[instance.id] = f'hearing {hearing[5:]}'
    _, instance = start('timer_intermediate')  # 09-26 09:00 + P3D
    labels[instance.id] = 'wait 3d'
    deploy_file(f'{BPMN}/deadline_assessment.bpmn')  # 10 working days from 09-26: due 10-16
    case, _ = runtime.start_case(session, 'deadline_assessment', {'commission_received_on': '2025-09-26'},
                                 actor=None, org_unit=org.township)
    session.commit()
    labels[_lifecycle(session, case).id] = 'assessment'
    return labels


def _recording(worker: Worker, labels: dict[int, str], clock: FrozenClock,
               monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    fired: list[tuple[str, str]] = []
    run_job = worker.run_job

    def record(claimed: ClaimedJob) -> str:
        outcome = run_job(claimed)
        # reminder:{task}:{offset}:{due} — the rung tells the reminders apart
        what = f'reminder {claimed.key.split(":")[2]}' if claimed.kind == 'reminder' else claimed.kind
        when = clock.now().astimezone(LOCAL_ZONE).strftime('%m-%d %H:%M')
        fired.append((f'{labels[claimed.instance_id or 0]}: {what} {outcome}', when))
        return outcome

    monkeypatch.setattr(worker, 'run_job', record)
    return fired


def test_holiday_week_day_by_day_timers_and_reminders_fire_in_due_order(
        holiday_cases: dict[int, str], clock: FrozenClock, worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    fired = _recording(worker, holiday_cases, clock, monkeypatch)
    day = _bj('2025-09-26 09:30')
    while day < _bj('2025-10-18 00:00'):
        clock.set(day)
        while worker.run_once():
            pass
        day += timedelta(days=1)
    # BPMN timers count calendar time and fire on holidays; the working-day reminders skip 10-01..10-08.
    assert fired == [
        ('wait 3d: timer done', '09-29 09:30'),
        ('hearing 10-01: timer done', '10-01 09:30'),
        ('hearing 10-04: timer done', '10-04 09:30'),
        ('hearing 10-08: timer done', '10-08 09:30'),
        ('assessment: reminder -5wd done', '10-10 09:30'),
        ('assessment: reminder -2wd done', '10-14 09:30'),
        ('assessment: reminder 0 done', '10-16 09:30'),
        ('assessment: escalation done', '10-17 09:30'),  # due 10-16 23:59:59
    ]


def test_worker_catching_up_after_the_holiday_fires_in_due_order(
        holiday_cases: dict[int, str], clock: FrozenClock, worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    fired = _recording(worker, holiday_cases, clock, monkeypatch)
    clock.set(_bj('2025-10-09 08:00'))  # the worker was down all week
    assert worker.run_once() == 4
    assert [label for label, _ in fired] == ['wait 3d: timer done', 'hearing 10-01: timer done',
                                             'hearing 10-04: timer done', 'hearing 10-08: timer done']
