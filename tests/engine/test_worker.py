"""The worker: claiming, locks, retries, dead jobs, outages, and crash/concurrency reliability."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.clock import FrozenClock
from engine.errors import Conflict, NotFound
from engine.jobs import register_handler, unregister_handler
from engine.models.audit import AuditEvent
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.users import User
from engine.worker import Worker, cancel_job, retry_dead_job
from tests.engine import worker_support
from tests.engine.worker_support import EFFECT_KIND, effect_counts, effects
from tests.fixtures.directory import Org

ROOT = Path(__file__).resolve().parent.parent.parent
FLAKY_KIND = 'test_flaky'


def flaky_effect(session: Session, job: Job) -> None:
    """Record the effect, then fail on the first ``payload['fail_times']`` tries: a crash after the effect."""
    worker_support.record_effect(session, job)
    if job.attempts <= job.payload.get('fail_times', 0):
        raise RuntimeError(f'boom on try {job.attempts}')


@pytest.fixture
def effects_db(db_engine: Engine) -> Iterator[Engine]:
    """The effects table and the test job kinds."""
    worker_support.create_effects_table(db_engine)
    worker_support.register()
    register_handler(FLAKY_KIND, flaky_effect, replace=True)
    yield db_engine
    # The table stays: the test's session may still hold a transaction that read it, and a DROP would wait
    # for it forever. The next test's set-up drops and re-creates it.
    unregister_handler(EFFECT_KIND)
    unregister_handler(FLAKY_KIND)


@pytest.fixture
def worker(session_factory: sessionmaker[Session], clock: FrozenClock, effects_db: Engine) -> Worker:
    return Worker(session_factory, name='w1', batch_size=10, lock_seconds=60, max_attempts=3, clock=clock,
                  retry_base_seconds=30)


def _add_jobs(session: Session, count: int, *, due: datetime, kind: str = EFFECT_KIND, prefix: str = 'effect',
              payload: dict[str, object] | None = None, instance_id: int | None = None) -> list[str]:
    keys = [f'{prefix}:{index:05d}' for index in range(count)]
    session.execute(sa.insert(Job), [
        {'kind': kind, 'key': key, 'due_dt': due, 'status': 'pending', 'attempts': 0, 'payload': payload or {},
         'created_dt': due, 'instance_id': instance_id} for key in keys])
    session.commit()
    return keys


def _job(session: Session, key: str) -> Job:
    session.expire_all()
    return session.scalars(sa.select(Job).where(Job.key == key)).one()


def _statuses(session: Session) -> dict[str, int]:
    session.expire_all()
    return dict(session.execute(sa.select(Job.status, sa.func.count()).group_by(Job.status)).all())


# -- claiming and locks ---------------------------------------------------------------------------------

def test_claims_due_unlocked_jobs_oldest_first_up_to_a_batch(session: Session, worker: Worker,
                                                             clock: FrozenClock) -> None:
    now = clock.now()
    for offset in (3, 1, 2):
        _add_jobs(session, 5, due=now - timedelta(minutes=offset), prefix=f'past{offset}')
    _add_jobs(session, 2, due=now + timedelta(seconds=1), prefix='future')
    claimed = worker.claim()
    assert [c.key for c in claimed] == [f'past3:{i:05d}' for i in range(5)] + [f'past2:{i:05d}' for i in range(5)]
    job = _job(session, claimed[0].key)
    assert (job.lock_owner, job.lock_expires_dt, job.attempts) == ('w1', now + timedelta(seconds=60), 1)
    assert [c.key for c in worker.claim()] == [f'past1:{i:05d}' for i in range(5)]  # the rest: still locked
    assert worker.claim() == []


def test_run_once_runs_each_job_once_and_marks_it_done(session: Session, worker: Worker, clock: FrozenClock) -> None:
    keys = _add_jobs(session, 25, due=clock.now())
    assert [worker.run_once() for _ in range(4)] == [10, 10, 5, 0]
    assert effect_counts(session) == dict.fromkeys(keys, 1)
    job = _job(session, keys[0])
    assert (job.status, job.done_dt, job.lock_expires_dt, job.attempts) == ('done', clock.now(), None, 1)


CHANGING_KIND = 'test_changing'


def test_a_job_its_handler_left_alone_is_finished_without_an_orm_flush(session: Session, worker: Worker,
                                                                       clock: FrozenClock) -> None:
    keys = _add_jobs(session, 3, due=clock.now())
    flushed: list[str] = []

    def note(flushing: Session, *args: object) -> None:
        flushed.extend(type(held).__name__ for held in (*flushing.new, *flushing.dirty))

    sa.event.listen(Session, 'before_flush', note)
    try:
        assert worker.run_once() == 3
    finally:
        sa.event.remove(Session, 'before_flush', note)
    assert 'Job' not in flushed
    for key in keys:
        job = _job(session, key)
        assert (job.status, job.done_dt, job.lock_expires_dt) == ('done', clock.now(), None)


def test_a_job_its_handler_changed_keeps_the_change_and_its_status(session: Session, worker: Worker,
                                                                   clock: FrozenClock) -> None:
    def change(handled: Session, job: Job) -> None:
        job.payload = {**job.payload, 'seen': True}
        if job.key.endswith('1'):
            job.status = 'cancelled'

    register_handler(CHANGING_KIND, change, replace=True)
    try:
        keys = _add_jobs(session, 2, due=clock.now(), kind=CHANGING_KIND, prefix='changing')
        assert worker.run_once() == 2
    finally:
        unregister_handler(CHANGING_KIND)
    done, cancelled = (_job(session, key) for key in keys)
    assert (done.status, done.payload, done.done_dt, done.lock_expires_dt) == ('done', {'seen': True}, clock.now(),
                                                                               None)
    assert (cancelled.status, cancelled.payload, cancelled.done_dt) == ('cancelled', {'seen': True}, clock.now())


def test_a_job_whose_lock_expired_is_taken_over(session: Session, session_factory: sessionmaker[Session],
                                                worker: Worker, clock: FrozenClock) -> None:
    [key] = _add_jobs(session, 1, due=clock.now())
    [claimed] = worker.claim()  # w1 claims, then "dies" without running it
    other = Worker(session_factory, name='w2', lock_seconds=60, clock=clock)
    assert other.run_once() == 0  # w1's lock still holds
    clock.advance(timedelta(seconds=61))
    assert other.run_once() == 1
    assert effect_counts(session) == {key: 1}
    assert worker.run_job(claimed) == 'skipped'  # w1 wakes up: no longer its job
    assert effect_counts(session) == {key: 1}
    assert _job(session, key).attempts == 2


def test_job_started_too_often_without_finishing_is_buried(session: Session, worker: Worker,
                                                           clock: FrozenClock) -> None:
    # Every try so far took its worker down (claimed, never finished): do not try a fourth time.
    [key] = _add_jobs(session, 1, due=clock.now())
    for _ in range(3):
        worker.claim()
        clock.advance(timedelta(seconds=61))
    assert worker.run_once() == 1
    job = _job(session, key)
    assert job.status == 'dead' and 'stopped while running it 3 times' in (job.last_error or '')
    assert effect_counts(session) == {}


# -- failures, retries, dead jobs -------------------------------------------------------------------------

def test_failure_rolls_back_the_effect_and_retries_with_backoff(session: Session, worker: Worker,
                                                                clock: FrozenClock) -> None:
    [key] = _add_jobs(session, 1, due=clock.now(), kind=FLAKY_KIND, payload={'fail_times': 2})
    assert worker.run_once() == 1
    job = _job(session, key)
    assert job.status == 'pending' and job.attempts == 1 and job.last_error == 'RuntimeError: boom on try 1'
    assert job.due_dt == clock.now() + timedelta(seconds=30) and job.lock_owner is None
    assert effect_counts(session) == {}  # the effect was written, then rolled back with the failure

    clock.advance(timedelta(seconds=31))
    assert worker.run_once() == 1
    assert _job(session, key).due_dt == clock.now() + timedelta(seconds=60)  # doubled
    clock.advance(timedelta(seconds=61))
    assert worker.run_once() == 1
    assert _job(session, key).status == 'done'
    assert effect_counts(session) == {key: 1}


def test_job_failing_max_attempts_times_goes_dead_and_is_audited(session: Session, worker: Worker,
                                                                 clock: FrozenClock) -> None:
    [key] = _add_jobs(session, 1, due=clock.now(), kind=FLAKY_KIND, payload={'fail_times': 99})
    outcomes = []
    for _ in range(3):
        outcomes += [worker.run_job(c) for c in worker.claim()]
        clock.advance(timedelta(hours=1))
    assert outcomes == ['retry', 'retry', 'dead']
    job = _job(session, key)
    assert job.status == 'dead' and job.attempts == 3 and job.done_dt is not None
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'job.dead')).one()
    assert event.after == {'kind': FLAKY_KIND, 'key': key, 'attempts': 3, 'error': 'RuntimeError: boom on try 3'}
    assert worker.run_once() == 0


def test_unknown_kind_fails_like_any_error(session: Session, worker: Worker, clock: FrozenClock) -> None:
    [key] = _add_jobs(session, 1, due=clock.now(), kind='nobody_home')
    worker.run_once()
    job = _job(session, key)
    assert job.status == 'pending' and job.attempts == 1 and 'nobody_home' in (job.last_error or '')


def test_workflow_fault_in_a_timer_is_recorded_on_the_instance(
        session: Session, worker: Worker, clock: FrozenClock, org: Org,
        deploy_file: Callable[[str], object]) -> None:
    deploy_file('tests/engine/bpmn/timer_fault.bpmn')
    case, _ = runtime.start_case(session, 'timer_fault', {'divisor': 0}, actor=None, org_unit=org.township)
    session.commit()
    clock.advance(timedelta(hours=1, minutes=1))
    assert worker.run_once() == 1
    session.expire_all()
    instance = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)).one()
    job = session.scalars(sa.select(Job).where(Job.instance_id == instance.id)).one()
    assert job.status == 'pending' and job.attempts == 1 and 'WorkflowFault' in (job.last_error or '')
    assert instance.status == 'error' and instance.error_message  # the firing was rolled back, the fault kept
    assert session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.kind == 'instance.fault')).one()


@pytest.fixture
def chief(org: Org, create_member: Callable[..., User]) -> User:
    return create_member('chief', 'supervisor', org.county)


def _dead_timer_job(session: Session, org: Org, deploy_file: Callable[[str], object], worker: Worker,
                    clock: FrozenClock) -> Job:
    deploy_file('tests/engine/bpmn/timer_fault.bpmn')
    runtime.start_case(session, 'timer_fault', {'divisor': 0}, actor=None, org_unit=org.township)
    session.commit()
    for _ in range(3):
        clock.advance(timedelta(hours=2))
        worker.run_once()
    session.expire_all()
    job = session.scalars(sa.select(Job)).one()
    assert job.status == 'dead'
    return job


def test_supervisor_retries_a_dead_job(session: Session, worker: Worker, clock: FrozenClock, org: Org,
                                       deploy_file: Callable[[str], object], chief: User,
                                       create_member: Callable[..., User]) -> None:
    job = _dead_timer_job(session, org, deploy_file, worker, clock)
    far_chief = create_member('far_chief', 'supervisor', org.other_county)
    with pytest.raises(NotFound):  # the case lies outside the caller's subtree
        retry_dead_job(session, job.id, actor=far_chief, reason='x', scope=load_scope(session, far_chief))
    session.rollback()
    retried = retry_dead_job(session, job.id, actor=chief, reason='除数已更正', scope=load_scope(session, chief))
    assert (retried.status, retried.attempts, retried.due_dt) == ('pending', 0, clock.now())
    session.commit()
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'job.retried')).one()
    assert event.note == '除数已更正' and event.actor_id == chief.id and event.before == {'status': 'dead'}
    with pytest.raises(Conflict):
        retry_dead_job(session, job.id, actor=chief, reason='again')
    session.rollback()
    assert worker.run_once() == 1  # runs again (and fails again: the data is still wrong)


def test_supervisor_cancels_a_pending_job(session: Session, worker: Worker, clock: FrozenClock,
                                          chief: User) -> None:
    [key] = _add_jobs(session, 1, due=clock.now())
    job = _job(session, key)
    cancel_job(session, job.id, actor=chief, reason='重复任务')
    session.commit()
    assert worker.run_once() == 0 and effect_counts(session) == {}
    assert session.scalars(sa.select(AuditEvent.note).where(AuditEvent.kind == 'job.cancelled')).one() == '重复任务'
    with pytest.raises(Conflict):
        cancel_job(session, job.id, actor=chief, reason='again')


# -- the loop: outages and shutdown ------------------------------------------------------------------------

def _run_in_thread(worker: Worker) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    return thread, stop


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting')
        time.sleep(0.02)


def test_run_forever_rides_out_database_errors(session: Session, session_factory: sessionmaker[Session],
                                               clock: FrozenClock, effects_db: Engine, caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _add_jobs(session, 5, due=clock.now())
    worker = Worker(session_factory, name='w1', poll_interval=0.01, clock=clock)
    real_claim, failures = worker.claim, [2]

    def claim_while_db_down() -> list[object]:
        if failures[0]:
            failures[0] -= 1
            raise sa.exc.OperationalError('SELECT 1', {}, ConnectionError('server closed the connection'))
        return real_claim()  # type: ignore[return-value]

    monkeypatch.setattr(worker, 'claim', claim_while_db_down)
    caplog.set_level(logging.INFO, logger='engine.worker')
    thread, stop = _run_in_thread(worker)
    with Session(effects_db) as check:
        _wait_for(lambda: sum(effect_counts(check).values()) == 5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert effect_counts(session) == dict.fromkeys(keys, 1)
    assert sum('database unavailable' in r.getMessage() for r in caplog.records) == 2
    assert sum(' done ' in r.getMessage() for r in caplog.records) == 5  # one line per job


def test_stop_mid_batch_releases_the_unrun_jobs(session: Session, worker: Worker, clock: FrozenClock) -> None:
    keys = _add_jobs(session, 5, due=clock.now())
    stop = threading.Event()

    def effect_then_stop(session: Session, job: Job) -> None:
        worker_support.record_effect(session, job)
        stop.set()

    register_handler(EFFECT_KIND, effect_then_stop, replace=True)
    assert worker.run_once(stop) == 5
    assert effect_counts(session) == {keys[0]: 1}
    rest = _job(session, keys[1])
    assert (rest.status, rest.lock_owner, rest.attempts) == ('pending', None, 0)
    worker_support.register()
    assert worker.run_once() == 4


@pytest.mark.postgres
def test_worker_survives_postgres_dropping_its_connections(session: Session, session_factory: sessionmaker[Session],
                                                           clock: FrozenClock, effects_db: Engine) -> None:
    worker = Worker(session_factory, name='w1', poll_interval=0.02, clock=clock)
    thread, stop = _run_in_thread(worker)
    _add_jobs(session, 20, due=clock.now(), prefix='before')
    with Session(effects_db) as check:
        _wait_for(lambda: sum(effect_counts(check).values()) == 20)
        # What a database restart does to every open connection.
        check.execute(sa.text('SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
                              'WHERE datname = current_database() AND pid <> pg_backend_pid()'))
        check.commit()
    session.close()
    _add_jobs(session, 20, due=clock.now(), prefix='after')
    with Session(effects_db) as check:
        _wait_for(lambda: sum(effect_counts(check).values()) == 40)
    stop.set()
    thread.join(5)
    assert set(effect_counts(session).values()) == {1}


# -- reliability: a killed worker, two workers ---------------------------------------------------------------

def _spawn(db_url: str, name: str, log: Path, *, lock_seconds: float = 1.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, '-m', 'tests.engine.worker_support', db_url, '--name', name,
         '--lock-seconds', str(lock_seconds), '--batch', '10'],
        cwd=ROOT, stdout=log.open('wb'), stderr=subprocess.STDOUT, env={**os.environ, 'PYTHONPATH': str(ROOT)})


def test_worker_killed_mid_batch_then_restarted_fires_every_job_once(
        session: Session, db_url: str, effects_db: Engine, tmp_path: Path) -> None:
    # Real clock: the worker runs in another process.
    keys = _add_jobs(session, 60, due=datetime.now(UTC) - timedelta(minutes=1), payload={'sleep': 0.05})
    doomed = _spawn(db_url, 'doomed', tmp_path / 'doomed.log')
    try:
        with Session(effects_db) as check:
            _wait_for(lambda: sum(effect_counts(check).values()) >= 15)  # in its second batch of ten
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)

    session.expire_all()
    done = set(session.scalars(sa.select(Job.key).where(Job.status == 'done')))
    counts = effect_counts(session)
    assert set(counts) == done and set(counts.values()) == {1}  # effect and "done" committed together
    stranded = session.scalars(sa.select(Job.key).where(Job.status == 'pending', Job.lock_owner == 'doomed')).all()
    assert stranded, 'killed between batches; expected claimed, unrun jobs'

    revived = _spawn(db_url, 'revived', tmp_path / 'revived.log')
    try:
        _wait_for(lambda: _statuses(session) == {'done': 60})
    finally:
        revived.send_signal(signal.SIGTERM)
        assert revived.wait(10) == 0  # a graceful stop
    assert effect_counts(session) == dict.fromkeys(keys, 1)
    session.expire_all()
    assert set(session.scalars(sa.select(Job.lock_owner).where(Job.key.in_(stranded)))) == {'revived'}


@pytest.mark.postgres
def test_two_workers_share_ten_thousand_jobs_none_lost_none_doubled(
        session: Session, session_factory: sessionmaker[Session], clock: FrozenClock, effects_db: Engine) -> None:
    keys = _add_jobs(session, 10_000, due=clock.now())
    workers = [Worker(session_factory, name=f'w{n}', batch_size=100, clock=clock) for n in (1, 2)]

    def drain(worker: Worker) -> None:
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    counts = effect_counts(session)
    assert len(counts) == 10_000 and set(counts) == set(keys) and set(counts.values()) == {1}
    assert _statuses(session) == {'done': 10_000}
    by_worker = dict(session.execute(sa.select(effects.c.worker, sa.func.count()).group_by(effects.c.worker)).all())
    assert set(by_worker) == {'w1', 'w2'} and sum(by_worker.values()) == 10_000


def test_timer_handler_is_found_without_importing_the_worker_first() -> None:
    import subprocess
    import sys

    code = 'import engine.models.all; from engine.jobs import handler_for; print(handler_for("timer").__name__)'
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=False)
    assert result.stdout.strip() == 'fire_timer_job', result.stderr
