"""The worker: claims due jobs from the job table and runs each in its own unit of work.

A job's effect and its ``done`` mark are written in the same transaction, so a worker that dies between
the two leaves neither, and the job runs again once its lock lapses. Handlers are looked up by kind in
:mod:`engine.jobs`; this module registers the ``timer`` handler.

Claiming differs by backend:

* **PostgreSQL**: any number of workers, on any number of machines. A worker claims a batch with
  ``WITH due AS (SELECT ... FOR UPDATE SKIP LOCKED) UPDATE jobs ... FROM due``, which stamps its name and
  a lock expiry on the rows and commits; other workers skip rows being claimed and ignore rows whose lock
  has not lapsed.
* **SQLite**: one worker only. SQLite has no ``SKIP LOCKED``; the claim is the same single ``UPDATE``,
  which SQLite runs under its database write lock, so it is atomic, but two workers would only take turns
  on that lock, and a long job would keep the web server waiting.

Attempts are counted when a job is claimed, not when it fails: a job that kills its worker every time
(out of memory, a segfault in a library) is still buried after ``max_attempts`` starts instead of taking
down every worker that picks it up.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from engine import audit, runtime
from engine.access import Scope, refuse, supervised_cases_clause
from engine.clock import Clock, get_clock
from engine.db import unit_of_work
from engine.errors import Conflict, NotFound, WorkflowFault
from engine.jobs import handler_for, register_handler
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.users import User

__all__ = ['JobPostponed', 'Worker', 'cancel_job', 'fire_timer_job', 'retry_dead_job', 'default_worker_name']

logger = logging.getLogger(__name__)

#: how long a timer job waits when its instance is suspended before it looks again
SUSPENDED_RECHECK = timedelta(hours=1)
#: SpiffWorkflow fires a timer only once "now" is strictly past its due time
_TIMER_GRACE = timedelta(seconds=1)
_MAX_ERROR_CHARS = 2000
#: a claimed job's row lock, if it is still pending and ours, extending our lock; built once (one per job)
_LOCK_JOB = (sa.update(Job).where(Job.id == sa.bindparam('job_id'), Job.status == 'pending',
                                  Job.lock_owner == sa.bindparam('owner'))
             .values(lock_expires_dt=sa.bindparam('until')).returning(Job))
_JOBS = cast(sa.Table, Job.__table__)
_FINISH_JOB = (sa.update(_JOBS).where(_JOBS.c.id == sa.bindparam('job_id'))
               .values(status=sa.bindparam('status'), done_dt=sa.bindparam('done'), lock_expires_dt=None))


class JobPostponed(Exception):
    """Raised by a handler whose job is not ready yet: run it again at ``until``.

    Whatever the handler changed is rolled back, and the try is not counted as an attempt.

    :param until: when to try again (timezone-aware)
    """

    def __init__(self, until: datetime, reason: str = '') -> None:
        super().__init__(reason or f'postponed until {until.isoformat()}')
        self.until = until


def default_worker_name() -> str:
    """``host:pid:random``: unique per process, readable in the job table's ``lock_owner``."""
    return f'{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}'


# -- the timer handler --------------------------------------------------------------------------------

def fire_timer_job(session: Session, job: Job) -> None:
    """Fire the due timers of the job's instance and run it on (the ``timer`` job handler).

    Idempotent: :func:`engine.runtime.fire_timers` settles this job itself (``done`` when its timer
    fired, ``cancelled`` when the instance moved on without it), and a timer that already fired is
    never waiting again, so a second run changes nothing.

    :raises JobPostponed: the timer is not due in SpiffWorkflow's eyes yet, or the instance is suspended
    """
    if job.instance_id is None:
        raise ValueError(f'timer job {job.key} names no instance')
    instance = runtime.fire_timers(session, job.instance_id)
    if job.status != 'pending':
        return
    now = get_clock().now()
    if instance.status == 'completed':
        job.status = 'cancelled'
    elif instance.status == 'suspended':
        raise JobPostponed(now + SUSPENDED_RECHECK, 'instance suspended')
    else:
        # Due exactly now: SpiffWorkflow compares with "<", so the timer is still waiting.
        raise JobPostponed(max(job.due_dt, now) + _TIMER_GRACE, 'timer not yet due')


