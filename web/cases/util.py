"""Helpers of the case pages: the history timeline, startable processes, searching and paging cases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Session

from engine.access import Scope, visible_cases
from engine.audit import SYSTEM_ACTOR
from engine.deadlines import DeadlineSyntaxError, parse_reminders
from engine.definitions import process_bundle
from engine.errors import NotFound, ValidationFailed
from engine.forms import FieldSpec, FormSpec
from engine.i18n import N_
from engine.models.audit import AuditEvent
from engine.models.cases import Case, Document
from engine.models.definitions import ProcessDefinition
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.specs import ProcessBundle
from web.core.pages import translate
from web.core.templating import list_separator, local_date, local_datetime
from web.tasks.util import group_names
from workflows.shared.id_numbers import mask_id_number

PAGE_SIZE = 50
#: start fields whose process is a request on an existing case, started from that case's page
CASE_REQUEST_FIELD = 'case_id'
#: values shown masked wherever they appear
MASKED_FIELDS = frozenset({'id_number'})

EVENT_LABELS = {
    'case.started': N_('立案'), 'case.closed': N_('结案'), 'case.cancelled': N_('撤销案件'),
    'instance.started': N_('流程启动'), 'instance.completed': N_('流程结束'), 'instance.fault': N_('流程出错'),
    'instance.escalation_uncaught': N_('升级事件无人处理'), 'task.created': N_('生成任务'),
    'task.claimed': N_('认领任务'), 'task.unclaimed': N_('退回任务'), 'task.assigned': N_('指派任务'),
    'task.completed': N_('办理任务'), 'task.cancelled': N_('任务取消'),
    'task.due_changed': N_('期限变更'), 'task.escalated': N_('超期升级'), 'reminder.sent': N_('发送提醒'),
    'reminder.snoozed': N_('推迟提醒'), 'reminder.cancelled': N_('取消提醒'), 'document.generated': N_('生成文书'),
}
CASE_STATUS_LABELS = {'open': N_('办理中'), 'closed': N_('已办结'), 'cancelled': N_('已撤销')}
INSTANCE_STATUS_LABELS = {'running': N_('办理中'), 'waiting': N_('等待中'), 'completed': N_('已完成'),
                          'error': N_('出错'), 'suspended': N_('已挂起')}
#: audit keys that are not form fields but say something a reader needs
KEY_LABELS = {'assignee_id': N_('认领人'), 'status': N_('状态'), 'candidate_group': N_('候选组'),
              'number': N_('案件编号'), 'key': N_('流程'), 'version': N_('版本'),
              'due_dt': N_('办理期限'), 'due': N_('办理期限'), 'offset': N_('提醒时点'), 'recipients': N_('通知对象'),
              'group': N_('升级对象'), 'level': N_('升级层级'), 'org_unit': N_('升级至'), 'clock': N_('期限名称'),
              'emailed': N_('邮件已发至'), 'email_failed': N_('邮件未能发出'), 'title': N_('名称')}
#: labels that differ for one kind of event
KIND_KEY_LABELS = {
    'reminder.snoozed': {'due_dt': N_('提醒时间')},
    'document.generated': {'number': N_('文号'), 'title': N_('文书名称')},
}
#: audit keys already shown elsewhere in an entry, or only of use to the machine (job and document ids)
HIDDEN_KEYS = frozenset({'bpmn_id', 'kind', 'data', 'code', 'job_id', 'document_id', 'clock_status',
                         'is_escalated'})
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
    """Every form field of the case's processes, by id: labels and option names for showing data."""
    fields: dict[str, FieldSpec] = {}
    for instance in case.instances:
        bundle = process_bundle(session, instance.definition)
        forms = [bundle.start_form] + [info.form for info in bundle.user_tasks.values()]
        for form in forms:
            for spec in form.fields if form else ():
                fields.setdefault(spec.id, spec)
    return fields


