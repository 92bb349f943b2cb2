"""Helpers of the task pages: the to-do list's state (view, filters, sort) and its choices, list rows loaded in
few queries, counts, the people a task can be handed to, naming groups, describing next steps, the task's
upcoming reminders and whom they tell, and the task form (generic or hand-made)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for
from flask_babel import gettext
from jinja2 import TemplateNotFound
from marshmallow import Schema
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from engine import runtime
from engine import tasks as engine_tasks
from engine.access import NON_CASE_ROLES, Scope, path_filter, reaches_a_county
from engine.calendar import preload_calendars
from engine.clock import LOCAL_ZONE
from engine.definitions import process_bundle
from engine.errors import NotFound, ValidationFailed
from engine.filters import list_filters
from engine.forms import FormSpec, registered_form
from engine.i18n import N_
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.filters import SavedFilter
from engine.models.jobs import Job
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import Group, Membership, User
from engine.reminders import TASK_JOB_KINDS, escalation_target, reminder_recipients
from engine.specs import UserTaskInfo
from engine.tasks import SORTS, VIEWS, BulkResult, TaskFilter, count_tasks, count_views
from web.core.forms import (
    SchemaForm,
    Widget,
    form_level_errors,
    initial_values,
    parse_indexed,
    schema_form,
    schema_values,
    submitted_data,
    submitted_values,
    widgets,
)
from web.core.pages import id_urls, translate
from web.core.templating import DueStatus, due_status, list_separator
from workflows.shared.id_numbers import mask_id_number
from workflows.shared.sensitive import looks_like_id_number

#: form keys that may name a template file (``disputes.agreement`` → ``tasks/forms/disputes_agreement.html``)
_FORM_KEY = re.compile(r'^[A-Za-z0-9_.-]{1,128}$')


#: (relationship, foreign key) of what a to-do row shows, by the model they load
_ROW_LINKS: dict[type, tuple[tuple[str, str], ...]] = {
    Case: (('case', 'case_id'),),
    OrgUnit: (('org_unit', 'org_unit_id'), ('escalated_org_unit', 'escalated_org_unit_id')),
    User: (('assignee', 'assignee_id'), ('owner', 'owner_id')),
}


def prefetch(session: Session, tasks: Sequence[HumanTask]) -> None:
    """Load the cases, units (their own and those escalated to), people (assignees, delegating owners) and
    calendars of ``tasks`` in four queries, and attach them, so the table renders without a query per row.

    Attached, not merely loaded: the identity map holds objects weakly, and a loaded but unreferenced case
    would be gone (and lazily loaded again) by the time its row is drawn.
    """
    for model, links in _ROW_LINKS.items():
        ids = {getattr(t, key) for t in tasks for _, key in links} - {None}
        loaded = {row.id: row for row in session.scalars(sa.select(model).where(model.id.in_(ids)))} if ids else {}
        for task in tasks:
            for attribute, key in links:
                set_committed_value(task, attribute, loaded.get(getattr(task, key)))
    preload_calendars(session, {task.org_path for task in tasks})


def group_names(session: Session, codes: Iterable[str | None]) -> dict[str, str]:
    """Display names of the group codes BPMN uses (``county_officer`` → 县级社区矫正机构)."""
    wanted = {code for code in codes if code}
    if not wanted:
        return {}
    rows = session.execute(sa.select(Group.code, Group.name).where(Group.code.in_(wanted)))
    return {code: name for code, name in rows}


def task_info(session: Session, task: HumanTask) -> UserTaskInfo | None:
    """The diagram's description of the task (title, documentation, form)."""
    return process_bundle(session, task.instance.definition).user_tasks.get(task.bpmn_id)


def task_form(session: Session, task: HumanTask) -> FormSpec:
    """The task's form; one without fields when the diagram declares none."""
    info = task_info(session, task)
    return info.form if info else FormSpec(key=None)


