"""Task assignment commands and the to-do list queries (keyset paging, scoped by ``engine.access``)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from engine import audit
from engine.access import (
    Scope,
    can_view_case,
    group_queue_clause,
    has_wide_reach,
    load_scope,
    visible_open_tasks_clause,
)
from engine.clock import LOCAL_ZONE, now
from engine.db import UTCDateTime, starts_with
from engine.errors import AccessDenied, Conflict, EngineError, ValidationFailed
from engine.models.cases import Case
from engine.models.notifications import Notification
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.reminders import escalation_queue_clause
from engine.runtime import get_task

#: mine 我的待办, group 组内待认领, due_soon 即将到期, overdue 已逾期, escalated 升级给我, all 全部可见,
#: completed 最近办结 (by me, in the last 30 days)
VIEWS = ('mine', 'group', 'due_soon', 'overdue', 'escalated', 'all', 'completed')
DUE_SOON = timedelta(days=3)
RECENTLY = timedelta(days=30)
#: counts stop here: "1000+" is all a tab needs to say
COUNT_CAP = 1000
#: tasks one bulk action may touch
BULK_MAX = 200
NOTE_MAX = 500
TEXT_MAX = 64
RISK_COLOURS = ('red', 'yellow', 'green')


# Built once on the table, as every claim runs one: the ORM's UPDATE cost more to prepare than to run.
_TASKS = cast(sa.Table, HumanTask.__table__)
_SET_ASSIGNEE = (sa.update(_TASKS).where(_TASKS.c.id == sa.bindparam('task_id'), _TASKS.c.status == 'open')
                 .values(assignee_id=sa.bindparam('assignee_id')))
_ASSIGN_FREE = _SET_ASSIGNEE.where(_TASKS.c.assignee_id.is_(None))
_REASSIGN = _SET_ASSIGNEE.where(_TASKS.c.assignee_id == sa.bindparam('expect'))


def _set_assignee(session: Session, task: HumanTask, assignee_id: int | None, *, expect: int | None) -> None:
    """Change the assignee only if it is still ``expect``: two claims at once, one wins."""
    session.flush()  # what this transaction changed on the task is written before the row is tested
    params = {'task_id': task.id, 'assignee_id': assignee_id}
    result = session.execute(_ASSIGN_FREE, params) if expect is None else \
        session.execute(_REASSIGN, {**params, 'expect': expect})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict('该任务已被他人认领或已办理。')
    set_committed_value(task, 'assignee_id', assignee_id)


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
    if task.delegation_state == 'pending':
        raise Conflict('该任务正在委托办理中，请由受托人办结委托。')
    previous = task.assignee_id
    _set_assignee(session, task, None, expect=previous)
    task.owner_id = task.delegation_state = None
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
    if task.delegation_state == 'pending':
        raise Conflict('该任务正在委托办理中，待受托人办结后再指派。')
    assignee = session.get(User, assignee_id)
    if assignee is None or not assignee.is_active or not load_scope(session, assignee).is_candidate(task):
        raise ValidationFailed('指派对象无效', {'assignee': ['该用户不存在或不在此任务的候选组中。']})
    previous = task.assignee_id
    _set_assignee(session, task, assignee.id, expect=previous)
    task.owner_id = task.delegation_state = None
    audit.record(session, 'task.assigned', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'assignee_id': previous},
                 after={'assignee_id': assignee.id})
    return task


# -- delegation (Camunda's delegateTask / resolveTask) -------------------------------------------------

def delegate_task(session: Session, task_id: int, delegate_id: int, *, actor: User, scope: Scope,
                  note: str | None = None) -> HumanTask:
    """Hand a task to a colleague for their part; it comes back to the actor when they resolve it.

    The actor must hold the task (or may claim it). The delegate must work within the task's subtree.
    While the delegation is pending nobody completes the task.
    """
    task = get_task(session, task_id, scope)
    if not task.is_open:
        raise Conflict('该任务已办理或已取消。')
    if task.delegation_state == 'pending':
        raise Conflict('该任务正在委托办理中。')
    if task.assignee_id != actor.id and not scope.can_claim(task):
        raise AccessDenied('只有任务的认领人可以委托他人办理。')
    delegate = session.get(User, delegate_id)
    if (delegate is None or not delegate.is_active or delegate.id == actor.id
            or not can_view_case(session, load_scope(session, delegate), task.case)):
        raise ValidationFailed('委托对象无效', {'delegate': ['请选择本辖区内的其他工作人员。']})
    note = _note(note)
    previous = task.assignee_id
    _set_assignee(session, task, delegate.id, expect=previous)
    task.owner_id, task.delegation_state = actor.id, 'pending'
    audit.record(session, 'task.delegated', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'assignee_id': previous},
                 after={'assignee_id': delegate.id, 'owner_id': actor.id}, note=note)
    _tell(session, delegate, 'delegated', f'{actor.display_name} 委托您办理“{task.title}”', note or '', task)
    return task


def resolve_task(session: Session, task_id: int, *, actor: User, scope: Scope, note: str | None = None) -> HumanTask:
    """The delegate hands the task back to its owner, who then completes it."""
    task = get_task(session, task_id, scope)
    if not task.is_open or task.delegation_state != 'pending' or task.owner_id is None:
        raise Conflict('该任务没有待办结的委托。')
    if task.assignee_id != actor.id:
        raise AccessDenied('只有受托人可以办结委托。')
    note = _note(note)
    owner = session.get(User, task.owner_id)
    _set_assignee(session, task, task.owner_id, expect=actor.id)
    task.delegation_state = 'resolved'
    audit.record(session, 'task.resolved', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                 task_id=task.id, org_path=task.org_path, before={'assignee_id': actor.id},
                 after={'assignee_id': task.owner_id}, note=note)
    if owner is not None:
        _tell(session, owner, 'resolved', f'{actor.display_name} 已办结您委托的“{task.title}”', note or '', task)
    return task


def _note(note: str | None) -> str | None:
    note = (note or '').strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise ValidationFailed('说明过长', {'note': [f'说明最多 {NOTE_MAX} 个字。']})
    return note


def _tell(session: Session, user: User, kind: str, title: str, body: str, task: HumanTask) -> None:
    session.add(Notification(user_id=user.id, kind=kind, title=title[:200], body=body, case_id=task.case_id,
                             human_task_id=task.id, created_dt=now()))


# -- bulk actions ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BulkResult:
    """What happened to one task of a bulk action: done, or why not."""

    task_id: int
    ok: bool
    message: str
    task: HumanTask | None = None


def _bulk(session: Session, task_ids: Sequence[int], act: Callable[[int], HumanTask]) -> list[BulkResult]:
    """Run ``act`` on each task in a savepoint of its own: one refusal leaves the others done."""
    if not task_ids:
        raise ValidationFailed('请选择任务', {'tasks': ['请至少选择一项任务。']})
    if len(task_ids) > BULK_MAX:
        raise ValidationFailed('选择的任务过多', {'tasks': [f'一次最多处理 {BULK_MAX} 项任务。']})
    results = []
    for task_id in dict.fromkeys(task_ids):
        try:
            with session.begin_nested():
                task = act(task_id)
        except EngineError as exc:
            results.append(BulkResult(task_id, False, exc.message))
        else:
            results.append(BulkResult(task_id, True, '', task))
    return results


def bulk_claim(session: Session, task_ids: Sequence[int], *, actor: User, scope: Scope) -> list[BulkResult]:
    """Claim each task; the result lists each one's outcome."""
    return _bulk(session, task_ids, lambda task_id: claim_task(session, task_id, actor=actor, scope=scope))


