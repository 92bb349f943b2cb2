"""Task assignment commands and the to-do list queries (keyset paging, scoped by ``engine.access``)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import audit
from engine.access import Scope, group_queue_clause, load_scope, visible_tasks_clause
from engine.clock import now
from engine.errors import AccessDenied, Conflict, ValidationFailed
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.runtime import get_task

VIEWS = ('mine', 'group', 'overdue', 'due_soon', 'all')
DUE_SOON = timedelta(days=3)


def _set_assignee(session: Session, task: HumanTask, assignee_id: int | None, *, expect: int | None) -> None:
    """Change the assignee only if it is still ``expect``: two claims at once, one wins."""
    result = session.execute(
        sa.update(HumanTask).where(HumanTask.id == task.id, HumanTask.status == 'open',
                                   HumanTask.assignee_id.is_(None) if expect is None
                                   else HumanTask.assignee_id == expect)
        .values(assignee_id=assignee_id).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict('该任务已被他人认领或已办理。')
    session.refresh(task)


def claim_task(session: Session, task_id: int, *, actor: User, scope: Scope) -> HumanTask:
    """Take an unassigned task of one of the actor's groups."""
    task = get_task(session, task_id, scope)
    if not task.is_open or task.assignee_id is not None:
        raise Conflict('该任务已被他人认领或已办理。')
    if not scope.can_claim(task):
        raise AccessDenied('您不在该任务的候选组中。')
    _set_assignee(session, task, actor.id, expect=None)
    audit.record(session, 'task.claimed', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'assignee_id': None},
                 after={'assignee_id': actor.id})
    return task


def unclaim_task(session: Session, task_id: int, *, actor: User, scope: Scope) -> HumanTask:
    """Give a task back to its group; the assignee or a supervisor of its unit may."""
    task = get_task(session, task_id, scope)
    if not task.is_open or task.assignee_id is None:
        raise Conflict('该任务当前没有认领人。')
    if task.assignee_id != actor.id and not scope.supervises_path(task.org_path):
        raise AccessDenied('只有认领人或主管可以退回该任务。')
    previous = task.assignee_id
    _set_assignee(session, task, None, expect=previous)
    audit.record(session, 'task.unclaimed', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'assignee_id': previous},
                 after={'assignee_id': None})
    return task


def assign_task(session: Session, task_id: int, assignee_id: int, *, actor: User, scope: Scope) -> HumanTask:
    """Hand a task to a person who holds its candidate group at its unit (supervisors only)."""
    task = get_task(session, task_id, scope)
    if not task.is_open:
        raise Conflict('该任务已办理或已取消。')
    if not scope.can_assign(task):
        raise AccessDenied('只有该机构的主管可以指派任务。')
    assignee = session.get(User, assignee_id)
    if assignee is None or not assignee.is_active or not load_scope(session, assignee).is_candidate(task):
        raise ValidationFailed('指派对象无效', {'assignee': ['该用户不存在或不在此任务的候选组中。']})
    previous = task.assignee_id
    _set_assignee(session, task, assignee.id, expect=previous)
    audit.record(session, 'task.assigned', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'assignee_id': previous},
                 after={'assignee_id': assignee.id})
    return task


# -- listing --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page of a keyset-paged list."""

    items: list[HumanTask]
    next_cursor: str | None


def _encode_cursor(task: HumanTask) -> str:
    raw = json.dumps([task.due_dt.isoformat() if task.due_dt else None, task.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip('=')


def _decode_cursor(cursor: str) -> tuple[datetime | None, int]:
    try:
        due, task_id = json.loads(base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4)))
        return (datetime.fromisoformat(due) if due else None), int(task_id)
    except (ValueError, TypeError):
        raise ValidationFailed('分页参数无效', {'cursor': ['无法识别的分页游标。']}) from None


def _after(cursor: tuple[datetime | None, int]) -> sa.ColumnElement[bool]:
    due, task_id = cursor
    if due is None:
        return sa.and_(HumanTask.due_dt.is_(None), HumanTask.id > task_id)
    return sa.or_(HumanTask.due_dt > due, sa.and_(HumanTask.due_dt == due, HumanTask.id > task_id),
                  HumanTask.due_dt.is_(None))


def view_clause(scope: Scope, view: str) -> sa.ColumnElement[bool]:
    """The WHERE clause of one to-do view for ``scope``."""
    if view == 'mine':
        return HumanTask.assignee_id == scope.user_id
    if view == 'group':
        return group_queue_clause(scope)
    visible = visible_tasks_clause(scope)
    if view == 'overdue':
        return sa.and_(visible, HumanTask.due_dt < now())
    if view == 'due_soon':
        return sa.and_(visible, HumanTask.due_dt >= now(), HumanTask.due_dt < now() + DUE_SOON)
    if view == 'all':
        return visible
    raise ValidationFailed('视图无效', {'view': [f'可选值：{", ".join(VIEWS)}']})


def list_tasks(session: Session, scope: Scope, view: str, *, cursor: str | None = None,
               limit: int = 50) -> Page:
    """Open tasks of ``view`` ordered by due date (undated last), then id.

    :param cursor: the ``next_cursor`` of the previous page
    :param limit: page size (1–200)
    """
    return list_tasks_where(session, view_clause(scope, view), cursor=cursor, limit=limit)


def list_tasks_where(session: Session, clause: sa.ColumnElement[bool], *, cursor: str | None = None,
                     limit: int = 50) -> Page:
    """Open tasks matching ``clause`` (already scoped by the caller), paged like :func:`list_tasks`.

    :param clause: e.g. ``engine.reminders.escalation_queue_clause(scope)``
    :param cursor: the ``next_cursor`` of the previous page
    :param limit: page size (1–200)
    """
    if not 1 <= limit <= 200:
        raise ValidationFailed('分页参数无效', {'limit': ['每页条数应在 1 到 200 之间。']})
    query = (sa.select(HumanTask).where(HumanTask.status == 'open', clause)
             .order_by(HumanTask.due_dt.asc().nulls_last(), HumanTask.id).limit(limit + 1))
    if cursor:
        query = query.where(_after(_decode_cursor(cursor)))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, _encode_cursor(items[-1]) if more and items else None)


def count_tasks(session: Session, scope: Scope, view: str) -> int:
    """How many open tasks ``view`` holds for ``scope``."""
    return count_tasks_where(session, view_clause(scope, view))


def count_tasks_where(session: Session, clause: sa.ColumnElement[bool]) -> int:
    """How many open tasks match ``clause`` (already scoped by the caller)."""
    return session.scalar(sa.select(sa.func.count()).select_from(HumanTask).where(
        HumanTask.status == 'open', clause)) or 0

