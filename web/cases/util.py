"""Helpers of the case pages: the history timeline, startable processes, searching and paging cases."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import segno
import sqlalchemy as sa
from flask import current_app, request
from flask_babel import gettext
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.interfaces import ORMOption

from engine.access import Scope, can_view_case, refuse, visible_cases, visible_cases_clause
from engine.audit import SYSTEM_ACTOR
from engine.clock import LOCAL_ZONE
from engine.db import starts_with
from engine.deadlines import DeadlineSyntaxError, parse_reminders
from engine.definitions import process_bundle
from engine.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from engine.forms import FieldSpec, FormSpec
from engine.i18n import N_
from engine.models.audit import AuditEvent
from engine.models.cases import Case, Document
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.notifications import Notification
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.profiles import profile_for
from engine.specs import ProcessBundle
from web.core.pages import translate
from web.core.templating import due_text, list_separator, local_date, local_datetime
from web.tasks.util import group_names, prefetch
from workflows.shared.sensitive import field_kind, mask_data, mask_value

PAGE_SIZE = 50
#: a search counts its matches up to this many and shows "1000+" beyond
COUNT_CAP = 1000
#: timeline entries per page of the case page's history
TIMELINE_PAGE = 100
#: start fields whose process is a request on an existing case, started from that case's page
CASE_REQUEST_FIELD = 'case_id'

EVENT_LABELS = {
    'case.started': N_('立案'), 'case.closed': N_('结案'), 'case.cancelled': N_('撤销案件'),
    'case.file_exported': N_('导出卷宗'), 'case.file_previewed': N_('预览卷宗'),
    'instance.started': N_('流程启动'), 'instance.completed': N_('流程结束'), 'instance.fault': N_('流程出错'),
    'instance.escalation_uncaught': N_('升级事件无人处理'), 'task.created': N_('生成任务'),
    'task.claimed': N_('认领任务'), 'task.unclaimed': N_('退回任务'), 'task.assigned': N_('指派任务'),
    'task.completed': N_('办理任务'), 'task.cancelled': N_('任务取消'),
    'task.due_changed': N_('期限变更'), 'task.escalated': N_('超期升级'), 'reminder.sent': N_('发送提醒'),
    'reminder.snoozed': N_('推迟提醒'), 'reminder.cancelled': N_('取消提醒'), 'document.generated': N_('生成文书'),
    'task.delegated': N_('委托办理'), 'task.resolved': N_('委托办结交回'), 'comment.added': N_('添加意见'),
    'attachment.added': N_('上传附件'),
    'attachment.downloaded': N_('下载附件'), 'document.viewed': N_('查看文书'),
    'case.sensitive_viewed': N_('查看完整敏感信息'),
    'case.counters_changed': N_('案件计数变更'),
    'case.outcome': N_('办结结果'),
    'case.term_changed': N_('矫正期限变更'),
    'case.transferred': N_('移交执行地'),
    'dispute.agreed': N_('达成调解协议'),
    'dispute.closed': N_('纠纷结案'),
    'dispute.confirmation_lapsed': N_('司法确认申请期限届满'),
    'dispute.confirmation_ruled': N_('法院作出司法确认裁定'),
    'dispute.counter_changed': N_('调解次数变更'),
    'dispute.expired': N_('调解期限届满'),
    'dispute.level_changed': N_('调解层级变更'),
    'dispute.notified': N_('发送预警通知'),
    'dispute.rejected': N_('不予受理'),
    'dispute.triaged': N_('三色分级'),
    'instance.signalled': N_('流程收到消息'),
    'request.started': N_('发起申请'),
    'job.cancelled': N_('取消作业'),
    'job.dead': N_('作业失败'),
    'job.retried': N_('重试作业'),
    'instance.retried': N_('重试出错的流程'),
    'instance.retry_failed': N_('重试流程仍出错'),
    'instance.cancelled': N_('终止出错的流程'),
    'instance.migrated': N_('迁移到新版本'),
    'clock.started': N_('期限开始计算'), 'clock.paused': N_('期限暂停计算'), 'clock.resumed': N_('期限恢复计算'),
    'clock.extended': N_('期限延长'), 'clock.stopped': N_('期限停止计算'),
}
CASE_STATUS_LABELS = {'open': N_('办理中'), 'closed': N_('已办结'), 'cancelled': N_('已撤销')}
RISK_LABELS = {'red': N_('红色'), 'yellow': N_('黄色'), 'green': N_('绿色')}
INSTANCE_STATUS_LABELS = {'running': N_('办理中'), 'waiting': N_('等待中'), 'completed': N_('已完成'),
                          'error': N_('出错'), 'suspended': N_('已挂起')}
TASK_STATUS_LABELS = {'open': N_('待办理'), 'completed': N_('已办理'), 'cancelled': N_('已取消')}
JOB_STATUS_LABELS = {'pending': N_('待执行'), 'done': N_('已执行'), 'dead': N_('已失败'), 'cancelled': N_('已取消')}
#: whose status an event's ``status`` key is, by the event kind's family
STATUS_LABELS_BY_FAMILY = {'case': CASE_STATUS_LABELS, 'instance': INSTANCE_STATUS_LABELS, 'task': TASK_STATUS_LABELS,
                           'job': JOB_STATUS_LABELS}
#: why a request cannot be started on a case (the same rule the engine applies: ``engine.runtime``)
MSG_REQUEST_KIND = N_('该案件不能发起此类申请。')
MSG_REQUEST_SCOPE = N_('只有案件所在机构的人员可以在案件上发起申请。')
MSG_REQUEST_CLOSED = N_('案件已不在办理中，不能再发起申请。')
MSG_CASE_ONLY = N_('该流程只能从案件页面发起。')
#: audit keys that are not form fields but say something a reader needs
KEY_LABELS = {'id_number': N_('公民身份号码'),
              'assignee_id': N_('认领人'), 'status': N_('状态'), 'candidate_group': N_('候选组'),
              'number': N_('案件编号'), 'key': N_('流程'), 'version': N_('版本'),
              'due_dt': N_('办理期限'), 'due': N_('办理期限'), 'offset': N_('提醒时点'), 'recipients': N_('通知对象'),
              'group': N_('升级对象'), 'level': N_('升级层级'), 'org_unit': N_('升级至'), 'clock': N_('期限名称'),
              'emailed': N_('邮件已发至'), 'email_failed': N_('邮件未能发出'), 'title': N_('名称'),
              'owner_id': N_('委托人'), 'excerpt': N_('意见'), 'filename': N_('文件名'), 'size': N_('大小（字节）'),
              'sha256': N_('SHA-256 校验值'), 'error': N_('错误信息'), 'jobs_requeued': N_('重新排队的定时作业'),
              'tasks_cancelled': N_('取消的任务数'), 'jobs_cancelled': N_('取消的作业数'), 'attempts': N_('尝试次数'),
              'kind': N_('类型'), 'data': N_('数据'), 'code': N_('代码'), 'is_escalated': N_('已升级'),
              'bpmn_id': N_('流程环节'), 'job_id': N_('作业编号'), 'document_id': N_('文书编号'),
              'revision': N_('修订号'), 'tasks': N_('任务对应'), 'definition_id': N_('流程定义编号')}
#: audit keys whose values are user ids, shown as names
USER_KEYS = frozenset({'assignee_id', 'owner_id'})
#: labels that differ for one kind of event
KIND_KEY_LABELS = {
    'reminder.snoozed': {'due_dt': N_('提醒时间')},
    'document.generated': {'number': N_('文号'), 'title': N_('文书名称')},
    'document.viewed': {'number': N_('文号')},
    'case.sensitive_viewed': {'fields': N_('查看的信息')},
}
#: audit keys already shown elsewhere in an entry, or only of use to the machine (job and document ids)
HIDDEN_KEYS = frozenset({'bpmn_id', 'kind', 'data', 'code', 'job_id', 'document_id', 'clock_status',
                         'is_escalated', 'comment_id', 'attachment_id', 'content_type', 'created_task_ids'})
#: keys hidden for one kind of event (a reminder's job status reads as a case status otherwise)
KIND_HIDDEN_KEYS = {'reminder.cancelled': frozenset({'status'})}
#: audit keys holding ISO timestamps
TIME_KEYS = frozenset({'due', 'due_dt'})
ESCALATION_LEVELS = {'same': N_('本机构'), 'parent': N_('上级机构'), 'county': N_('县级'), 'city': N_('市级'),
                     'province': N_('省级')}


def label_of(labels: Mapping[str, str], key: str) -> str:
    """Translate one of the label tables above (the msgid when a key has no label)."""
    return gettext(labels[key]) if key in labels else key


# -- field labels and values ------------------------------------------------------------------------------

def case_fields(session: Session, case: Case) -> dict[str, FieldSpec]:
    """Every form field of the case's processes, by id: labels and option names for showing data.

    Where tasks share an id, a spec that makes the field sensitive wins (``report_content`` is a 身体情况 in
    one task): one key is shown one way, and never in full by accident.
    """
    fields: dict[str, FieldSpec] = {}
    for instance in case.instances:
        bundle = process_bundle(session, instance.definition)
        forms = [bundle.start_form] + [info.form for info in bundle.user_tasks.values()]
        for form in forms:
            for spec in form.fields if form else ():
                known = fields.get(spec.id)
                if known is None or (field_kind(spec.id, spec) and not field_kind(spec.id, known)):
                    fields[spec.id] = spec
    return fields


def show_value(key: str, value: Any, spec: FieldSpec | None = None, *, reveal: bool = False) -> str:
    """A stored value as a reader sees it: 是/否, an option's name, sensitive data masked, — for nothing.

    :param reveal: show a sensitive value in full (the 查看完整信息 page only, which audits it)
    """
    if value is None or value == '':
        return '—'
    kind = field_kind(key, spec)
    if kind and not reveal:
        return mask_value(kind, value)
    if isinstance(value, bool):
        return gettext('是') if value else gettext('否')
    if spec is not None and spec.type == 'enum':
        return dict(spec.options).get(str(value), str(value))
    if spec is not None and spec.type == 'date':
        return local_date(value)
    return str(value)


@dataclass(frozen=True)
class DataRow:
    """One labelled value of the case data."""

    label: str
    value: str


def data_rows(data: Mapping[str, Any], fields: Mapping[str, FieldSpec]) -> list[DataRow]:
    """Labelled, readable rows of start or task data (engine keys such as case_id left out)."""
    return [DataRow(fields[key].label if key in fields else key, show_value(key, value, fields.get(key)))
            for key, value in data.items() if key not in ('case_id', 'case_number')]


# -- the history timeline ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """A value before and after an event."""

    label: str
    before: str
    after: str


@dataclass(frozen=True)
class TimelineEntry:
    """One audit event as the timeline shows it: who, when, what, and what changed."""

    when: datetime
    actor: str
    what: str
    subject: str | None
    changes: list[Change]
    note: str | None
    #: the audit row, for the details disclosure and for finding it in the audit log
    event_id: int = 0
    kind: str = ''
    #: every value before and after, hidden keys and the start data included
    details: list[Change] = field(default_factory=list)


class _Describer:
    """Turns audit rows of one case into timeline entries, looking up names once."""

    def __init__(self, session: Session, case: Case, events: list[AuditEvent]) -> None:
        self.fields = case_fields(session, case)
        task_ids = {e.human_task_id for e in events if e.human_task_id}
        self.titles: dict[int, str] = {
            task_id: title for task_id, title in session.execute(
                sa.select(HumanTask.id, HumanTask.title).where(HumanTask.id.in_(task_ids)))}
        user_ids = {v for e in events for side in (e.before, e.after) if side
                    for k, v in side.items() if k in USER_KEYS and v}
        self.users: dict[int, str] = {
            user_id: name for user_id, name in session.execute(
                sa.select(User.id, User.display_name).where(User.id.in_(user_ids)))}
        self.groups = group_names(session, (side.get(key) for e in events for side in (e.before, e.after) if side
                                            for key in ('candidate_group', 'group')))
        self.processes = {i.definition.key: i.definition.name for i in case.instances}
        self.people, self.units = _reminder_names(session, events)
        #: the kind of the event being described (``status`` reads differently for a case, a task, a job)
        self.kind = ''

    def value(self, key: str, value: Any) -> str:
        if key in USER_KEYS and value:
            return self.users.get(value, str(value))
        if key in ('candidate_group', 'group') and value:
            return self.groups.get(value, str(value))
        if key in ('key', 'kind') and isinstance(value, str) and value in self.processes:
            return self.processes[value]
        if key == 'key' and value:
            return str(value)
        if key == 'fields' and self.kind == 'case.sensitive_viewed' and isinstance(value, list):
            return list_separator().join(self.label(str(name)) for name in value) or '—'
        if key == 'status' and isinstance(value, str):
            labels = STATUS_LABELS_BY_FAMILY.get(self.kind.split('.')[0], CASE_STATUS_LABELS)
            return gettext(labels[value]) if value in labels else value
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(i, (dict, list)) for i in value)):
            # a hand-made form's rows (parties with their ID numbers and phones): masked inside
            return json.dumps(mask_data({key: value}, self.fields)[key], ensure_ascii=False, sort_keys=True)
        if isinstance(value, list):
            return list_separator().join(show_value(key, item, self.fields.get(key)) for item in value) or '—'
        if key not in self.fields:
            return self._deadline_value(key, value) or show_value(key, value)
        return show_value(key, value, self.fields[key])

    def _deadline_value(self, key: str, value: Any) -> str | None:
        """The values of reminder, escalation and due-date events in words (None: not one of them)."""
        if key in TIME_KEYS and isinstance(value, str) and 'T' in value:
            return local_datetime(datetime.fromisoformat(value))
        if key == 'offset' and isinstance(value, str):
            return offset_words(value)
        if key == 'level' and isinstance(value, str):
            return label_of(ESCALATION_LEVELS, value)
        if key == 'org_unit' and isinstance(value, str):
            return self.units.get(value, value)
        if key in ('recipients', 'emailed', 'email_failed') and isinstance(value, list):
            return list_separator().join(self.people.get(str(item), str(item)) for item in value) or '—'
        return None

    def label(self, key: str, kind: str = '') -> str:
        if key in KIND_KEY_LABELS.get(kind, {}):
            return gettext(KIND_KEY_LABELS[kind][key])
        return self.fields[key].label if key in self.fields else label_of(KEY_LABELS, key)

    def changes(self, event: AuditEvent) -> list[Change]:
        before, after = event.before or {}, dict(event.after or {})
        if event.kind == 'case.started':
            after = dict(after.get('data') or {})  # the start data, field by field
        hidden = HIDDEN_KEYS | KIND_HIDDEN_KEYS.get(event.kind, frozenset())
        keys = [k for k in dict.fromkeys([*before, *after]) if k not in hidden
                and not (k in ('emailed', 'email_failed') and not after.get(k))]
        return [Change(self.label(k, event.kind), self.value(k, before.get(k)) if k in before else '',
                       self.value(k, after.get(k))) for k in keys]

    def details(self, event: AuditEvent) -> list[Change]:
        """Every value the event recorded, before and after: nothing hidden, nested data one row per field."""
        before, after = _flatten_data(event.before or {}), _flatten_data(event.after or {})
        return [Change(self.label(k, event.kind), self.value(k, before[k]) if k in before else '',
                       self.value(k, after[k]) if k in after else '') for k in dict.fromkeys([*before, *after])]

    def entry(self, event: AuditEvent) -> TimelineEntry:
        self.kind = event.kind
        subject = self.titles.get(event.human_task_id) if event.human_task_id else None
        actor = gettext(SYSTEM_ACTOR) if event.actor_id is None and event.actor_name == SYSTEM_ACTOR \
            else event.actor_name
        return TimelineEntry(event.occurred_dt, actor, label_of(EVENT_LABELS, event.kind), subject,
                             self.changes(event), translate(event.note) if event.note else None,
                             event.id, event.kind, self.details(event))


def _flatten_data(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with a nested ``data`` dict (start data, request data) spread into its own keys."""
    data = values.get('data')
    if not isinstance(data, dict):
        return dict(values)
    return {**{k: v for k, v in values.items() if k != 'data'}, **data}