register_handler('timer', fire_timer_job)


# -- the worker ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClaimedJob:
    """A job this worker holds the lock of, as read when it was claimed."""

    id: int
    kind: str
    key: str
    due_dt: datetime
    instance_id: int | None


class Worker:
    """Claims due jobs and runs them, one unit of work each.

    :param session_factory: sessions on the job database (the worker opens its own transactions)
    :param name: the ``lock_owner`` it writes; unique per worker (default: host, pid and a random tag)
    :param batch_size: jobs claimed per round
    :param lock_seconds: how long a claimed job stays ours; after that another worker may take it
    :param max_attempts: tries before a failing job is moved to ``dead``
    :param poll_interval: seconds to wait when there was less than a full batch to do
    :param clock: the clock to read (default: the engine clock in force at each call)
    :param retry_base_seconds: delay after the first failure; doubles with each further failure
    :param retry_max_seconds: longest delay between tries
    """

    def __init__(self, session_factory: sessionmaker[Session], *, name: str | None = None, batch_size: int = 20,
                 lock_seconds: float = 300.0, max_attempts: int = 5, poll_interval: float = 1.0,
                 clock: Clock | None = None, retry_base_seconds: float = 30.0,
                 retry_max_seconds: float = 3600.0) -> None:
        if batch_size < 1 or max_attempts < 1 or lock_seconds <= 0:
            raise ValueError('batch_size and max_attempts must be at least 1, lock_seconds positive')
        self.session_factory = session_factory
        self.name = (name or default_worker_name())[:64]
        self.batch_size = batch_size
        self.lock = timedelta(seconds=lock_seconds)
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.clock = clock
        self.retry_base = timedelta(seconds=retry_base_seconds)
        self.retry_max = timedelta(seconds=retry_max_seconds)
        with session_factory() as probe:
            bind = probe.get_bind()
        self._engine: Engine = bind if isinstance(bind, Engine) else bind.engine
        #: the connection the current batch's jobs run on (None outside a batch)
        self._connection: Connection | None = None
        #: jobs of ours a lost database connection left claimed and unrun: retaken by the next claim
        self._cut_short: list[int] = []

    def now(self) -> datetime:
        """The worker's current time (UTC)."""
        return (self.clock or get_clock()).now()

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff: the delay before the try after ``attempts`` failed ones."""
        doublings = min(max(attempts - 1, 0), 30)  # capped: timedelta overflows long before 2**100
        return min(self.retry_base * (1 << doublings), self.retry_max)

    # -- the loop ---------------------------------------------------------------------------------------

    def run_once(self, stop_event: threading.Event | None = None) -> int:
        """Claim one batch of due jobs and run each in its own transaction.

        :param stop_event: when set between two jobs, the rest of the batch is released unrun
        :return: how many jobs were claimed
        """
        claimed = self.claim()
        if not claimed:
            return 0
        # Until a job is settled it counts as cut short: if the database goes away mid-batch, the rest
        # keeps our lock (for lock_seconds) and only we may, and do, take it back at once.
        self._cut_short = [j.id for j in claimed]
        # One connection for the whole batch, a transaction per job on it: a pool checkout per job would
        # add a pre-ping and a reset round trip to each.
        with self._engine.connect() as self._connection:
            try:
                for index, job in enumerate(claimed):
                    if stop_event is not None and stop_event.is_set():
                        self.release([j.id for j in claimed[index:]])
                        break
                    self.run_job(job)
                    self._cut_short = [j.id for j in claimed[index + 1:]]
            finally:
                self._connection = None
        self._cut_short = []
        return len(claimed)

    def run_forever(self, stop_event: threading.Event) -> None:
        """Run batches until ``stop_event`` is set, riding out database outages.

        Connection errors (a database restart, a dropped network) are logged and retried with a growing
        pause; the engine's pool pre-ping replaces dead connections. Any other error is logged with its
        traceback and retried the same way, so one bad round never stops the worker.
        """
        logger.info('worker %s started (batch %d, lock %ss)', self.name, self.batch_size,
                    self.lock.total_seconds())
        failures = 0
        while not stop_event.is_set():
            try:
                count = self.run_once(stop_event)
            except (DBAPIError, PoolTimeout) as exc:
                failures += 1
                pause = min(self.poll_interval * 2 ** failures, 60.0)
                logger.warning('worker %s: database unavailable (%s); retrying in %.1fs', self.name,
                               _one_line(exc), pause)
                stop_event.wait(pause)
                continue
            except Exception:
                failures += 1
                pause = min(self.poll_interval * 2 ** failures, 60.0)
                logger.exception('worker %s: round failed; retrying in %.1fs', self.name, pause)
                stop_event.wait(pause)
                continue
            failures = 0
            if count < self.batch_size:
                stop_event.wait(self.poll_interval)
        logger.info('worker %s stopped', self.name)

    # -- claiming ---------------------------------------------------------------------------------------

    def claim(self) -> list[ClaimedJob]:
        """Take up to ``batch_size`` due, unlocked pending jobs, oldest due first, and commit the claim."""
        now = self.now()
        unlocked = sa.or_(Job.lock_expires_dt.is_(None), Job.lock_expires_dt < now, self._retake())
        # FOR UPDATE SKIP LOCKED: on PostgreSQL a row another worker is claiming right now is passed
        # over instead of waited for. SQLite renders no FOR UPDATE; its write lock serializes the UPDATE.
        # A MATERIALIZED CTE, not "id IN (subquery)": PostgreSQL may plan the latter as a nested-loop
        # semi-join that rescans the locking subquery per row and so claims more than the LIMIT.
        due = (sa.select(Job.id).where(Job.status == 'pending', Job.due_dt <= now, unlocked)
               .order_by(Job.due_dt, Job.id).limit(self.batch_size).with_for_update(skip_locked=True)
               .cte('due').prefix_with('MATERIALIZED', dialect='postgresql'))
        with unit_of_work(self.session_factory) as session:
            if session.get_bind().dialect.name == 'postgresql':
                chosen = Job.id == due.c.id  # UPDATE ... FROM due: primary-key lookups of the chosen ids
            else:
                chosen = Job.id.in_(sa.select(due.c.id))  # SQLite before 3.33 has no UPDATE ... FROM
            claim = (sa.update(Job).where(chosen, Job.status == 'pending', unlocked)
                     .values(lock_owner=self.name, lock_expires_dt=now + self.lock, attempts=Job.attempts + 1)
                     .returning(Job.id, Job.kind, Job.key, Job.due_dt, Job.instance_id))
            rows = session.execute(claim, execution_options={'synchronize_session': False}).all()
        retaken = {row.id for row in rows}
        self._cut_short = [job_id for job_id in self._cut_short if job_id not in retaken]
        return sorted((ClaimedJob(*row) for row in rows), key=lambda j: (j.due_dt, j.id))

    def _retake(self) -> sa.ColumnElement[bool]:
        """Our jobs of a batch a lost connection cut short: ours to run now, not after the lock lapses."""
        if not self._cut_short:
            return sa.false()
        return sa.and_(Job.id.in_(self._cut_short), Job.lock_owner == self.name)

    def release(self, job_ids: list[int]) -> None:
        """Give back claimed jobs without running them (on shutdown), uncounting the attempt."""
        if not job_ids:
            return
        with unit_of_work(self.session_factory) as session:
            session.execute(sa.update(Job).where(Job.id.in_(job_ids), Job.lock_owner == self.name,
                                                 Job.status == 'pending')
                            .values(lock_owner=None, lock_expires_dt=None, attempts=Job.attempts - 1),
                            execution_options={'synchronize_session': False})

    # -- running one job --------------------------------------------------------------------------------

    def run_job(self, claimed: ClaimedJob) -> str:
        """Run one claimed job and log its outcome.

        :return: ``done``, ``cancelled``, ``skipped``, ``postponed``, ``retry`` or ``dead``
        """
        started = time.perf_counter()
        error = ''
        try:
            outcome = self._execute(claimed)
        except JobPostponed as exc:
            outcome = self._postpone(claimed, exc.until)
            error = str(exc)
        except Exception as exc:  # a failing handler: its effects are rolled back; count it, retry later
            outcome = self._record_failure(claimed, exc)
            error = _one_line(exc)
        ms = (time.perf_counter() - started) * 1000
        level = logging.WARNING if outcome in ('retry', 'dead') else logging.INFO
        logger.log(level, 'job %s %s %s %.1fms%s', claimed.kind, claimed.key, outcome, ms,
                   f' ({error})' if error else '',
                   extra={'job_id': claimed.id, 'job_kind': claimed.kind, 'job_key': claimed.key, 'outcome': outcome})
        return outcome

    @contextmanager
    def _unit(self) -> Iterator[Session]:
        """A transaction for one job: on the batch's connection, or a pooled one outside a batch."""
        if self._connection is None:
            with unit_of_work(self.session_factory) as session:
                yield session
        else:
            with self.session_factory(bind=self._connection) as session, session.begin():
                yield session

    def _execute(self, claimed: ClaimedJob) -> str:
        """The job's unit of work: lock, run the handler, mark it done; all or nothing."""
        with self._unit() as session:
            job = self._lock(session, claimed)
            if job is None:
                return 'skipped'
            now = self.now()
            if job.attempts > self.max_attempts:
                # Claimed that many times and never finished: each try took its worker down.
                job.last_error = f'worker stopped while running it {job.attempts - 1} times'
                _bury(session, job, now)
                return 'dead'
            handler_for(job.kind)(session, job)
            return _finish(session, job, now)

    @staticmethod
    def _lock_instance_first(session: Session, claimed: ClaimedJob) -> None:
        """Lock the job's instance before the job: the order every command takes.

        A command locks its instance, then syncs that instance's jobs; a worker locking the job first
        and the instance second would deadlock against a user completing a task.
        """
        if claimed.instance_id is not None and session.get_bind().dialect.name == 'postgresql':
            runtime.lock_instance_row(session, claimed.instance_id)

    def _lock(self, session: Session, claimed: ClaimedJob) -> Job | None:
        """Lock the job row if it is still pending and still ours; None if another worker has it."""
        self._lock_instance_first(session, claimed)
        # An UPDATE, not a SELECT FOR UPDATE: it takes the row lock on PostgreSQL and the write lock at
        # once on SQLite (a read-then-write transaction there fails if the web server wrote in between),
        # and it extends our lock for the time the job takes.
        return session.scalars(_LOCK_JOB, {'job_id': claimed.id, 'owner': self.name, 'until': self.now() + self.lock},
                               execution_options={'synchronize_session': False}).one_or_none()

    def _locked_for_update(self, session: Session, claimed: ClaimedJob) -> Job | None:
        self._lock_instance_first(session, claimed)  # record_fault may write to the instance
        job = session.get(Job, claimed.id, with_for_update=True, populate_existing=True)
        if job is None or job.status != 'pending' or job.lock_owner != self.name:
            return None
        return job

    def _postpone(self, claimed: ClaimedJob, until: datetime) -> str:
        with self._unit() as session:
            job = self._locked_for_update(session, claimed)
            if job is None:
                return 'skipped'
            job.due_dt, job.attempts = until, max(job.attempts - 1, 0)
            job.lock_owner = job.lock_expires_dt = None
        return 'postponed'

    def _record_failure(self, claimed: ClaimedJob, exc: Exception) -> str:
        """After the rollback, in a fresh transaction: note the error and retry later, or bury the job."""
        with self._unit() as session:
            job = self._locked_for_update(session, claimed)
            if job is None:
                return 'skipped'
            now = self.now()
            job.last_error = f'{type(exc).__name__}: {exc}'[:_MAX_ERROR_CHARS]
            if isinstance(exc, WorkflowFault) and job.instance_id is not None:
                runtime.record_fault(session, job.instance_id, exc.message)
            if job.attempts >= self.max_attempts:
                _bury(session, job, now)
                return 'dead'
            job.due_dt = now + self.retry_delay(job.attempts)
            job.lock_owner = job.lock_expires_dt = None
        return 'retry'