def describe_tasks(session: Session, tasks: Sequence[HumanTask]) -> str:
    """``“审核登记情况”（桃江县司法局 · 县级社区矫正机构）`` for each task, joined."""
    names = group_names(session, (t.candidate_group for t in tasks))
    parts = []
    for task in tasks:
        where = [task.org_unit.name]
        if task.assignee is not None:
            where.append(task.assignee.display_name)
        elif task.candidate_group:
            where.append(names.get(task.candidate_group, task.candidate_group))
        parts.append(f'“{task.title}”（{" · ".join(where)}）')
    return '；'.join(parts)


def next_step_message(session: Session, case: Case, tasks: Sequence[HumanTask]) -> str:
    """Where the case went: its open tasks and who has them, or that it is closed or waiting."""
    if tasks:
        return gettext('下一步：%(tasks)s。', tasks=describe_tasks(session, tasks))
    if case.status != 'open':
        return gettext('案件已办结。')
    return gettext('流程正在等待后续事件（期限或外部消息）。')


# -- the to-do list: view, filters and sort as the URL carries them ---------------------------------------

#: the filter inputs of the list, in the order the form shows them (``engine.tasks.TaskFilter``'s fields)
FILTER_KEYS = ('text', 'process', 'stage', 'org_unit', 'risk_colour', 'due_from', 'due_to', 'created_from',
               'created_to')
DEFAULT_VIEW = 'mine'
DEFAULT_SORT = 'due'
#: tasks this urgent (``camunda:priority`` 90 and up: the alarm checks of corrections_alarm) are 监控预警
ALARM_PRIORITY = 90

VIEW_LABELS = {'mine': N_('我的待办'), 'group': N_('组内待认领'), 'due_soon': N_('即将到期'), 'overdue': N_('已逾期'),
               'escalated': N_('升级给我'), 'all': N_('全部可见'), 'completed': N_('最近办结')}
SORT_LABELS = {'due': N_('按期限'), 'priority': N_('按紧急程度'), 'created': N_('按到达时间')}
COLOUR_LABELS = {'red': N_('红'), 'yellow': N_('黄'), 'green': N_('绿')}
#: views whose tab turns red when it holds anything
ALERT_VIEWS = frozenset({'overdue', 'escalated'})

#: what engine.tasks and engine.filters raise as plain Chinese constants (msgids for the catalogue)
ENGINE_MESSAGES = (
    N_('筛选条件有误'), N_('请按“年-月-日”填写日期。'), N_('可选值：red, yellow, green。'), N_('输入过长。'),
    N_('结束日期不能早于开始日期。'), N_('该机构不在您的辖区内。'), N_('排序方式无效'), N_('筛选不存在'),
    N_('无法保存筛选'), N_('请填写筛选名称。'), N_('名称最多 60 个字。'), N_('您已有同名的筛选。'),
    N_('每人最多保存 50 个筛选，请先删除不用的。'), N_('只能共享给您所在的组。'), N_('只有创建人可以删除该筛选。'),
    N_('请选择任务'), N_('请至少选择一项任务。'), N_('选择的任务过多'), N_('一次最多处理 200 项任务。'),
    N_('该任务正在委托办理中，请由受托人办结委托。'), N_('该任务正在委托办理中，待受托人办结后再指派。'),
    N_('该任务正在委托办理中。'), N_('只有任务的认领人可以委托他人办理。'), N_('委托对象无效'),
    N_('请选择本辖区内的其他工作人员。'), N_('该任务没有待办结的委托。'), N_('只有受托人可以办结委托。'),
    N_('说明过长'), N_('说明最多 500 个字。'), N_('指派对象无效'), N_('该用户不存在或不在此任务的候选组中。'),
)