def _reminder_names(session: Session, events: list[AuditEvent]) -> tuple[dict[str, str], dict[str, str]]:
    """Display names of the usernames reminders went to, and names of the unit codes escalations went to."""
    usernames = {str(name) for e in events if e.after for name in e.after.get('recipients') or ()}
    codes = {str(e.after['org_unit']) for e in events if e.after and isinstance(e.after.get('org_unit'), str)}
    people = dict(session.execute(sa.select(User.username, User.display_name).where(User.username.in_(usernames)))
                  .tuples().all()) if usernames else {}
    units = dict(session.execute(sa.select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(codes)))
                 .tuples().all()) if codes else {}
    return people, units


def offset_words(spec: str) -> str:
    """A reminder rung in words: ``-5wd`` → 到期前 5 个工作日, ``0`` → 到期当日, ``-4h`` → 到期前 4 小时."""
    try:
        [offset] = parse_reminders(spec)
    except (DeadlineSyntaxError, ValueError):
        return spec
    if offset.amount == 0:
        return gettext('到期当日')
    amount = abs(offset.amount)
    words = {'wd': gettext('%(num)s 个工作日', num=amount), 'd': gettext('%(num)s 天', num=amount),
             'h': gettext('%(num)s 小时', num=amount)}[offset.unit]
    return gettext('到期前 %(span)s', span=words) if offset.amount < 0 else gettext('到期后 %(span)s', span=words)