def _finish(session: Session, job: Job, now: datetime) -> str:
    """Mark a job its handler ran ``done`` (or leave the status the handler gave it); return the status.

    A job its handler left as it was loaded is written with one UPDATE, not an ORM flush of the job alone (which
    cost a no-op job about a fifth of its CPU time); one the handler changed is written with those changes at commit.
    """
    status = 'done' if job.status == 'pending' else job.status
    if sa.inspect(job).modified:
        job.status, job.done_dt, job.lock_expires_dt = status, now, None
        return status
    session.execute(_FINISH_JOB, {'job_id': job.id, 'status': status, 'done': now})
    for name, value in (('status', status), ('done_dt', now), ('lock_expires_dt', None)):
        set_committed_value(job, name, value)
    return status


def _bury(session: Session, job: Job, now: datetime) -> None:
    """Move ``job`` to ``dead``, where supervisors see it and may retry it."""
    job.status, job.done_dt = 'dead', now
    job.lock_owner = job.lock_expires_dt = None
    case_id, org_path = _job_case(session, job)
    audit.record(session, 'job.dead', actor=None, case_id=case_id, instance_id=job.instance_id,
                 task_id=job.human_task_id, org_path=org_path,
                 after={'kind': job.kind, 'key': job.key, 'attempts': job.attempts, 'error': job.last_error})