@dataclass(frozen=True)
class ListState:
    """What the to-do list shows: a view, the filter values as typed, and a sort order.

    It lives in the URL (a GET form), so paging, the back button and bookmarks keep it.
    """

    view: str = DEFAULT_VIEW
    criteria: Mapping[str, str] = field(default_factory=dict)
    sort: str = DEFAULT_SORT

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> ListState:
        """Read the query string (or a posted copy of it); blank values are left out."""
        criteria = {key: value for key in FILTER_KEYS if (value := str(args.get(key) or '').strip())}
        return cls(str(args.get('view') or DEFAULT_VIEW), criteria, str(args.get('sort') or DEFAULT_SORT))

    @classmethod
    def of_saved(cls, saved: SavedFilter) -> ListState:
        """The state a saved filter stands for."""
        criteria = {key: str(value) for key, value in saved.criteria.items() if key in FILTER_KEYS and value}
        return cls(saved.view, criteria, str(saved.criteria.get('sort') or DEFAULT_SORT))

    @property
    def problems(self) -> dict[str, list[str]]:
        """An unknown view or sort order, by input name (the filters are checked by the engine)."""
        problems: dict[str, list[str]] = {}
        if self.view not in VIEWS:
            problems['view'] = [N_('视图无效')]
        if self.sort not in SORTS:
            problems['sort'] = [N_('排序方式无效')]
        return problems

    def task_filter(self) -> TaskFilter:
        """The filters for the engine; ValidationFailed names the inputs that are wrong."""
        return TaskFilter.from_dict(self.criteria)

    def params(self, **changes: str) -> dict[str, str]:
        """Query parameters for ``url_for``, defaults left out so that links stay short."""
        values = {'view': self.view, **self.criteria, 'sort': self.sort, **changes}
        defaults = {'view': DEFAULT_VIEW, 'sort': DEFAULT_SORT}
        return {key: value for key, value in values.items() if value and defaults.get(key) != value}

    def tab_params(self, view: str) -> dict[str, str]:
        """The parameters of a tab's link: the filters and sort kept, the view always named (last)."""
        params = self.params()
        params.pop('view', None)
        return {**params, 'view': view}

    @property
    def is_private(self) -> bool:
        """Whether the search text is an ID number: such a list is posted and never put in a URL (proxy logs,
        browser history)."""
        return looks_like_id_number(self.criteria.get('text'))

    def url_params(self, **changes: str) -> dict[str, str]:
        """:meth:`params` safe for a URL: without the search text when it is an ID number."""
        params = self.params(**changes)
        if self.is_private:
            params.pop('text', None)
        return params

    @property
    def is_filtered(self) -> bool:
        """Whether any filter input is set."""
        return bool(self.criteria)

    @property
    def more_filter_count(self) -> int:
        """How many filters other than the search text are set (the form then shows them all)."""
        return sum(key != 'text' for key in self.criteria)

    def cleared(self) -> ListState:
        """The same view and sort without filters (清除筛选)."""
        return ListState(self.view, {}, self.sort)


#: the views over the caller's whole reach, counted after the page for a wide reader (see defers_counts)
DEFERRED_VIEWS = ('due_soon', 'overdue', 'escalated', 'all')


def count_text(count: int) -> str:
    """A capped count as the tabs show it: ``1000+`` once the engine stopped counting."""
    cap = engine_tasks.COUNT_CAP
    return f'{cap}+' if count > cap else str(count)


def view_counts(session: Session, scope: Scope, task_filter: TaskFilter | None, *,
                defer: bool = False) -> dict[str, int | None]:
    """Every view's count (capped) under ``task_filter``, for the tabs.

    :param defer: leave out (None) the views over the caller's whole reach, which the page's script then asks
        ``GET /api/v1/tasks/counts`` for: over a supervisor's unit they cost as much as the rest of the page
    """
    cap = engine_tasks.COUNT_CAP  # read now: tests lower it
    views = [view for view in VIEWS if not (defer and view in DEFERRED_VIEWS)]
    counts: dict[str, int | None] = dict.fromkeys(VIEWS)
    counts.update(count_views(session, scope, views, task_filter=task_filter, cap=cap))
    return counts