def case_timeline(session: Session, case: Case, *, latest: int | None = None) -> list[TimelineEntry]:
    """The case's audit events, oldest first; only the ``latest`` few when given."""
    query = sa.select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id.desc())
    if latest is not None:
        query = query.limit(latest)
    events = list(reversed(session.scalars(query).all()))
    describer = _Describer(session, case, events)
    return [describer.entry(event) for event in events]


@dataclass(frozen=True)
class TimelinePage:
    """Some of a case's timeline, oldest first, and the cursor of the entries after them."""

    entries: list[TimelineEntry]
    next_cursor: int | None


def case_timeline_page(session: Session, case: Case, *, after: int | None = None,
                       limit: int | None = None) -> TimelinePage:
    """The case's audit events after the event ``after``, oldest first, ``limit`` (default
    :data:`TIMELINE_PAGE`) at a time: keyset paging on the event id."""
    limit = limit or TIMELINE_PAGE
    query = sa.select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id).limit(limit + 1)
    if after is not None:
        query = query.where(AuditEvent.id > after)
    rows = list(session.scalars(query))
    events = rows[:limit]
    describer = _Describer(session, case, events)
    return TimelinePage([describer.entry(event) for event in events],
                        events[-1].id if len(rows) > limit else None)


# -- starting cases ---------------------------------------------------------------------------------------