def bulk_assign(session: Session, task_ids: Sequence[int], assignee_id: int, *, actor: User,
                scope: Scope) -> list[BulkResult]:
    """Assign each task to ``assignee_id`` (supervisors); the result lists each one's outcome."""
    return _bulk(session, task_ids,
                 lambda task_id: assign_task(session, task_id, assignee_id, actor=actor, scope=scope))


# -- filters --------------------------------------------------------------------------------------------

_ID_NUMBER = re.compile(r'^(\d{17}[\dXx]|\d{15})$')
_FILTER_KEYS = ('process', 'stage', 'org_unit', 'risk_colour', 'due_from', 'due_to', 'created_from',
                'created_to', 'text')


@dataclass(frozen=True)
class TaskFilter:
    """The to-do list's filters; every field narrows, None leaves it open.

    :param org_unit: an org unit code; it must lie within the user's subtree (:func:`filter_clause`)
    :param text: a case number or its start, a person's name or its start, or an ID number (matched exactly)
    """

    process: str | None = None
    stage: str | None = None
    org_unit: str | None = None
    risk_colour: str | None = None
    due_from: date | None = None
    due_to: date | None = None
    created_from: date | None = None
    created_to: date | None = None
    text: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TaskFilter:
        """Read and check filter values given as text (query string, saved JSON); unknown keys are ignored."""
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for key in _FILTER_KEYS:
            value = str(raw.get(key) or '').strip()
            if not value:
                continue
            if key.endswith(('_from', '_to')):
                try:
                    values[key] = date.fromisoformat(value)
                except ValueError:
                    errors[key] = ['请按“年-月-日”填写日期。']
            elif key == 'risk_colour' and value not in RISK_COLOURS:
                errors[key] = [f'可选值：{", ".join(RISK_COLOURS)}。']
            elif len(value) > (TEXT_MAX if key == 'text' else 128):
                errors[key] = ['输入过长。']
            else:
                values[key] = value
        for lower, upper in (('due_from', 'due_to'), ('created_from', 'created_to')):
            if lower in values and upper in values and values[lower] > values[upper]:
                errors[upper] = ['结束日期不能早于开始日期。']
        if errors:
            raise ValidationFailed('筛选条件有误', errors)
        return cls(**values)

    def to_dict(self) -> dict[str, str]:
        """The filter as text values (for links and saved filters): only the fields that are set."""
        return {key: value.isoformat() if isinstance(value, date) else str(value)
                for key in _FILTER_KEYS if (value := getattr(self, key)) is not None}

    @property
    def is_empty(self) -> bool:
        """Whether no field is set."""
        return not self.to_dict()

    @property
    def is_pinpoint(self) -> bool:
        """Whether the filter names one person by ID number: a handful of tasks at most, whatever the view."""
        return bool(self.text and _ID_NUMBER.match(self.text))


