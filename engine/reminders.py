"""Reminder and escalation jobs of human tasks, their effects, and supervisors' snooze and cancel.

A task with a due date gets one ``reminder`` job per rung of its ladder and one ``escalation`` job at
the due time (:func:`schedule_task_jobs`, called whenever the task is created or its due date changes);
completing or cancelling it cancels them (:func:`cancel_task_jobs`). The worker runs a due job through
the handler registered here (:func:`handle_reminder`, :func:`handle_escalation`).

Every effect is keyed: a job's key carries the task, the rung and the due time, and each notification's
``dedupe_key`` is the job key plus the recipient, so a job run twice (a worker killed after the effect,
before marking it done) notifies nobody twice, audits nothing twice and flags nothing twice. A job whose
task has closed or whose due time has moved since it was scheduled does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import audit, mail
from engine.access import Scope, is_wide_path, not_minor_task_clause, sees_minors_from
from engine.calendar import WorkCalendar, ancestor_ids, load_calendar
from engine.clock import LOCAL_ZONE, get_clock, now
from engine.db import sqlite_unindexed, starts_with, unflushed
from engine.deadlines import reminder_times
from engine.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from engine.jobs import register_handler
from engine.models.jobs import Job
from engine.models.notifications import Notification
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import Group, Membership, User

__all__ = [
    'TASK_JOB_KINDS',
    'cancel_reminder',
    'cancel_task_jobs',
    'escalation_queue_clause',
    'escalation_target',
    'handle_escalation',
    'handle_reminder',
    'reminder_recipients',
    'schedule_task_jobs',
    'snooze_reminder',
]

TASK_JOB_KINDS = ('reminder', 'escalation')
_DEFAULT_ESCALATION = {'to': 'supervisor', 'level': 'same'}


def _due_key(due: datetime) -> str:
    """The due time as it appears in job keys and payloads (local ISO)."""
    return due.astimezone(LOCAL_ZONE).isoformat()


# -- scheduling -----------------------------------------------------------------------------------------

def _wanted_jobs(session: Session, task: HumanTask) -> dict[str, tuple[str, datetime, dict[str, Any]]]:
    """key → (kind, due, payload) of the jobs the task should have now."""
    if not task.is_open or task.due_dt is None or not task.due_rule:
        return {}
    due_iso = _due_key(task.due_dt)
    calendar = load_calendar(session, task.org_path)
    wanted: dict[str, tuple[str, datetime, dict[str, Any]]] = {}
    for offset, when in reminder_times(list(task.due_rule.get('reminders') or []), task.due_dt, calendar):
        if when <= now():
            continue  # a rung already behind us when the due date was set
        wanted[f'reminder:{task.id}:{offset.spec}:{due_iso}'] = (
            'reminder', when, {'task_id': task.id, 'offset': offset.spec, 'due': due_iso})
    escalate = task.due_rule.get('escalate') or _DEFAULT_ESCALATION
    wanted[f'escalation:{task.id}:{due_iso}'] = (
        'escalation', task.due_dt, {'task_id': task.id, 'due': due_iso, 'to': escalate['to'],
                                    'level': escalate['level']})
    return wanted


def _task_jobs(session: Session, task: HumanTask) -> Sequence[Job]:
    return session.scalars(sa.select(Job).where(Job.human_task_id == task.id, Job.kind.in_(TASK_JOB_KINDS))
                           .order_by(Job.id)).all()


def schedule_task_jobs(session: Session, task: HumanTask, *, new: bool = False) -> None:
    """Make the task's pending reminder and escalation jobs match its due date and ladder.

    Jobs for another due time are cancelled; a job cancelled by a due-date change comes back if the
    due time returns to it, one a supervisor cancelled does not, and one already run stays run.

    :param new: the task was created in this transaction, so it has no jobs to read yet
    """
    wanted = _wanted_jobs(session, task)
    for job in () if new else _task_jobs(session, task):
        spec = wanted.pop(job.key, None)
        if spec is None:
            if job.status == 'pending':
                job.status, job.done_dt = 'cancelled', now()
        elif job.status == 'cancelled' and not job.payload.get('cancelled_by'):
            job.status, job.done_dt, job.due_dt = 'pending', None, spec[1]
    for key, (kind, due, payload) in wanted.items():
        session.add(Job(kind=kind, key=key, instance_id=task.instance_id, human_task_id=task.id, due_dt=due,
                        status='pending', attempts=0, payload=payload, created_dt=now()))


# Built once on the table: the ORM's bulk UPDATE compiled its WHERE into a Python evaluator on every call to find
# the rows in the identity map, which cost more than the statement (every completion runs it).
_JOBS = cast(sa.Table, Job.__table__)
_CANCEL_TASK_JOBS = (sa.update(_JOBS)
                     .where(_JOBS.c.human_task_id == sa.bindparam('task_id'), _JOBS.c.kind.in_(TASK_JOB_KINDS),
                            _JOBS.c.status == 'pending')
                     .values(status='cancelled', done_dt=sa.bindparam('done')))


def cancel_task_jobs(session: Session, task: HumanTask) -> int:
    """Cancel the task's pending reminder and escalation jobs (it was completed or cancelled).

    :return: how many were cancelled
    """
    if any(job.human_task_id == task.id for job in unflushed(session, Job)):
        session.flush()  # in the table before the UPDATE
    result = session.execute(_CANCEL_TASK_JOBS, {'task_id': task.id, 'done': now()})
    # A job of the task this session holds reads its new status when next used (an expired one: anyway).
    for held in list(session.identity_map.values()):
        if isinstance(held, Job) and sa.inspect(held).dict.get('human_task_id', task.id) == task.id:
            session.expire(held, ['status', 'done_dt'])
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- recipients -----------------------------------------------------------------------------------------

def _members(session: Session, group: str, unit_ids: Sequence[int]) -> list[User]:
    return list(session.scalars(
        sa.select(User).join(Membership, Membership.user_id == User.id).join(Group, Group.id == Membership.group_id)
        .where(Group.code == group, Membership.org_unit_id.in_(unit_ids), User.is_active.is_(True))
        .distinct().order_by(User.id)))


def reminder_recipients(session: Session, task: HumanTask) -> list[User]:
    """The assignee; for an unclaimed task, every member of its candidate group at or above its unit."""
    if task.assignee_id is not None:
        assignee = session.get(User, task.assignee_id)
        if assignee is not None and assignee.is_active:
            return [assignee]
    if not task.candidate_group:
        return []
    return _members(session, task.candidate_group, ancestor_ids(task.org_path))


def _target_index(chain: Sequence[OrgUnit], level: str) -> int:
    if level == 'same':
        return 0
    if level == 'parent':
        return 1 if len(chain) > 1 else 0
    return next((i for i, unit in enumerate(chain) if unit.level == level), 0)


def escalation_target(session: Session, task: HumanTask, group: str, level: str) -> tuple[OrgUnit, list[User]]:
    """The unit an overdue task escalates to and the members of ``group`` there to tell.

    ``level`` picks the task's own unit (``same``), its parent (``parent``), or its nearest unit at
    that level (``county``, ``city``, ``province``; the task's own unit if it has none above it). If
    nobody holds ``group`` there, the nearest unit above that has such members is used.
    """
    ids = ancestor_ids(task.org_path)
    units = {unit.id: unit for unit in session.scalars(sa.select(OrgUnit).where(OrgUnit.id.in_(ids)))}
    chain = [units[i] for i in reversed(ids) if i in units]  # the task's unit first, then upwards
    start = _target_index(chain, level)
    for unit in chain[start:]:
        members = _members(session, group, [unit.id])
        if members:
            return unit, members
    return chain[start], []


def escalation_queue_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """Open escalated tasks sent to one of the user's groups at a unit within their grants."""
    # A minor's task escalated above its county stays out of that unit's queue (社区矫正法 §54).
    clauses = [sa.and_(HumanTask.escalated_to_group == group, starts_with(_escalation_path(path), path),
                       *([] if sees_minors_from(path) else [not_minor_task_clause()]))
               for group, path in scope.grants]
    if not clauses:
        return sa.false()
    # "= true", not "IS TRUE": PostgreSQL's statistics over the escalation columns together (migration
    # b1c2d3e4f5a6) apply to comparisons, and a province's queue was otherwise estimated at a handful of rows.
    return sa.and_(HumanTask.status == 'open', HumanTask.is_escalated == sa.true(), sa.or_(*clauses))


def _escalation_path(grant_path: str) -> sa.ColumnElement[Any]:
    """The escalation unit's path column as a grant at ``grant_path`` should filter on it.

    A province's or a city's queue holds a large share of every escalated task: walking the (group, due) index
    and keeping the rows within the grant reads one page, where a range over the (group, unit path) index reads
    all of them and sorts them (SQLite, a million tasks: 55 ms). A county's or a township's holds few, which
    that range reads at once. PostgreSQL's statistics tell the two apart by themselves (migration b1c2d3e4f5a6).
    """
    column = HumanTask.escalated_org_path.expression
    return sqlite_unindexed(column) if is_wide_path(grant_path) else column


# -- effects --------------------------------------------------------------------------------------------

def _live_task(session: Session, job: Job) -> HumanTask | None:
    """The job's task if it is still open and still due when the job was scheduled for."""
    task = session.get(HumanTask, job.human_task_id) if job.human_task_id is not None else None
    if task is None or not task.is_open or task.due_dt is None:
        return None
    if job.payload.get('due') != _due_key(task.due_dt):
        return None
    return task


def _notify(session: Session, users: Sequence[User], kind: str, title: str, body: str, task: HumanTask,
            key: str) -> list[User]:
    """Add a notification for each user not yet notified under ``key``; return those newly notified."""
    keys = {user.id: f'{key}:{user.id}' for user in users}
    done = set(session.scalars(sa.select(Notification.dedupe_key).where(Notification.dedupe_key.in_(keys.values()))))
    fresh = [user for user in users if keys[user.id] not in done]
    for user in fresh:
        session.add(Notification(user_id=user.id, kind=kind, title=title[:200], body=body, case_id=task.case_id,
                                 human_task_id=task.id, created_dt=now(), dedupe_key=keys[user.id]))
    session.flush()
    return fresh


def _mail(users: Sequence[User], title: str, body: str) -> dict[str, list[str]]:
    if not mail.mail_enabled():
        return {}
    addressed = [user.email for user in users if user.email]
    failed = mail.send_mail([mail.OutgoingMail(address, title, body) for address in addressed])
    return {'emailed': [a for a in addressed if a not in failed], 'email_failed': failed}


def _time_left(task: HumanTask, calendar: WorkCalendar) -> str:
    assert task.due_dt is not None and task.due_rule is not None
    unit = task.due_rule.get('unit')
    remaining = task.due_dt - now()
    if remaining <= timedelta(0):
        return '已超期'
    if unit == 'hours':
        return f'剩 {math.ceil(remaining / timedelta(hours=1))} 小时'
    today, due_day = get_clock().today(), task.due_dt.astimezone(LOCAL_ZONE).date()
    if due_day == today:
        return '今天到期'
    if unit == 'working_days':
        return f'剩 {calendar.working_days_between(today, due_day)} 个工作日'
    return f'剩 {(due_day - today).days} 日'


def _due_text(task: HumanTask) -> str:
    assert task.due_dt is not None
    local = task.due_dt.astimezone(LOCAL_ZONE)
    hourly = task.due_rule is not None and task.due_rule.get('unit') == 'hours'
    return local.strftime('%Y-%m-%d %H:%M') if hourly else local.date().isoformat()


def _case_number(task: HumanTask) -> str:
    return task.case.number if task.case is not None else ''


def _superseded(session: Session, job: Job) -> bool:
    """Whether a later rung of the same task is also due already (the worker was behind): send only that one."""
    return session.scalar(sa.select(Job.id).where(
        Job.human_task_id == job.human_task_id, Job.kind == 'reminder', Job.status == 'pending', Job.id != job.id,
        Job.due_dt > job.due_dt, Job.due_dt <= now()).limit(1)) is not None


def handle_reminder(session: Session, job: Job) -> None:
    """Remind the assignee (or the candidate group) of an open task that its due date is near.

    A rung whose next rung is also due by now is skipped, so a worker catching up sends one reminder.
    """
    task = _live_task(session, job)
    if task is None or _superseded(session, job):
        return
    recipients = reminder_recipients(session, task)
    left = _time_left(task, load_calendar(session, task.org_path))
    title = f'待办提醒：{task.title} 将于 {_due_text(task)} 到期（{left}）'
    body = f'案件 {_case_number(task)} 的待办“{task.title}”将于 {_due_text(task)} 到期（{left}），请及时办理。'
    fresh = _notify(session, recipients, 'reminder', title, body, task, job.key)
    if not fresh:
        return
    audit.record(session, 'reminder.sent', actor=None, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path,
                 after={'job_id': job.id, 'offset': job.payload.get('offset'), 'due': job.payload.get('due'),
                        'recipients': [user.username for user in fresh], **_mail(fresh, title, body)})


def handle_escalation(session: Session, job: Job) -> None:
    """Flag a task still open after its due time and tell the escalation target's group."""
    task = _live_task(session, job)
    if task is None or task.is_escalated or task.due_dt is None or now() < task.due_dt:
        return
    group = str(job.payload.get('to') or _DEFAULT_ESCALATION['to'])
    level = str(job.payload.get('level') or _DEFAULT_ESCALATION['level'])
    unit, recipients = escalation_target(session, task, group, level)
    task.is_escalated, task.escalated_dt = True, now()
    task.escalated_to_group, task.escalated_org_unit_id, task.escalated_org_path = group, unit.id, unit.path
    title = f'超期升级：{task.title}（{_case_number(task)}）已于 {_due_text(task)} 到期未办结'
    body = (f'案件 {_case_number(task)} 的待办“{task.title}”已超过期限（{_due_text(task)}）仍未办结，'
            f'已升级至 {unit.name}，请督办。')
    fresh = _notify(session, recipients, 'escalation', title, body, task, job.key)
    audit.record(session, 'task.escalated', actor=None, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'is_escalated': False},
                 after={'is_escalated': True, 'group': group, 'level': level, 'org_unit': unit.code,
                        'due': job.payload.get('due'), 'recipients': [user.username for user in fresh],
                        **_mail(fresh, title, body)})