def latest_definitions(session: Session) -> list[ProcessDefinition]:
    """The newest version of every deployed BPMN process, by name."""
    newest = (sa.select(ProcessDefinition.key, sa.func.max(ProcessDefinition.version).label('version'))
              .where(ProcessDefinition.kind == 'bpmn').group_by(ProcessDefinition.key).subquery())
    return list(session.scalars(sa.select(ProcessDefinition).join(newest, sa.and_(
        ProcessDefinition.key == newest.c.key, ProcessDefinition.version == newest.c.version))
        .order_by(ProcessDefinition.name, ProcessDefinition.key)))


def starts_a_case(bundle: ProcessBundle) -> bool:
    """Whether the process opens a case of its own (requests on a case start from the case page)."""
    form = bundle.start_form
    return not (form and any(spec.id == CASE_REQUEST_FIELD for spec in form.fields))


def startable(session: Session) -> list[tuple[ProcessDefinition, ProcessBundle]]:
    """The processes a case can be opened with, each with its parsed bundle."""
    pairs = [(definition, process_bundle(session, definition)) for definition in latest_definitions(session)]
    return [(definition, bundle) for definition, bundle in pairs if starts_a_case(bundle)]


def start_form(bundle: ProcessBundle) -> FormSpec:
    """The start event's form, or an empty one."""
    return bundle.start_form or FormSpec(key=None)