def _job_case(session: Session, job: Job) -> tuple[int | None, str | None]:
    case = _case_of(session, job)
    return (case.id, case.org_path) if case is not None else (None, None)


def _case_of(session: Session, job: Job) -> Case | None:
    if job.instance_id is None:
        return None
    instance = session.get(ProcessInstance, job.instance_id)
    return instance.case if instance is not None else None


def _one_line(exc: BaseException) -> str:
    return f'{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ""}'[:300]


# -- supervisor operations ------------------------------------------------------------------------------

def _load_job(session: Session, job_id: int, scope: Scope | None) -> Job:
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None:
        raise NotFound('作业不存在')
    if scope is not None:
        case = _case_of(session, job)
        if case is None or not scope.supervises_case(case):
            raise refuse(session, scope.user_id, 'job', job_id, case.org_path if case else None, '作业不存在')
    return job


def retry_dead_job(session: Session, job_id: int, *, actor: User, reason: str,
                   scope: Scope | None = None) -> Job:
    """Put a dead job back in the queue, due now, with its attempts reset.

    :param actor: the supervisor
    :param reason: why it is worth another try (recorded in the audit log)
    :param scope: the caller's grants; the job's case must lie under a unit they supervise
    :raises Conflict: the job is not dead
    """
    job = _load_job(session, job_id, scope)
    if job.status != 'dead':
        raise Conflict('只能重试已失败的作业。')
    job.status, job.attempts, job.due_dt = 'pending', 0, get_clock().now()
    job.done_dt = job.lock_owner = job.lock_expires_dt = None
    case_id, org_path = _job_case(session, job)
    audit.record(session, 'job.retried', actor=actor, case_id=case_id, instance_id=job.instance_id,
                 task_id=job.human_task_id, org_path=org_path, before={'status': 'dead'},
                 after={'status': 'pending', 'key': job.key}, note=reason)
    session.flush()
    return job