def defers_counts(scope: Scope) -> bool:
    """Whether the page leaves the views over the reader's whole reach to its script (see :func:`view_counts`):
    for a supervisor anywhere, and for anyone whose case work reaches a whole county or more (a county
    officer's "all" is every open task of the county)."""
    return bool(scope.supervisor_paths) or any(reaches_a_county(path) for path in scope.case_paths)


def counts_url(state: ListState) -> str:
    """Where the page's script reads the tab counts for ``state``'s filters (the API's names for them)."""
    return url_for('api.count_tasks', **{('q' if key == 'text' else key): value
                                         for key, value in state.criteria.items()})


@dataclass(frozen=True)
class SavedChip:
    """A saved filter above the tabs: its live count (None when its criteria no longer hold) and its state."""

    saved: SavedFilter
    state: ListState
    count: int | None
    is_mine: bool


def saved_chips(session: Session, scope: Scope) -> list[SavedChip]:
    """The filters the user sees, each with its count."""
    chips = []
    for saved in list_filters(session, scope):
        state = ListState.of_saved(saved)
        try:
            count: int | None = count_tasks(session, scope, state.view, task_filter=state.task_filter(),
                                            cap=engine_tasks.COUNT_CAP) if not state.problems else None
        except ValidationFailed:  # e.g. its unit left the user's subtree
            count = None
        chips.append(SavedChip(saved, state, count, saved.owner_id == scope.user_id))
    return chips


# -- the filter form's choices ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """One option of a select."""

    value: str
    label: str


@dataclass(frozen=True)
class ChoiceGroup:
    """Options under a heading (``<optgroup>``); a blank label puts them at the top level."""

    label: str
    choices: list[Choice]


def latest_processes(session: Session) -> list[ProcessDefinition]:
    """The newest version of every deployed BPMN process, by name."""
    newest = (sa.select(ProcessDefinition.key, sa.func.max(ProcessDefinition.version).label('version'))
              .where(ProcessDefinition.kind == 'bpmn').group_by(ProcessDefinition.key).subquery())
    return list(session.scalars(sa.select(ProcessDefinition).join(newest, sa.and_(
        ProcessDefinition.key == newest.c.key, ProcessDefinition.version == newest.c.version))
        .order_by(ProcessDefinition.name, ProcessDefinition.key)))


def process_choices(definitions: Sequence[ProcessDefinition]) -> list[Choice]:
    """The process select: every deployed process by name."""
    return [Choice(d.key, d.name) for d in definitions]


def stage_choices(session: Session, definitions: Sequence[ProcessDefinition], process: str | None) -> list[ChoiceGroup]:
    """The stage select: the user tasks of the chosen process, or of every process under its name."""
    chosen = [d for d in definitions if d.key == process] if process else list(definitions)
    groups = []
    for definition in chosen:
        tasks = process_bundle(session, definition).user_tasks.values()
        groups.append(ChoiceGroup('' if process else definition.name,
                                  [Choice(info.bpmn_id, info.title) for info in tasks]))
    return [group for group in groups if group.choices]


def unit_choices(session: Session, scope: Scope, selected: str | None = None) -> list[Choice]:
    """The org-unit select: the units of the user's subtrees, each under its parent, indented.

    A subtree of more than ``UNIT_CHOICES_MAX`` units (a city or province) lists the county level and above,
    plus the unit already chosen: a select of 2,000 townships helps nobody and costs every page.
    """
    paths = scope.case_paths
    roots = tuple(p for p in paths if not any(p != other and p.startswith(other) for other in paths))
    if not roots:
        return []
    within = path_filter(OrgUnit.path, roots)
    if (session.scalar(sa.select(sa.func.count()).select_from(
            sa.select(OrgUnit.id).where(within).limit(UNIT_CHOICES_MAX + 1).subquery())) or 0) > UNIT_CHOICES_MAX:
        within = sa.and_(within, sa.or_(OrgUnit.level != 'township', OrgUnit.code == (selected or '')))
    # Three columns, not the units: a province's select lists some 150 of them on every page.
    rows = session.execute(sa.select(OrgUnit.code, OrgUnit.path, OrgUnit.name).where(within).order_by(OrgUnit.path))
    top = min(root.count('/') for root in roots)
    return [Choice(code, '\u3000' * (path.count('/') - top) + name) for code, path, name in rows]