def _task_words(task: HumanTask, groups: Mapping[str, str]) -> str:
    """``“登记案件情况”（桃花江镇司法所 · 司法所工作人员 · 待认领 · 办理期限 2025年10月16日）``."""
    where = [task.org_unit.name]
    if task.assignee is not None:
        where.append(task.assignee.display_name)
    else:
        if task.candidate_group:
            where.append(groups.get(task.candidate_group, task.candidate_group))
        where.append(gettext('待认领'))
    if task.due_dt is not None:
        where.append(gettext('办理期限 %(date)s', date=due_text(task)))
    return f'“{task.title}”（{" · ".join(where)}）'


def first_steps(session: Session, case: Case, tasks: Sequence[HumanTask]) -> str:
    """What a start led to: each new task with who holds it and when it is due, or that the case waits or closed."""
    if not tasks:
        return gettext('案件已办结。') if case.status != 'open' else gettext('流程正在等待后续事件（期限或外部消息）。')
    prefetch(session, tasks)
    groups = group_names(session, (t.candidate_group for t in tasks))
    return gettext('下一步：%(tasks)s。', tasks='；'.join(_task_words(t, groups) for t in tasks))


# -- requests started on a case (外出, 变更执行地, 奖惩...) --------------------------------------------------

def is_request_process(definition: ProcessDefinition, bundle: ProcessBundle) -> bool:
    """Whether the process is a request on an existing case: its start form names the case, and the engine
    attaches it to that case (its profile says so) rather than opening a new one."""
    return not starts_a_case(bundle) and profile_for(definition.key).attach_to_case


def attaches_to(definition: ProcessDefinition, case: Case) -> bool:
    """Whether a request process may be started on cases of ``case``'s kind."""
    kinds = profile_for(definition.key).case_kinds
    return not kinds or case.kind in kinds


def may_start_requests(scope: Scope, case: Case) -> bool:
    """Requests are started while the case is open, by its own units (a read grant after a transfer is not enough)."""
    return case.status == 'open' and scope.owns_case(case)


