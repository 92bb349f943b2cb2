"""Incidents (异常处理): process instances in ``error``, and what a supervisor does about them.

An instance goes to ``error`` when a command on it fails (``runtime.record_fault``): the command was rolled
back, so the instance's state is the one before it, consistent and resumable. A supervisor then either

* **retries** it: its dead timer jobs go back in the queue and the engine runs it on from where it stands
  (due timers fire, ready engine steps run, tasks and jobs are synced), exactly as the worker would. If the
  cause is gone (a unit was created, the instance was moved to a fixed version, a transient failure passed)
  it is back to running or waiting and its error is cleared; if it fails again, nothing of the attempt is
  kept except the new error, recorded on the instance; or
* **cancels** it: its open tasks are cancelled, its pending and dead jobs are cancelled, and it is
  ``suspended`` for good. Cancelling a case's lifecycle instance cancels (撤销) the case as well: nothing
  could move it on any more.

Either needs a reason, is audited, and is refused (404) for instances outside the units the caller
supervises. Dead jobs are handled by ``engine.worker.retry_dead_job`` / ``cancel_job``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer, selectinload

from engine import audit, reminders, runtime
from engine.access import Scope, refuse, supervised_cases_clause
from engine.clock import now
from engine.errors import Conflict, NotFound, ValidationFailed, WorkflowFault
from engine.i18n import N_
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User

__all__ = ['REASON_MAX', 'RetryOutcome', 'cancel_instance', 'list_errored_instances', 'retry_instance']

#: the reason is written to the audit log: a sentence, not an essay
REASON_MAX = 500
MSG_NOT_FOUND = N_('流程实例不存在')
MSG_REASON = N_('请填写原因。')
MSG_REASON_LONG = N_('原因最多 500 个字。')
MSG_NOT_IN_ERROR = N_('该流程实例当前没有出错，无需处理。')


def _reason(reason: str | None) -> str:
    text = (reason or '').strip()
    if not text:
        raise ValidationFailed(MSG_REASON, {'reason': [MSG_REASON]})
    if len(text) > REASON_MAX:
        raise ValidationFailed(MSG_REASON_LONG, {'reason': [MSG_REASON_LONG]})
    return text


def _load(session: Session, instance_id: int, scope: Scope) -> ProcessInstance:
    """Lock the instance (before any of its jobs: the order every command takes) if the caller supervises its
    case's unit; NotFound otherwise, so an outsider cannot tell it exists.

    The lock is an UPDATE that changes nothing, as the worker takes its locks: a row lock on PostgreSQL, the
    write lock on SQLite. On SQLite it also opens the transaction, so that the retry's savepoint is a
    savepoint and not, released, a commit of its own.
    """
    session.execute(sa.update(ProcessInstance).where(ProcessInstance.id == instance_id)
                    .values(error_dt=ProcessInstance.error_dt).execution_options(synchronize_session=False))
    instance = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.id == instance_id)
                               .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if instance is None:
        raise NotFound(MSG_NOT_FOUND)
    if not scope.supervises_case(instance.case):
        raise refuse(session, scope.user_id, 'instance', instance_id, instance.case.org_path, MSG_NOT_FOUND)
    return instance


def list_errored_instances(session: Session, scope: Scope, *, limit: int = 200) -> list[tuple[ProcessInstance, Case]]:
    """Instances in ``error`` below the units ``scope`` supervises, most recent failure first."""
    rows = session.execute(
        sa.select(ProcessInstance, Case).join(Case, Case.id == ProcessInstance.case_id)
        .where(ProcessInstance.status == 'error', supervised_cases_clause(scope))
        .options(defer(ProcessInstance.state), selectinload(ProcessInstance.definition))
        .order_by(ProcessInstance.error_dt.desc(), ProcessInstance.id.desc()).limit(limit))
    return [(instance, case) for instance, case in rows]


# -- retry ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryOutcome:
    """What a retry did: ``ok`` with the instance's new status, or the error it failed with again."""

    instance: ProcessInstance
    ok: bool
    error: str | None = None
    jobs_requeued: int = 0


def _requeue_dead_timers(session: Session, instance: ProcessInstance) -> int:
    """Put the instance's dead timer jobs back as pending and due.

    The engine run that follows settles each of them (``runtime._sync_timer_jobs``): done if its timer fired,
    cancelled if the timer no longer waits, left pending for the worker if it still does. A dead job's key
    would otherwise keep its timer from ever being scheduled again.
    """
    jobs = session.scalars(sa.select(Job).where(Job.instance_id == instance.id, Job.kind == 'timer',
                                                Job.status == 'dead')).all()
    for job in jobs:
        job.status, job.attempts, job.due_dt = 'pending', 0, min(job.due_dt, now())
        job.done_dt = job.lock_owner = job.lock_expires_dt = None
    session.flush()
    return len(jobs)