#: beyond this many units in the user's subtrees, the org-unit select stops at the county level
UNIT_CHOICES_MAX = 300


def sort_choices() -> list[Choice]:
    """The sort select."""
    return [Choice(sort, gettext(label)) for sort, label in SORT_LABELS.items()]


def colour_choices() -> list[Choice]:
    """The risk-colour select."""
    return [Choice(colour, gettext(label)) for colour, label in COLOUR_LABELS.items()]


def share_choices(session: Session, scope: Scope) -> list[Choice]:
    """The groups a saved filter may be shared with: those the user holds (case work only)."""
    codes = sorted(scope.groups - NON_CASE_ROLES)
    names = group_names(session, codes)
    return [Choice(code, names.get(code, code)) for code in codes]


def process_names(definitions: Sequence[ProcessDefinition]) -> dict[str, str]:
    """Process names by key, for the rows."""
    return {d.key: d.name for d in definitions}


# -- the rows ---------------------------------------------------------------------------------------------

def is_alarm(task: HumanTask) -> bool:
    """Whether the task is a monitoring alarm check (监控预警), the most urgent kind of work."""
    return task.priority >= ALARM_PRIORITY


def delegation_text(task: HumanTask, me: int) -> str | None:
    """The task's delegation in words, as the reader stands to it; None when it was never delegated."""
    if task.delegation_state == 'resolved':
        return gettext('委托已办结')
    if task.delegation_state != 'pending':
        return None
    delegate = task.assignee.display_name if task.assignee else '—'
    owner = task.owner.display_name if task.owner else '—'
    if task.owner_id == me:
        return gettext('已委托给 %(name)s', name=delegate)
    if task.assignee_id == me:
        return gettext('%(name)s 委托', name=owner)
    return gettext('%(owner)s 委托给 %(delegate)s', owner=owner, delegate=delegate)


@dataclass(frozen=True)
class TaskRow:
    """A row of the to-do list: the task, what the row says about it and where its links go."""

    task: HumanTask
    process: str
    holder: str
    delegation: str | None
    may_complete: bool
    #: the due time in words (None for a finished task or one without a due time)
    due: DueStatus | None
    task_url: str
    case_url: str
    #: where 认领 posts, when the reader may claim
    claim_url: str | None

    @property
    def may_claim(self) -> bool:
        """Whether the reader may claim the task (the row has somewhere to post 认领)."""
        return self.claim_url is not None

    @property
    def is_alarm(self) -> bool:
        """监控预警: shown above everything else."""
        return is_alarm(self.task)

    @property
    def id_number(self) -> str:
        """The person's ID number, masked: never in full in a list."""
        return mask_id_number(self.task.case.id_number)


def task_rows(session: Session, scope: Scope, tasks: Sequence[HumanTask],
              processes: Mapping[str, str]) -> list[TaskRow]:
    """The rows of ``tasks``, their cases, units and people loaded in a few queries."""
    prefetch(session, tasks)
    groups = group_names(session, (t.candidate_group for t in tasks))
    task_url, case_url = id_urls('tasks.show_task', 'task_id'), id_urls('cases.show_case', 'case_id')
    claim_url = id_urls('tasks.claim_task', 'task_id')
    rows = []
    for task in tasks:
        holder = task.assignee.display_name if task.assignee else groups.get(task.candidate_group or '',
                                                                              task.candidate_group or '')
        rows.append(TaskRow(task, processes.get(task.process_key, task.process_key), holder,
                            delegation_text(task, scope.user_id), scope.can_complete(task),
                            due_status(task) if task.is_open else None, task_url(task.id), case_url(task.case_id),
                            claim_url(task.id) if scope.can_claim(task) else None))
    return rows