def case_actions(session: Session, scope: Scope, case: Case) -> list[ProcessDefinition]:
    """The request processes the caller may start on ``case`` now, by name."""
    if not may_start_requests(scope, case):
        return []
    return [definition for definition in latest_definitions(session)
            if attaches_to(definition, case) and is_request_process(definition, process_bundle(session, definition))]


def check_request(scope: Scope, case: Case, definition: ProcessDefinition, bundle: ProcessBundle) -> None:
    """Raise unless the caller may start ``definition`` on ``case`` (the rules of :func:`case_actions`)."""
    if not is_request_process(definition, bundle) or not attaches_to(definition, case):
        raise NotFound(MSG_REQUEST_KIND)
    if not scope.owns_case(case):
        raise AccessDenied(MSG_REQUEST_SCOPE)
    if case.status != 'open':
        raise Conflict(MSG_REQUEST_CLOSED)


def request_form(bundle: ProcessBundle) -> FormSpec:
    """A request's start form without its ``case_id`` field, which the case page fills in."""
    form = start_form(bundle)
    return FormSpec(key=form.key, fields=tuple(spec for spec in form.fields if spec.id != CASE_REQUEST_FIELD))


# -- the case page ----------------------------------------------------------------------------------------

def get_case(session: Session, case_id: int, scope: Scope, *, options: Sequence[ORMOption] = ()) -> Case:
    """A case inside the caller's subtrees, else NotFound (so outsiders cannot tell it exists).

    :param options: loader options for what the caller shows with the case
    """
    case = session.get(Case, case_id, options=options)
    if case is None:
        raise NotFound('案件不存在')
    if not can_view_case(session, scope, case):
        raise refuse(session, scope.user_id, 'case', case_id, case.org_path, '案件不存在')
    return case


def may_reveal(scope: Scope, case: Case) -> bool:
    """Whether the caller may see the case's sensitive data in full (查看完整信息): the case's own units and
    those above them, supervisors included, through a case role. A unit that keeps read access after a
    transfer sees it masked, as every list does.
    """
    return scope.owns_case(case)


@dataclass(frozen=True)
class SensitiveRow:
    """One sensitive value in full, where it was recorded, for the 查看完整信息 page."""

    key: str
    label: str
    value: str
    source: str


def sensitive_rows(session: Session, case: Case) -> list[SensitiveRow]:
    """Every sensitive value the case holds, in full: its ID number, then each value recorded in its history
    (start data, task data, before and after), the same value from the same field listed once."""
    fields = case_fields(session, case)
    rows = [SensitiveRow('id_number', gettext('公民身份号码'), case.id_number, gettext('案件信息'))] \
        if case.id_number else []
    events = list(session.scalars(sa.select(AuditEvent).where(AuditEvent.case_id == case.id)
                                  .order_by(AuditEvent.id)))
    titles = dict(session.execute(sa.select(HumanTask.id, HumanTask.title).where(
        HumanTask.id.in_({e.human_task_id for e in events if e.human_task_id}))).tuples().all())
    for event in events:
        source = ' · '.join(filter(None, [label_of(EVENT_LABELS, event.kind), titles.get(event.human_task_id or 0),
                                           local_datetime(event.occurred_dt)]))
        for side in (event.before or {}, event.after or {}):
            rows.extend(SensitiveRow(key, label, value, source) for key, label, value in _revealed(side, fields))
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        if (row.label, row.value) not in seen:
            seen.add((row.label, row.value))
            unique.append(row)
    return unique


def _revealed(values: Mapping[str, Any], fields: Mapping[str, FieldSpec],
              prefix: str = '') -> Iterable[tuple[str, str, str]]:
    """(key, label, full value) of each sensitive value in ``values``, nested rows (a hand-made form's
    parties) included with their position in the label."""
    for key, value in _flatten_data(values).items():
        spec = fields.get(key)
        label = f'{prefix}{spec.label if spec else label_of(KEY_LABELS, key)}'
        if field_kind(key, spec) and value not in (None, '') and not isinstance(value, (dict, list)):
            yield key, label, show_value(key, value, spec, reveal=True)
        elif isinstance(value, list):
            for number, item in enumerate(value, 1):
                if isinstance(item, dict):
                    yield from _revealed(item, fields, f'{label}（{number}）')


@dataclass(frozen=True)
class InstanceRow:
    """A process instance of the case with its open tasks."""

    instance: ProcessInstance
    tasks: list[HumanTask] = field(default_factory=list)