def show_value(key: str, value: Any, spec: FieldSpec | None = None) -> str:
    """A stored value as a reader sees it: 是/否, an option's name, a masked ID number, — for nothing."""
    if value is None or value == '':
        return '—'
    if key in MASKED_FIELDS:
        return mask_id_number(str(value))
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


class _Describer:
    """Turns audit rows of one case into timeline entries, looking up names once."""

    def __init__(self, session: Session, case: Case, events: list[AuditEvent]) -> None:
        self.fields = case_fields(session, case)
        task_ids = {e.human_task_id for e in events if e.human_task_id}
        self.titles: dict[int, str] = {
            task_id: title for task_id, title in session.execute(
                sa.select(HumanTask.id, HumanTask.title).where(HumanTask.id.in_(task_ids)))}
        user_ids = {v for e in events for side in (e.before, e.after) if side
                    for k, v in side.items() if k == 'assignee_id' and v}
        self.users: dict[int, str] = {
            user_id: name for user_id, name in session.execute(
                sa.select(User.id, User.display_name).where(User.id.in_(user_ids)))}
        self.groups = group_names(session, (side.get(key) for e in events for side in (e.before, e.after) if side
                                            for key in ('candidate_group', 'group')))
        self.processes = {i.definition.key: i.definition.name for i in case.instances}
        self.people, self.units = _reminder_names(session, events)

    def value(self, key: str, value: Any) -> str:
        if key == 'assignee_id' and value:
            return self.users.get(value, str(value))
        if key in ('candidate_group', 'group') and value:
            return self.groups.get(value, str(value))
        if key == 'key' and value:
            return self.processes.get(value, str(value))
        if key == 'status' and isinstance(value, str):
            return gettext(CASE_STATUS_LABELS.get(value, value)) if value in CASE_STATUS_LABELS else value
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

    def entry(self, event: AuditEvent) -> TimelineEntry:
        subject = self.titles.get(event.human_task_id) if event.human_task_id else None
        actor = gettext(SYSTEM_ACTOR) if event.actor_id is None and event.actor_name == SYSTEM_ACTOR \
            else event.actor_name
        return TimelineEntry(event.occurred_dt, actor, label_of(EVENT_LABELS, event.kind), subject,
                             self.changes(event), translate(event.note) if event.note else None)


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


# -- listing and searching ---------------------------------------------------------------------------------

def get_case(session: Session, case_id: int, scope: Scope) -> Case:
    """A case inside the caller's subtrees, else NotFound (so outsiders cannot tell it exists)."""
    case = session.scalars(visible_cases(scope).where(Case.id == case_id)).one_or_none()
    if case is None:
        raise NotFound('案件不存在')
    return case


def search_clause(text: str) -> sa.ColumnElement[bool] | None:
    """Cases matching ``text``: case number (prefix), person-name prefix or the exact ID number."""
    text = text.strip()
    if not text:
        return None
    if len(text) > 64:
        raise ValidationFailed('数据有误', {'q': [N_('搜索内容过长。')]})
    upper = text.upper()
    return sa.or_(Case.number.startswith(upper, autoescape=True),
                  Case.person_name.startswith(text, autoescape=True), Case.id_number == upper)


def parse_cursor(raw: str | None) -> int | None:
    """The ``before`` cursor: the id of the last case shown."""
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed('分页参数无效', {'before': ['无法识别的分页游标。']})
    return int(raw)


@dataclass(frozen=True)
class CasePage:
    """One page of cases, newest first, and the cursor of the next page."""

    items: list[Case]
    next_cursor: int | None


def list_cases(session: Session, scope: Scope, *, text: str = '', before: int | None = None,
               limit: int = PAGE_SIZE) -> CasePage:
    """Visible cases, newest first, keyset-paged on id (ids grow with creation time)."""
    query = visible_cases(scope).order_by(Case.id.desc()).limit(limit + 1)
    clause = search_clause(text)
    if clause is not None:
        query = query.where(clause)
    if before is not None:
        query = query.where(Case.id < before)
    rows = list(session.scalars(query))
    items = rows[:limit]
    return CasePage(items, items[-1].id if len(rows) > limit else None)


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