# -- whom a task can be handed to ---------------------------------------------------------------------------

def _above(path: str) -> sa.ColumnElement[bool]:
    """Units at ``path`` or above it (their path is a prefix of it)."""
    return sa.literal(path).startswith(OrgUnit.path)


def _member_choices(session: Session, where: sa.ColumnElement[bool]) -> list[Choice]:
    """Active users with a membership matching ``where`` (over Membership, Group and OrgUnit), by name, as select
    options: ``王芳（桃花江镇司法所）``. Only the columns an option shows are read: a province supervisor's bulk
    assignment lists hundreds of people, and loading each as a User with its unit cost more than the page's
    query."""
    home = aliased(OrgUnit)
    rows = session.execute(
        sa.select(User.id, User.display_name, home.name).join(home, home.id == User.org_unit_id)
        .join(Membership, Membership.user_id == User.id).join(Group, Group.id == Membership.group_id)
        .join(OrgUnit, OrgUnit.id == Membership.org_unit_id).where(User.is_active.is_(True), where)
        .distinct().order_by(User.display_name, User.id))
    return [Choice(str(user_id), f'{name}（{unit}）') for user_id, name, unit in rows]


def assign_candidates(session: Session, task: HumanTask) -> list[Choice]:
    """Who a supervisor may assign the task to: holders of its candidate group at its unit or above."""
    if not task.candidate_group:
        return []
    return _member_choices(session, sa.and_(Group.code == task.candidate_group, _above(task.org_path)))


def delegate_candidates(session: Session, task: HumanTask, me: int) -> list[Choice]:
    """Who the holder may delegate the task to: colleagues (not themselves) whose subtree holds its unit."""
    return _member_choices(session, sa.and_(Group.code.not_in(NON_CASE_ROLES), _above(task.org_path), User.id != me))


def _ancestors(path: str) -> list[str]:
    """``/1/4/9/`` → ``/1/``, ``/1/4/``, ``/1/4/9/``: the unit's path and those of the units above it."""
    parts = path.strip('/').split('/')
    return ['/' + '/'.join(parts[:i]) + '/' for i in range(1, len(parts) + 1)]


def bulk_assignees(session: Session, scope: Scope, tasks: Sequence[HumanTask]) -> list[Choice]:
    """Whom a supervisor may pick for 批量指派: the candidates of the tasks on the page, within the subtrees
    they supervise (never every worker of a province: the page's tasks bound the query).

    The engine still checks each task: the person must hold that task's group at its unit.
    """
    wanted: dict[str, set[str]] = {}
    for task in tasks:
        if task.candidate_group and scope.can_assign(task):
            wanted.setdefault(task.candidate_group, set()).update(_ancestors(task.org_path))
    if not wanted:
        return []
    # One (group, units) pair per group, unit paths listed outright: a handful of index lookups.
    holders = [sa.and_(Group.code == group, OrgUnit.path.in_(sorted(paths))) for group, paths in wanted.items()]
    return _member_choices(session, sa.or_(*holders))


@dataclass(frozen=True)
class HandOver:
    """The task page's hand-over actions the reader may take, with the people to choose from."""

    delegates: list[Choice]
    assignees: list[Choice]
    can_delegate: bool
    can_resolve: bool
    can_assign: bool