def case_instances(session: Session, case: Case) -> list[InstanceRow]:
    """Every instance of the case, lifecycle first then requests in start order, each with its open tasks.

    The instances' serialized state is not read (it can be large); their definitions, the open tasks and
    the tasks' units and assignees come in four queries.
    """
    instances = list(session.scalars(
        sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)
        .options(defer(ProcessInstance.state), selectinload(ProcessInstance.definition))
        .order_by(ProcessInstance.id)))
    set_committed_value(case, 'instances', instances)
    tasks = open_tasks(session, case)
    prefetch(session, tasks)
    by_instance: defaultdict[int, list[HumanTask]] = defaultdict(list)
    for task in tasks:
        by_instance[task.instance_id].append(task)
    ordered = sorted(instances, key=lambda i: (not i.is_lifecycle, i.id))
    return [InstanceRow(instance, by_instance[instance.id]) for instance in ordered]


def lifecycle_name(case: Case, instances: Iterable[InstanceRow]) -> str:
    """The name of the process the case was opened with (its lifecycle instance's), else its key."""
    return next((row.instance.definition.name for row in instances if row.instance.is_lifecycle), case.kind)


def public_url(case: Case) -> str:
    """The address of the case's public progress page (一案一码), ``<base>/c/<public code>``.

    ``PUBLIC_BASE_URL`` names the address the parties reach the site at; without it, the address this
    request came in on.
    """
    base = current_app.config.get('PUBLIC_BASE_URL') or request.url_root
    return f'{base.rstrip("/")}/c/{case.public_code}'


def qr_svg(url: str) -> bytes:
    """A QR code of ``url`` as a standalone SVG image, black on white, sized for printing on an A4 form."""
    buffer = io.BytesIO()
    segno.make_qr(url, error='m').save(buffer, kind='svg', scale=4, border=4, dark='#000', light='#fff',
                                       xmldecl=False, svgclass=None, lineclass=None)
    return buffer.getvalue()


# -- listing and searching ---------------------------------------------------------------------------------

def search_clause(text: str) -> sa.ColumnElement[bool] | None:
    """Cases matching ``text``: case number (prefix), person-name prefix or the exact ID number."""
    text = text.strip()
    if not text:
        return None
    if len(text) > 64:
        raise ValidationFailed('数据有误', {'q': [N_('搜索内容过长。')]})
    upper = text.upper()
    return sa.or_(starts_with(Case.number, upper), starts_with(Case.person_name, text), Case.id_number == upper)


def parse_cursor(raw: str | None) -> int | None:
    """The ``before`` cursor: the id of the last case shown."""
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValidationFailed('分页参数无效', {'before': ['无法识别的分页游标。']})
    return int(raw)


@dataclass(frozen=True)
class CaseFilters:
    """What a case search asks for; an empty value filters nothing.

    :param number: case number, whole or its beginning
    :param name: the beginning of the person's name
    :param id_number: a whole ID number (never matched by prefix)
    :param kind: the process key the case was opened with
    :param status: open, closed or cancelled
    :param org_path: the path of an org unit: cases there and below
    :param opened_from: opened on or after this day (Beijing time)
    :param opened_to: opened on or before this day
    :param text: the old single search box (see :func:`search_clause`)
    """

    number: str = ''
    name: str = ''
    id_number: str = ''
    kind: str = ''
    status: str = ''
    org_path: str = ''
    opened_from: date | None = None
    opened_to: date | None = None
    text: str = ''

    @property
    def is_private(self) -> bool:
        """Whether the search holds an ID number, which must not appear in a URL, a log or the history."""
        return bool(self.id_number or self.text)


def local_midnight(day: date) -> datetime:
    """The start of ``day`` in Beijing time."""
    return datetime.combine(day, time.min, tzinfo=LOCAL_ZONE)


def filter_clauses(filters: CaseFilters) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses of ``filters``; prefixes compile to index ranges (:func:`engine.db.starts_with`)."""
    clauses: list[sa.ColumnElement[bool]] = []
    if filters.number:
        clauses.append(starts_with(Case.number, filters.number.upper()))
    if filters.name:
        clauses.append(starts_with(Case.person_name, filters.name))
    if filters.id_number:
        clauses.append(Case.id_number == filters.id_number.upper())
    if filters.kind:
        clauses.append(Case.kind == filters.kind)
    if filters.status:
        clauses.append(Case.status == filters.status)
    if filters.org_path:
        clauses.append(starts_with(Case.org_path, filters.org_path))
    if filters.opened_from is not None:
        clauses.append(Case.created_dt >= local_midnight(filters.opened_from))
    if filters.opened_to is not None:
        clauses.append(Case.created_dt < local_midnight(filters.opened_to + timedelta(days=1)))
    text = search_clause(filters.text)
    if text is not None:
        clauses.append(text)
    return clauses


def scope_units(session: Session, scope: Scope) -> list[OrgUnit]:
    """The org units within the caller's case subtrees, in tree order (a unit before those below it)."""
    if not scope.case_paths:
        return []
    within = sa.or_(*(starts_with(OrgUnit.path, path) for path in scope.case_paths))
    return list(session.scalars(sa.select(OrgUnit).where(within).order_by(OrgUnit.path)))