def retry_instance(session: Session, instance_id: int, *, actor: User, reason: str, scope: Scope) -> RetryOutcome:
    """Run an instance in ``error`` on from its current state; record success, or the new error.

    The run happens in a savepoint: if it fails again, everything it did is rolled back and only the new
    error (on the instance, and in the audit log with the reason) is kept. The caller commits either way.

    :param actor: the supervisor
    :param reason: why it is worth another try (required, recorded in the audit log)
    :param scope: the caller's grants; the instance's case must lie under a unit they supervise
    :raises NotFound: no such instance, or not one the caller supervises
    :raises Conflict: the instance is not in error
    """
    instance = _load(session, instance_id, scope)
    if instance.status != 'error':
        raise Conflict(MSG_NOT_IN_ERROR)
    reason = _reason(reason)
    failed_with, org_path = instance.error_message, instance.case.org_path
    try:
        with session.begin_nested():
            requeued = _requeue_dead_timers(session, instance)
            runtime.fire_timers(session, instance.id, actor=actor)
    except (WorkflowFault, ValidationFailed) as exc:
        runtime.record_fault(session, instance.id, exc.message)
        audit.record(session, 'instance.retry_failed', actor=actor, case_id=instance.case_id,
                     instance_id=instance.id, org_path=org_path, before={'error': failed_with},
                     after={'error': exc.message}, note=reason)
        return RetryOutcome(instance, False, exc.message)
    instance.error_message = instance.error_dt = None
    audit.record(session, 'instance.retried', actor=actor, case_id=instance.case_id, instance_id=instance.id,
                 org_path=org_path, before={'status': 'error', 'error': failed_with},
                 after={'status': instance.status, 'jobs_requeued': requeued}, note=reason)
    session.flush()
    return RetryOutcome(instance, True, None, requeued)


# -- cancel ---------------------------------------------------------------------------------------------------

def _cancel_tasks(session: Session, instance: ProcessInstance, actor: User, reason: str) -> int:
    tasks = session.scalars(sa.select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                       HumanTask.status == 'open')).all()
    for task in tasks:
        task.status, task.completed_dt = 'cancelled', now()
        reminders.cancel_task_jobs(session, task)
        audit.record(session, 'task.cancelled', actor=actor, case_id=task.case_id, instance_id=instance.id,
                     task_id=task.id, org_path=task.org_path, before={'status': 'open'},
                     after={'status': 'cancelled'}, note=reason)
    return len(tasks)


def _cancel_jobs(session: Session, instance: ProcessInstance) -> int:
    """Cancel the instance's timer and message jobs still pending or dead (its tasks' went with the tasks)."""
    jobs = session.scalars(sa.select(Job).where(Job.instance_id == instance.id,
                                                Job.status.in_(('pending', 'dead')))).all()
    for job in jobs:
        job.status, job.done_dt = 'cancelled', now()
        job.lock_owner = job.lock_expires_dt = None
    return len(jobs)


def cancel_instance(session: Session, instance_id: int, *, actor: User, reason: str,
                    scope: Scope) -> ProcessInstance:
    """Stop an instance in ``error`` for good: its open tasks and its jobs are cancelled, it is ``suspended``.

    A lifecycle instance takes its case with it: the case is cancelled (撤销) with the same reason.

    :param actor: the supervisor
    :param reason: why (required, recorded in the audit log)
    :param scope: the caller's grants; the instance's case must lie under a unit they supervise
    :raises NotFound: no such instance, or not one the caller supervises
    :raises Conflict: the instance is not in error
    """
    instance = _load(session, instance_id, scope)
    if instance.status != 'error':
        raise Conflict(MSG_NOT_IN_ERROR)
    reason = _reason(reason)
    case = instance.case
    tasks = _cancel_tasks(session, instance, actor, reason)
    jobs = _cancel_jobs(session, instance)
    instance.status, instance.next_timer_dt = 'suspended', None
    audit.record(session, 'instance.cancelled', actor=actor, case_id=case.id, instance_id=instance.id,
                 org_path=case.org_path, before={'status': 'error'},
                 after={'status': 'suspended', 'tasks_cancelled': tasks, 'jobs_cancelled': jobs}, note=reason)
    if instance.is_lifecycle and case.status == 'open':
        case.cancel(now())
        audit.record(session, 'case.cancelled', actor=actor, case_id=case.id, org_path=case.org_path,
                     before={'status': 'open'}, after={'status': 'cancelled'}, note=reason)
    session.flush()
    return instance