def _local_day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LOCAL_ZONE)


def _day_range(column: Any, start: date | None, end: date | None) -> list[sa.ColumnElement[bool]]:
    """Local calendar days ``start`` to ``end``, both included."""
    clauses = []
    if start is not None:
        clauses.append(column >= _local_day_start(start))
    if end is not None:
        clauses.append(column < _local_day_start(end + timedelta(days=1)))
    return clauses


def _text_clause(text: str) -> sa.ColumnElement[bool]:
    """Tasks whose case matches a number (or its start), a name (or its start), or exactly an ID number."""
    if _ID_NUMBER.match(text):
        cases = sa.select(Case.id).where(Case.id_number == text.upper())
    else:
        cases = sa.select(Case.id).where(sa.or_(starts_with(Case.number, text.upper()),
                                                starts_with(Case.person_name, text)))
    return HumanTask.case_id.in_(cases)


def filter_clause(session: Session, scope: Scope, task_filter: TaskFilter) -> sa.ColumnElement[bool]:
    """The WHERE clause of ``task_filter``; an org unit outside the user's subtree is a validation error."""
    clauses: list[sa.ColumnElement[bool]] = []
    if task_filter.process:
        clauses.append(HumanTask.process_key == task_filter.process)
    if task_filter.stage:
        clauses.append(HumanTask.bpmn_id == task_filter.stage)
    if task_filter.org_unit:
        unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == task_filter.org_unit)).one_or_none()
        if unit is None or not (scope.sees_path(unit.path) or scope.supervises_path(unit.path)):
            raise ValidationFailed('筛选条件有误', {'org_unit': ['该机构不在您的辖区内。']})
        clauses.append(starts_with(HumanTask.org_path, unit.path))
    if task_filter.risk_colour:
        clauses.append(HumanTask.risk_colour == task_filter.risk_colour)
    clauses += _day_range(HumanTask.due_dt, task_filter.due_from, task_filter.due_to)
    clauses += _day_range(HumanTask.created_dt, task_filter.created_from, task_filter.created_to)
    if task_filter.text:
        clauses.append(_text_clause(task_filter.text))
    return sa.and_(sa.true(), *clauses)