def cancel_job(session: Session, job_id: int, *, actor: User, reason: str, scope: Scope | None = None) -> Job:
    """Cancel a pending or dead job: the worker will never run it.

    :param actor: the supervisor
    :param reason: why (recorded in the audit log)
    :param scope: the caller's grants; the job's case must lie under a unit they supervise
    :raises Conflict: the job already ran or was cancelled
    """
    job = _load_job(session, job_id, scope)
    if job.status not in ('pending', 'dead'):
        raise Conflict('该作业已执行或已取消。')
    before = job.status
    job.status, job.done_dt = 'cancelled', get_clock().now()
    job.lock_owner = job.lock_expires_dt = None
    case_id, org_path = _job_case(session, job)
    audit.record(session, 'job.cancelled', actor=actor, case_id=case_id, instance_id=job.instance_id,
                 task_id=job.human_task_id, org_path=org_path, before={'status': before},
                 after={'status': 'cancelled', 'key': job.key}, note=reason)
    session.flush()
    return job


def list_dead_jobs(session: Session, scope: Scope, *, limit: int = 200) -> list[tuple[Job, Case]]:
    """Dead jobs of cases under the units ``scope`` supervises, newest first, with their cases."""
    rows = session.execute(
        sa.select(Job, Case).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
        .join(Case, Case.id == ProcessInstance.case_id)
        .where(Job.status == 'dead', supervised_cases_clause(scope))
        .order_by(Job.id.desc()).limit(limit))
    return [(job, case) for job, case in rows]