def hand_over(session: Session, scope: Scope, task: HumanTask) -> HandOver:
    """Delegate (the holder, or a candidate who may claim it), resolve (the delegate), assign (supervisors)."""
    pending = task.delegation_state == 'pending'
    holder = task.assignee_id == scope.user_id or scope.can_claim(task)
    can_delegate = task.is_open and not pending and holder
    can_assign = scope.can_assign(task) and not pending
    return HandOver(
        delegates=delegate_candidates(session, task, scope.user_id) if can_delegate else [],
        assignees=assign_candidates(session, task) if can_assign else [],
        can_delegate=can_delegate, can_resolve=task.is_open and pending and task.assignee_id == scope.user_id,
        can_assign=can_assign)


@dataclass(frozen=True)
class ActionForm:
    """What was typed into one of the task page's small forms (delegate, resolve, assign) and its errors."""

    action: str
    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, list[str]] = field(default_factory=dict)


# -- bulk actions ---------------------------------------------------------------------------------------------

def selected_ids(formdata: Any) -> list[int]:
    """The task ids a bulk form selected: every task of the page when 全选本页 is ticked, else the ticked rows."""
    names = 'page_task' if formdata.get('select_all') else 'task'
    return [int(value) for value in formdata.getlist(names) if value.isdigit()]


@dataclass(frozen=True)
class BulkRow:
    """One task's outcome on the result page: its case number and title when the user may see it."""

    task_id: int
    number: str | None
    title: str | None
    ok: bool
    message: str


def bulk_rows(session: Session, scope: Scope, results: Sequence[BulkResult]) -> list[BulkRow]:
    """The results of a bulk action with each task's case number and title (none for tasks out of reach)."""
    tasks = {t.id: t for t in session.scalars(sa.select(HumanTask).where(
        HumanTask.id.in_([r.task_id for r in results])))}
    prefetch(session, list(tasks.values()))
    rows = []
    for result in results:
        task = tasks.get(result.task_id)
        shown = task if task is not None and scope.can_view_task(task) else None
        rows.append(BulkRow(result.task_id, shown.case.number if shown else None, shown.title if shown else None,
                            result.ok, gettext('成功') if result.ok else translate(result.message)))
    return rows


# -- reminders and escalation on the task page ----------------------------------------------------------

@dataclass(frozen=True)
class UpcomingJob:
    """A pending reminder or escalation of a task: when it fires, and whom it tells, in words."""

    job: Job
    recipients: str

    @property
    def is_reminder(self) -> bool:
        """Reminders can be snoozed or cancelled; the escalation at the due time cannot."""
        return self.job.kind == 'reminder'

    @property
    def snooze_reason(self) -> str | None:
        """Why a supervisor put it off, if one did."""
        reason = self.job.payload.get('snooze_reason')
        return str(reason) if reason else None


def _people(users: Sequence[User], group: str | None, names: Mapping[str, str]) -> str:
    """``王芳`` for one person, ``司法所工作人员（3 人）`` for a group, a dash for nobody."""
    if not users:
        return gettext('（无人可通知）')
    if group is None or len(users) == 1:
        return list_separator().join(user.display_name for user in users)
    return gettext('%(group)s（%(count)s 人）', group=names.get(group, group), count=len(users))


def _reminder_recipients(session: Session, task: HumanTask, names: Mapping[str, str]) -> str:
    users = reminder_recipients(session, task)
    return _people(users, None if task.assignee_id else task.candidate_group, names)


def _escalation_recipients(session: Session, task: HumanTask, job: Job, names: Mapping[str, str]) -> str:
    group, level = str(job.payload.get('to') or 'supervisor'), str(job.payload.get('level') or 'same')
    unit, users = escalation_target(session, task, group, level)
    return f'{unit.name} · {_people(users, group, names)}'