# -- views, sorting and keyset paging -------------------------------------------------------------------

@dataclass(frozen=True)
class SortKey:
    """One column of a sort order."""

    column: Any
    descending: bool = False
    nullable: bool = False

    def order(self) -> sa.ColumnElement[Any]:
        """The ORDER BY term; empty values sort last either way."""
        term: sa.ColumnElement[Any] = self.column.desc() if self.descending else self.column.asc()
        return term.nulls_last() if self.nullable else term

    def after(self, value: Any) -> sa.ColumnElement[bool]:
        """Rows strictly after ``value`` in this column's order."""
        if value is None:
            return sa.false()  # empty values come last: nothing follows them in this column
        beyond = self.column < value if self.descending else self.column > value
        return sa.or_(beyond, self.column.is_(None)) if self.nullable else beyond

    def equals(self, value: Any) -> sa.ColumnElement[bool]:
        """Rows with ``value`` in this column."""
        same: sa.ColumnElement[bool] = self.column.is_(None) if value is None else self.column == value
        return same


_DUE = SortKey(HumanTask.due_dt, nullable=True)
_ID = SortKey(HumanTask.id)
#: the sort orders of the open-task views; every one ends in the id so that the order is total
SORTS: dict[str, tuple[SortKey, ...]] = {
    'due': (_DUE, _ID),
    'priority': (SortKey(HumanTask.priority, descending=True), _DUE, _ID),
    'created': (SortKey(HumanTask.created_dt, descending=True), SortKey(HumanTask.id, descending=True)),
}
#: the order of 最近办结 (completed by me)
_COMPLETED_ORDER = (SortKey(HumanTask.completed_dt, descending=True, nullable=True),
                    SortKey(HumanTask.id, descending=True))


#: the instants the views compare with, read when a statement runs, so that a view's clause is built once
_DUE_TYPE = cast(sa.Table, HumanTask.__table__).c.due_dt.type
_NOW = sa.bindparam('view_now', callable_=lambda: now(), type_=_DUE_TYPE)
_SOON_END = sa.bindparam('view_soon_end', callable_=lambda: now() + DUE_SOON, type_=_DUE_TYPE)
_RECENT_START = sa.bindparam('view_recent_start', callable_=lambda: now() - RECENTLY, type_=_DUE_TYPE)


def view_clause(scope: Scope, view: str, *, pinpoint: bool = False) -> sa.ColumnElement[bool]:
    """The WHERE clause of one to-do view for ``scope``, status included.

    :param pinpoint: the rows are found by a filter naming a handful of them (``TaskFilter.is_pinpoint``)
    """
    if view not in VIEWS:
        raise ValidationFailed('视图无效', {'view': [f'可选值：{", ".join(VIEWS)}']})
    return _view_clause(scope, view, pinpoint)


@lru_cache(maxsize=2048)
def _view_clause(scope: Scope, view: str, pinpoint: bool) -> sa.ColumnElement[bool]:
    """:func:`view_clause`, kept per scope.

    A scope is the user and their grants, read anew for every request, so a changed grant is another key; the
    time is a parameter read when the statement runs. Each of the seven tabs and the list built its clause and
    statement again: some 17M of the 55M instructions of a township officer's to-do page (SQLite, 100,000
    tasks). A user's views, counts and first pages hold some 60 KB.
    """
    if view == 'completed':
        return sa.and_(HumanTask.status == 'completed', HumanTask.completed_by_id == scope.user_id,
                       HumanTask.completed_dt >= _RECENT_START)
    if view == 'overdue':
        return sa.and_(_view_clause(scope, 'all', pinpoint), HumanTask.due_dt < _NOW)
    if view == 'due_soon':
        return sa.and_(_view_clause(scope, 'all', pinpoint), HumanTask.due_dt >= _NOW, HumanTask.due_dt < _SOON_END)
    if view == 'escalated':
        return escalation_queue_clause(scope)  # status included
    if view == 'mine':
        # Tasks I delegated stay in my list (marked) until they come back. Two index ranges as a union:
        # an OR of them would scan every open task.
        mine = sa.select(HumanTask.id).where(HumanTask.status == 'open', HumanTask.assignee_id == scope.user_id)
        lent = sa.select(HumanTask.id).where(HumanTask.status == 'open', HumanTask.owner_id == scope.user_id,
                                             HumanTask.delegation_state == 'pending')
        clause: sa.ColumnElement[bool] = HumanTask.id.in_(sa.union(mine, lent))
    elif view == 'group':
        clause = group_queue_clause(scope)
    else:
        clause = visible_open_tasks_clause(scope, pinpoint=pinpoint)
    return sa.and_(HumanTask.status == 'open', clause)