register_handler('reminder', handle_reminder)
register_handler('escalation', handle_escalation)


# -- supervisors ----------------------------------------------------------------------------------------

def _pending_reminder(session: Session, job_id: int, reason: str, scope: Scope | None) -> tuple[Job, HumanTask]:
    job = session.scalars(sa.select(Job).where(Job.id == job_id).with_for_update()).one_or_none()
    task = session.get(HumanTask, job.human_task_id) if job is not None and job.human_task_id else None
    if job is None or job.kind != 'reminder' or task is None:
        raise NotFound('提醒不存在')
    if scope is not None and not scope.can_view_task(task):
        raise NotFound('提醒不存在')
    if scope is not None and not scope.supervises_path(task.org_path):
        raise AccessDenied('只有该机构的主管可以调整提醒。')
    if job.status != 'pending':
        raise Conflict('该提醒已发送或已取消。')
    if not reason.strip():
        raise ValidationFailed('数据有误', {'reason': ['请填写原因。']})
    return job, task


def snooze_reminder(session: Session, job_id: int, until: datetime, reason: str, *, actor: User,
                    scope: Scope | None = None) -> Job:
    """Put a pending reminder off until ``until``.

    :param until: the new time (timezone-aware, in the future)
    :param reason: why (required, audited)
    :param scope: the caller's grants; only supervisors of the task's unit may (None: not checked)
    """
    job, task = _pending_reminder(session, job_id, reason, scope)
    if until.tzinfo is None or until <= now():
        raise ValidationFailed('数据有误', {'until': ['请填写一个将来的时间。']})
    before = {'due_dt': job.due_dt}
    job.due_dt = until
    job.payload = {**job.payload, 'snoozed_until': until.isoformat(), 'snoozed_by': actor.id,
                   'snooze_reason': reason.strip()}
    session.flush()
    audit.record(session, 'reminder.snoozed', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before=before,
                 after={'job_id': job.id, 'due_dt': until}, note=reason.strip())
    return job


def cancel_reminder(session: Session, job_id: int, reason: str, *, actor: User, scope: Scope | None = None) -> Job:
    """Cancel a pending reminder for good (a due-date change does not bring it back).

    :param reason: why (required, audited)
    :param scope: the caller's grants; only supervisors of the task's unit may (None: not checked)
    """
    job, task = _pending_reminder(session, job_id, reason, scope)
    job.status, job.done_dt = 'cancelled', now()
    job.payload = {**job.payload, 'cancelled_by': actor.id, 'cancel_reason': reason.strip()}
    session.flush()
    audit.record(session, 'reminder.cancelled', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'status': 'pending'},
                 after={'job_id': job.id, 'status': 'cancelled'}, note=reason.strip())
    return job