def unit_in_scope(session: Session, scope: Scope, code: str) -> OrgUnit | None:
    """The org unit ``code`` if it lies within the caller's case subtrees, else None."""
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    return unit if unit is not None and scope.sees_path(unit.path) else None


@dataclass(frozen=True)
class CasePage:
    """One page of cases, newest first, and the cursor of the next page."""

    items: list[Case]
    next_cursor: int | None


def list_cases(session: Session, scope: Scope, filters: CaseFilters = CaseFilters(), *, before: int | None = None,
               limit: int | None = None) -> CasePage:
    """Visible cases matching ``filters``, newest first, ``limit`` (default :data:`PAGE_SIZE`) at a time,
    keyset-paged on id (ids grow with creation time): no OFFSET, however deep the page."""
    limit = limit or PAGE_SIZE
    query = (visible_cases(scope).where(*filter_clauses(filters)).options(selectinload(Case.org_unit))
             .order_by(Case.id.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(Case.id < before)
    rows = list(session.scalars(query))
    items = rows[:limit]
    return CasePage(items, items[-1].id if len(rows) > limit else None)


@dataclass(frozen=True)
class CappedCount:
    """A count that stopped at its cap: ``value`` matches, and whether there are ``more``."""

    value: int
    more: bool


def count_cases(session: Session, scope: Scope, filters: CaseFilters, *, cap: int | None = None) -> CappedCount:
    """How many visible cases match, reading at most ``cap + 1`` rows (default :data:`COUNT_CAP`): a search that
    matches everything costs no more than one that matches a thousand."""
    cap = cap or COUNT_CAP
    matches = (sa.select(Case.id).where(visible_cases_clause(scope), *filter_clauses(filters))
               .limit(cap + 1).subquery())
    found = int(session.scalar(sa.select(sa.func.count()).select_from(matches)) or 0)
    return CappedCount(min(found, cap), found > cap)


def case_documents(session: Session, case: Case) -> list[Document]:
    """The case's documents, in the order they were issued."""
    return list(session.scalars(sa.select(Document).where(Document.case_id == case.id)
                                .order_by(Document.created_dt, Document.id)))


def get_document(session: Session, case: Case, document_id: int) -> Document:
    """A document of ``case``; NotFound for any other (a document of another case is not reachable here)."""
    document = session.get(Document, document_id)
    if document is None or document.case_id != case.id:
        raise NotFound(N_('文书不存在'))
    return document


def open_tasks(session: Session, case: Case) -> list[HumanTask]:
    """The case's open tasks, oldest first."""
    return list(session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case.id,
                                                           HumanTask.status == 'open').order_by(HumanTask.id)))


# -- reminders sent ----------------------------------------------------------------------------------------

#: the notification kinds the case page lists as reminders sent
REMINDER_KINDS = {'reminder': N_('到期提醒'), 'escalation': N_('超期升级')}
#: the most reminders the case page lists (newest first beyond that)
REMINDERS_SHOWN = 200


@dataclass(frozen=True)
class SentReminder:
    """A reminder or escalation notice sent about the case: when, what, about which task, to whom, read or not."""

    when: datetime
    kind: str
    title: str
    task: str | None
    recipient: str
    read_dt: datetime | None


def case_reminders(session: Session, case: Case) -> list[SentReminder]:
    """The reminder and escalation notices sent about ``case``, oldest first (the newest
    :data:`REMINDERS_SHOWN`), one per recipient."""
    rows = session.execute(
        sa.select(Notification, User.display_name, HumanTask.title)
        .join(User, User.id == Notification.user_id)
        .outerjoin(HumanTask, HumanTask.id == Notification.human_task_id)
        .where(Notification.case_id == case.id, Notification.kind.in_(REMINDER_KINDS))
        .order_by(Notification.created_dt.desc(), Notification.id.desc()).limit(REMINDERS_SHOWN)).all()
    return [SentReminder(n.created_dt, label_of(REMINDER_KINDS, n.kind), n.title, title, name, n.read_dt)
            for n, name, title in reversed(rows)]