@dataclass(frozen=True)
class Page:
    """One page of a keyset-paged list."""

    items: list[HumanTask]
    next_cursor: str | None


def _key_values(task: HumanTask, keys: Sequence[SortKey]) -> list[Any]:
    values = [getattr(task, key.column.key) for key in keys]
    return [value.isoformat() if isinstance(value, datetime) else value for value in values]


def _encode_cursor(sort: str, task: HumanTask, keys: Sequence[SortKey]) -> str:
    raw = json.dumps([sort, *_key_values(task, keys)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip('=')


def _decode_cursor(cursor: str, sort: str, keys: Sequence[SortKey]) -> list[Any]:
    """The sort values a cursor carries; a cursor of another sort or a mangled one is a validation error."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4)))
        if not isinstance(raw, list) or raw[0] != sort or len(raw) != len(keys) + 1:
            raise ValueError(cursor)
        return [_cursor_value(key, value) for key, value in zip(keys, raw[1:], strict=True)]
    except (ValueError, TypeError, IndexError):
        raise ValidationFailed('分页参数无效', {'cursor': ['无法识别的分页游标。']}) from None


def _cursor_value(key: SortKey, value: Any) -> Any:
    if value is None and key.nullable:
        return None
    if isinstance(key.column.type, UTCDateTime):
        return datetime.fromisoformat(value)
    # Every integer sort key (id, priority) is an INTEGER column: a larger number is no row's, and PostgreSQL
    # would fail the comparison itself.
    if isinstance(value, bool) or not isinstance(value, int) or not -2**31 <= value < 2**31:
        raise ValueError(value)
    return value


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Rows after ``values`` in the order ``keys``: equal on a prefix of the keys, beyond on the next."""
    alternatives = []
    for i, key in enumerate(keys):
        equal = [keys[j].equals(values[j]) for j in range(i)]
        alternatives.append(sa.and_(*equal, key.after(values[i])))
    return sa.or_(*alternatives)


def query_tasks(session: Session, clause: sa.ColumnElement[bool], *, sort: str = 'due',
                cursor: str | None = None, limit: int = 50, completed: bool = False) -> Page:
    """Tasks matching ``clause`` (already scoped by the caller, status included), keyset-paged.

    :param sort: ``due`` (soonest first), ``priority`` (most urgent first) or ``created`` (newest first)
    :param cursor: the ``next_cursor`` of the previous page
    :param limit: page size (1–200)
    :param completed: order by completion time instead (the 最近办结 view)
    """
    keys = _page_keys(sort, limit, completed)
    return _page(session, _ordered(clause, keys, limit), sort, keys, cursor, limit)


def _page_keys(sort: str, limit: int, completed: bool) -> tuple[SortKey, ...]:
    if not 1 <= limit <= 200:
        raise ValidationFailed('分页参数无效', {'limit': ['每页条数应在 1 到 200 之间。']})
    if sort not in SORTS:
        raise ValidationFailed('排序方式无效', {'sort': [f'可选值：{", ".join(SORTS)}']})
    return _COMPLETED_ORDER if completed else SORTS[sort]


def _ordered(clause: sa.ColumnElement[bool], keys: Sequence[SortKey], limit: int) -> sa.Select[tuple[HumanTask]]:
    return sa.select(HumanTask).where(clause).order_by(*(key.order() for key in keys)).limit(limit + 1)


def _page(session: Session, query: sa.Select[tuple[HumanTask]], sort: str, keys: Sequence[SortKey],
          cursor: str | None, limit: int) -> Page:
    if cursor:
        query = query.where(_after(keys, _decode_cursor(cursor, sort, keys)))
    rows = list(session.scalars(query))
    items = rows[:limit]
    more = len(rows) > limit and bool(items)
    return Page(items, _encode_cursor(sort, items[-1], keys) if more else None)


def list_tasks(session: Session, scope: Scope, view: str, *, task_filter: TaskFilter | None = None,
               sort: str = 'due', cursor: str | None = None, limit: int = 50) -> Page:
    """One to-do view for ``scope``, narrowed by ``task_filter``, sorted and keyset-paged."""
    keys = _page_keys(sort, limit, view == 'completed')
    if task_filter is None or task_filter.is_empty:
        query = _view_list(scope, view, sort, limit)
    else:
        query = _ordered(_filtered_view(session, scope, view, task_filter), keys, limit)
    return _page(session, query, sort, keys, cursor, limit)


@lru_cache(maxsize=2048)
def _view_list(scope: Scope, view: str, sort: str, limit: int) -> sa.Select[tuple[HumanTask]]:
    """A view's list statement without a filter, kept per scope as its clause is (:func:`_view_clause`)."""
    return _ordered(view_clause(scope, view), _page_keys(sort, limit, view == 'completed'), limit)


def count_tasks(session: Session, scope: Scope, view: str, *, task_filter: TaskFilter | None = None,
                cap: int | None = None) -> int:
    """How many tasks ``view`` holds for ``scope``, counting no further than ``cap`` + 1.

    A list draws "1000+" rather than counting a million rows to draw itself.
    """
    return session.scalar(_count(session, scope, view, task_filter, cap)) or 0


def count_views(session: Session, scope: Scope, views: Sequence[str], *, task_filter: TaskFilter | None = None,
                cap: int | None = None) -> dict[str, int]:
    """What :func:`count_tasks` gives for each of ``views`` (the to-do tabs).

    One statement per view: as scalar subqueries of a single statement they were planned worse (63 ms against
    39 ms for a city's seven tabs at a million tasks).
    """
    return {view: count_tasks(session, scope, view, task_filter=task_filter, cap=cap) for view in views}


def _filtered_view(session: Session, scope: Scope, view: str, task_filter: TaskFilter | None) -> sa.ColumnElement[bool]:
    if task_filter is None or task_filter.is_empty:
        return view_clause(scope, view)
    return sa.and_(view_clause(scope, view, pinpoint=task_filter.is_pinpoint),
                   filter_clause(session, scope, task_filter))


def _count(session: Session, scope: Scope, view: str, task_filter: TaskFilter | None,
           cap: int | None) -> sa.Select[tuple[int]]:
    cap = COUNT_CAP if cap is None else cap
    if task_filter is None or task_filter.is_empty:
        return _view_count(scope, view, cap)
    return _capped_count(_filtered_view(session, scope, view, task_filter), scope, view, cap)


@lru_cache(maxsize=2048)
def _view_count(scope: Scope, view: str, cap: int) -> sa.Select[tuple[int]]:
    """A tab's count, kept per scope as its clause is (:func:`_view_clause`)."""
    return _capped_count(view_clause(scope, view), scope, view, cap)


def _capped_count(clause: sa.ColumnElement[bool], scope: Scope, view: str, cap: int) -> sa.Select[tuple[int]]:
    # Over a city's or a province's tasks the planner counts overdue ones by scanning every open task in
    # case order; in due order it reads the overdue ones only (55 → 15 ms for a city at a million tasks).
    # Below a county the union of index ranges is smaller than the overdue range, so it stays unordered.
    order = (HumanTask.due_dt, HumanTask.id) if view == 'overdue' and has_wide_reach(scope) else ()
    limited = sa.select(HumanTask.id).where(clause).order_by(*order).limit(cap + 1).subquery()
    return sa.select(sa.func.count()).select_from(limited)