def upcoming_jobs(session: Session, task: HumanTask) -> list[UpcomingJob]:
    """The task's pending reminder and escalation jobs, soonest first, with their recipients."""
    jobs = session.scalars(sa.select(Job).where(Job.human_task_id == task.id, Job.kind.in_(TASK_JOB_KINDS),
                                                Job.status == 'pending').order_by(Job.due_dt, Job.id)).all()
    if not jobs:
        return []
    names = group_names(session, [task.candidate_group, *(str(job.payload.get('to')) for job in jobs)])
    reminded = _reminder_recipients(session, task, names) if any(j.kind == 'reminder' for j in jobs) else ''
    return [UpcomingJob(job, reminded if job.kind == 'reminder'
                        else _escalation_recipients(session, task, job, names)) for job in jobs]


def task_reminder(session: Session, task: HumanTask, job_id: int) -> Job:
    """A reminder job of ``task``; NotFound for any other job (another task's, an escalation, a timer)."""
    job = session.get(Job, job_id)
    if job is None or job.human_task_id != task.id or job.kind != 'reminder':
        raise NotFound('提醒不存在')
    return job


@dataclass(frozen=True)
class ReminderForm:
    """What a supervisor typed into a reminder's snooze or cancel form, and its errors (shown again on 400)."""

    job_id: int
    action: str
    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, list[str]] = field(default_factory=dict)


# -- the task form: generic from camunda:formData, or a registered hand-made form ------------------------

def form_template(key: str | None) -> str | None:
    """The template of hand-made form ``key`` (dots become underscores), if there is one."""
    if not key or not _FORM_KEY.match(key):
        return None
    name = f'tasks/forms/{key.replace(".", "_")}.html'
    try:
        current_app.jinja_env.get_template(name)
    except TemplateNotFound:
        return None
    return name


def hand_made_schema(form: FormSpec) -> Schema | None:
    """The registered schema of the form's key, if the task uses a hand-made form."""
    schema_class = registered_form(form.key)
    return schema_class() if schema_class is not None else None


@dataclass(frozen=True)
class TaskFormView:
    """The task form ready for the page: generic widgets, or a hand-made form."""

    fields: list[Widget]
    form_errors: list[str]
    hand_form: SchemaForm | None = None


def task_form_view(session: Session, task: HumanTask, values: Mapping[str, str] | None,
                   errors: Mapping[str, list[str]], add_row: str | None = None) -> TaskFormView:
    """Lay out the task's form with ``values`` (None: pre-filled from the task's data).

    :param add_row: a hand-made form's list field that gets one more blank row
    """
    form = task_form(session, task)
    schema = hand_made_schema(form)
    if values is None:
        data = runtime.task_data(session, task) if task.is_open else {}
        values = schema_values(schema, data) if schema is not None else initial_values(form, data)
    if schema is not None:
        hand = schema_form(schema, values, errors, form_template(form.key), add_row)
        return TaskFormView([], hand.form_errors, hand)
    return TaskFormView(widgets(form, values, errors), form_level_errors(form, errors))


def submission(session: Session, task: HumanTask, formdata: Mapping[str, str]) -> dict[str, Any]:
    """The posted task form as data for ``runtime.complete_task`` (nested for a hand-made form)."""
    form = task_form(session, task)
    schema = hand_made_schema(form)
    return parse_indexed(schema, formdata) if schema is not None else submitted_data(form, formdata)


def resubmitted_values(session: Session, task: HumanTask, formdata: Mapping[str, str]) -> dict[str, str]:
    """What the user typed, to show again beside the errors.

    A hand-made form's rows come back as they were validated (blank rows dropped, the rest renumbered),
    so that an error at ``parties.1.name`` stands beside the row it is about.
    """
    form = task_form(session, task)
    schema = hand_made_schema(form)
    if schema is not None:
        return schema_values(schema, parse_indexed(schema, formdata))
    return submitted_values(form, formdata)


def when_text(value: datetime) -> str:
    """A datetime as the ``datetime-local`` input wants it (local time, minutes)."""
    return value.astimezone(LOCAL_ZONE).strftime('%Y-%m-%dT%H:%M')
