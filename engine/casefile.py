"""The case file (卷宗): everything a case holds, gathered and ordered into the standard sections.

A medical dispute's file follows the people's-mediation order (申请书/受理登记表 → 告知书 → 调查记录 → 证据 →
调解记录 → 协议书 → 履行凭证 → 回访记录 → 司法确认材料 → 卷宗情况说明 → 封底; domain/legal-rules.md §3.4). A
community-corrections file is the 档案 of 社区矫正法 §22 and 实施办法 §22: the 执行档案 (the legal documents
that applied corrections, then those of reception, supervision approvals, rewards and sanctions, release or
termination) followed by the 工作档案 (the work records of the agency, the 司法所 and the 矫正小组).

Each section rule names what it takes: document kinds (``Document.kind``), tasks by process key or
``process_key:bpmn_id`` (the specific rule wins), the start records of process keys, and attachments uploaded
on given tasks. Attachments go to the evidence section unless a rule claims the task they were uploaded on;
whatever no rule claims lands in 其他材料, so nothing a case holds is left out of its file, and nothing
appears twice. This module only reads; :func:`record_export` and :func:`record_preview` write the audit.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer, selectinload

from engine import audit
from engine.access import Scope, can_view_case, refuse, registered_lifecycles
from engine.attachments import JPEG, PNG, AttachmentSettings, AttachmentUnreadable, list_attachments, read_content
from engine.clock import now
from engine.definitions import process_bundle
from engine.errors import AccessDenied
from engine.forms import FieldSpec
from engine.i18n import N_
from engine.models.audit import AuditEvent
from engine.models.cases import Case, Document
from engine.models.comments import Attachment
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User

#: images up to this size are embedded in the file (as data URIs); larger ones are listed only
EMBED_MAX_BYTES = 256 * 1024
#: the media types shown inline
EMBEDDABLE_TYPES = frozenset({JPEG.content_type, PNG.content_type})
MSG_NOT_FOUND = N_('案件不存在')
MSG_MAY_NOT_EXPORT = N_('卷宗载有完整的个人信息，只有案件所属机构及其上级的办案人员可以查看和导出。')

# -- section rules and layouts -----------------------------------------------------------------------------

#: sections made from the case itself rather than from records: the cover, the contents, the summary, the back
COVER, CONTENTS, SUMMARY, BACK_COVER = 'cover', 'contents', 'summary', 'back_cover'


@dataclass(frozen=True)
class SectionRule:
    """One section of a layout and what it takes.

    :param key: stable id (``agreement``), also the section's anchor
    :param title: its heading, a msgid
    :param part: the part it belongs to (执行档案 / 工作档案), a msgid, or None
    :param documents: the document kinds (``Document.kind``) it holds
    :param tasks: the completed tasks it holds: a process key (every task of it) or ``process_key:bpmn_id``
    :param starts: the process keys whose start records (立案 or request data) it holds
    :param attachment_tasks: like ``tasks``: attachments uploaded on these tasks belong here, not in evidence
    :param is_evidence: attachments no rule claims go here
    :param is_other: documents, tasks and start records no rule claims go here
    :param generated: ``cover``, ``contents``, ``summary`` or ``back_cover``: made from the case, always shown
    """

    key: str
    title: str
    part: str | None = None
    documents: frozenset[str] = frozenset()
    tasks: frozenset[str] = frozenset()
    starts: frozenset[str] = frozenset()
    attachment_tasks: frozenset[str] = frozenset()
    is_evidence: bool = False
    is_other: bool = False
    generated: str | None = None


@dataclass(frozen=True)
class Layout:
    """The order of a kind of case file.

    :param name: the lifecycle it is for (``disputes``), or ``generic``
    :param title: the file's name on its cover, a msgid
    :param sections: the sections in print order
    """

    name: str
    title: str
    sections: tuple[SectionRule, ...]


def _keys(*values: str) -> frozenset[str]:
    return frozenset(values)


_DISPUTE = 'dispute_mediation'
_EXECUTION_FILE, _WORK_FILE = N_('执行档案'), N_('工作档案')

DISPUTE_LAYOUT = Layout('disputes', N_('医疗纠纷人民调解卷宗'), (
    SectionRule(COVER, N_('封面'), generated=COVER),
    SectionRule(CONTENTS, N_('卷内目录'), generated=CONTENTS),
    SectionRule('application', N_('申请与受理材料'), documents=_keys('registration_form'),
                starts=_keys(_DISPUTE), tasks=_keys(f'{_DISPUTE}:accept_review')),
    SectionRule('notices', N_('告知与通知'),
                documents=_keys('rights_notice', 'rejection_notice', 'termination_notice'),
                tasks=_keys(f'{_DISPUTE}:termination_notice', f'{_DISPUTE}:guidance')),
    SectionRule('investigation', N_('调查记录'), tasks=_keys(f'{_DISPUTE}:expert_consult', f'{_DISPUTE}:appraisal')),
    SectionRule('evidence', N_('证据材料'), is_evidence=True),
    SectionRule('sessions', N_('调解记录'), documents=_keys('session_record', 'extension_agreement'),
                tasks=_keys(*(f'{_DISPUTE}:{bpmn_id}' for bpmn_id in (
                    'session_village', 'session_township', 'session_county', 'backlog_plan', 'red_lead',
                    'red_counselling', 'joint_committee', 'joint_health', 'joint_hospital', 'extension')))),
    SectionRule('agreement', N_('调解协议书'), documents=_keys('agreement'),
                tasks=_keys(f'{_DISPUTE}:draft_agreement')),
    SectionRule('performance', N_('履行凭证'), tasks=_keys(f'{_DISPUTE}:urge_performance'),
                attachment_tasks=_keys(f'{_DISPUTE}:followup', f'{_DISPUTE}:urge_performance')),
    SectionRule('followup', N_('回访记录'), documents=_keys('followup_record', 'rectification_letter'),
                tasks=_keys(f'{_DISPUTE}:followup', f'{_DISPUTE}:analyse_causes', f'{_DISPUTE}:health_rectification')),
    SectionRule('confirmation', N_('司法确认材料'),
                tasks=_keys(f'{_DISPUTE}:confirmation', f'{_DISPUTE}:court_ruling', f'{_DISPUTE}:after_rejection'),
                attachment_tasks=_keys(f'{_DISPUTE}:confirmation', f'{_DISPUTE}:court_ruling')),
    SectionRule('other', N_('其他材料'), is_other=True),
    SectionRule(SUMMARY, N_('卷宗情况说明'), documents=_keys('case_summary'), tasks=_keys(f'{_DISPUTE}:close_review'),
                generated=SUMMARY),
    SectionRule(BACK_COVER, N_('封底'), generated=BACK_COVER),
))

CORRECTIONS_LAYOUT = Layout('corrections', N_('社区矫正档案'), (
    SectionRule(COVER, N_('封面'), generated=COVER),
    SectionRule(CONTENTS, N_('卷内目录'), generated=CONTENTS),
    SectionRule('legal_documents', N_('适用社区矫正的法律文书及调查评估材料'), part=_EXECUTION_FILE,
                documents=_keys('assessment_opinion'), starts=_keys('corrections_reception', 'corrections_assessment'),
                tasks=_keys('corrections_assessment', 'corrections_reception:receipt',
                            'corrections_reception:chase_documents')),
    SectionRule('reception', N_('接收、报到与入矫宣告'), part=_EXECUTION_FILE,
                documents=_keys('declaration', 'report_notice'),
                tasks=_keys('corrections_reception:report', 'corrections_reception:search',
                            'corrections_reception:follow_absconded', 'corrections_reception:declare')),
    SectionRule('approvals', N_('监督管理审批'), part=_EXECUTION_FILE,
                documents=_keys('leave_approval', 'consultation_letter', 'residence_decision'),
                starts=_keys('corrections_leave', 'corrections_residence_change', 'corrections_monitoring'),
                tasks=_keys('corrections_reception:approve_level', 'corrections_leave',
                            'corrections_residence_change', 'corrections_monitoring')),
    SectionRule('rewards_sanctions', N_('奖惩'), part=_EXECUTION_FILE,
                documents=_keys('commendation', 'reprimand', 'warning', 'proposal'),
                starts=_keys('corrections_sanction'), tasks=_keys('corrections_sanction')),
    SectionRule('release', N_('解除与终止矫正'), part=_EXECUTION_FILE,
                documents=_keys('release_certificate', 'termination_notice'),
                starts=_keys('corrections_release'), tasks=_keys('corrections_release')),
    SectionRule('plan', N_('矫正小组与矫正方案'), part=_WORK_FILE, tasks=_keys('corrections_reception:team')),
    SectionRule('supervision', N_('日常监督管理记录'), part=_WORK_FILE,
                starts=_keys('corrections_report', 'corrections_alarm'),
                tasks=_keys('corrections_report', 'corrections_alarm')),
    SectionRule('evidence', N_('证明材料'), part=_WORK_FILE, is_evidence=True),
    SectionRule('other', N_('其他材料'), part=_WORK_FILE, is_other=True),
    SectionRule(SUMMARY, N_('卷宗情况说明'), documents=_keys('case_summary'), generated=SUMMARY),
    SectionRule(BACK_COVER, N_('封底'), generated=BACK_COVER),
))

#: a designer's own process: its records in time order between the application and the summary
GENERIC_LAYOUT = Layout('generic', N_('案件卷宗'), (
    SectionRule(COVER, N_('封面'), generated=COVER),
    SectionRule(CONTENTS, N_('卷内目录'), generated=CONTENTS),
    SectionRule('records', N_('办理材料'), is_other=True),
    SectionRule('evidence', N_('证据材料'), is_evidence=True),
    SectionRule(SUMMARY, N_('卷宗情况说明'), documents=_keys('case_summary'), generated=SUMMARY),
    SectionRule(BACK_COVER, N_('封底'), generated=BACK_COVER),
))

_layouts: dict[str, Layout] = {DISPUTE_LAYOUT.name: DISPUTE_LAYOUT, CORRECTIONS_LAYOUT.name: CORRECTIONS_LAYOUT}


def register_layout(layout: Layout) -> None:
    """Use ``layout`` for the cases of the lifecycle it is named after (replacing the one shipped here)."""
    _layouts[layout.name] = layout


def layout_for(case: Case) -> Layout:
    """The layout of the lifecycle whose process keys include the case's kind, else :data:`GENERIC_LAYOUT`."""
    for lifecycle in registered_lifecycles():
        if case.kind in lifecycle.kinds and lifecycle.name in _layouts:
            return _layouts[lifecycle.name]
    return GENERIC_LAYOUT


# -- what the file holds ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DocumentEntry:
    """A document (文书) as issued."""

    document: Document
    kind: str = 'document'

    @property
    def when(self) -> datetime:
        """When it was issued."""
        return self.document.created_dt

    @property
    def ident(self) -> int:
        """The document's id."""
        return self.document.id


@dataclass(frozen=True)
class AttachmentEntry:
    """An uploaded file: its name, size, checksum, uploader and date; a small image also inline.

    :param image_uri: a ``data:`` URI of a small JPEG or PNG whose bytes matched their checksum
    :param unreadable: the stored bytes no longer match the checksum (or are missing): listed, marked
    :param task_title: the task it was uploaded on, if any
    """

    attachment: Attachment
    image_uri: str | None = None
    unreadable: bool = False
    task_title: str | None = None
    kind: str = 'attachment'

    @property
    def when(self) -> datetime:
        """When it was uploaded."""
        return self.attachment.created_dt

    @property
    def ident(self) -> int:
        """The attachment's id."""
        return self.attachment.id


@dataclass(frozen=True)
class TaskEntry:
    """A completed task: who did it, when, at which unit, and the data entered (as validated)."""

    task: HumanTask
    data: Mapping[str, Any]
    fields: Mapping[str, FieldSpec]
    kind: str = 'task'

    @property
    def when(self) -> datetime:
        """When it was completed."""
        return self.task.completed_dt or self.task.created_dt

    @property
    def ident(self) -> int:
        """The task's id."""
        return self.task.id


@dataclass(frozen=True)
class StartEntry:
    """The data a case or a request on it was started with (the 申请/立案 record).

    :param process_key: the process started
    :param process_name: its name
    :param is_request: a request on the case (外出, 奖惩...) rather than the case's own start
    :param actor_name: who started it
    """

    process_key: str
    process_name: str
    is_request: bool
    actor_name: str
    occurred_dt: datetime
    data: Mapping[str, Any]
    fields: Mapping[str, FieldSpec]
    event_id: int
    kind: str = 'start'

    @property
    def when(self) -> datetime:
        """When it was started."""
        return self.occurred_dt

    @property
    def ident(self) -> int:
        """The id of the audit event that recorded the start."""
        return self.event_id


Entry = DocumentEntry | AttachmentEntry | TaskEntry | StartEntry


@dataclass(frozen=True)
class Item:
    """An entry with its number in the file (卷内序号), counted from 1 across all sections."""

    number: int
    entry: Entry

    @property
    def anchor(self) -> str:
        """The id of the item in the printed file."""
        return f'item-{self.number}'


@dataclass(frozen=True)
class SectionFile:
    """A section as printed: its rule, its number among the sections shown, and its items in time order."""

    rule: SectionRule
    ordinal: int
    items: tuple[Item, ...] = ()

    @property
    def anchor(self) -> str:
        """The id of the section in the printed file."""
        return f'section-{self.rule.key}'


@dataclass(frozen=True)
class CaseFile:
    """A case's whole file, ready to print.

    :param sections: the sections shown: the generated ones always, the others when they hold something
    :param history: every audit event of the case, oldest first (the 办理记录 of the summary)
    :param open_tasks: tasks not yet done (a file of an open case says so)
    :param compiled_dt: when it was put together
    :param compiled_by: for whom
    """

    case: Case
    layout: Layout
    sections: tuple[SectionFile, ...]
    history: tuple[AuditEvent, ...]
    open_tasks: tuple[HumanTask, ...]
    compiled_dt: datetime
    compiled_by: User
    process_names: Mapping[str, str] = field(default_factory=dict)

    def section(self, key: str) -> SectionFile | None:
        """The section ``key`` if it is shown."""
        return next((section for section in self.sections if section.rule.key == key), None)

    @property
    def items(self) -> list[Item]:
        """Every item in print order."""
        return [item for section in self.sections for item in section.items]

    def entries(self, kind: str) -> list[Entry]:
        """Every entry of one kind (``document``, ``attachment``, ``task``, ``start``) in print order."""
        return [item.entry for item in self.items if item.entry.kind == kind]


# -- access -------------------------------------------------------------------------------------------------

def check_export(session: Session, scope: Scope, case: Case) -> None:
    """Raise unless ``scope`` may read and export the whole file of ``case``.

    The file holds names, ID numbers, addresses and medical details in full, so it is for those who may see
    them in full: the case's own units and those above them (``Scope.owns_case``), not a unit that keeps read
    access after a transfer.

    :raise NotFound: the case is outside the caller's reach (the attempt is logged, see ``engine.access.refuse``)
    :raise AccessDenied: the caller sees the case but not its sensitive data
    """
    if not can_view_case(session, scope, case):
        raise refuse(session, scope.user_id, 'case', case.id, case.org_path, MSG_NOT_FOUND)
    if not scope.owns_case(case):
        raise AccessDenied(MSG_MAY_NOT_EXPORT)


# -- gathering ----------------------------------------------------------------------------------------------

def build_case_file(session: Session, case: Case, *, actor: User, settings: AttachmentSettings) -> CaseFile:
    """Gather everything ``case`` holds into its layout's sections; reads only.

    The caller has checked access (:func:`check_export`).

    :param actor: the user the file is compiled for (named on the back cover)
    :param settings: where folder-stored attachments live (small images are read to be embedded)
    """
    layout = layout_for(case)
    instances = _instances(session, case)
    names = {instance.definition.key: instance.definition.name for instance in instances}
    events = list(session.scalars(sa.select(AuditEvent).where(AuditEvent.case_id == case.id)
                                  .order_by(AuditEvent.id)))
    tasks = list(session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case.id)
                                 .options(selectinload(HumanTask.org_unit), selectinload(HumanTask.completed_by))
                                 .order_by(HumanTask.id)))
    entries: list[Entry] = [*_document_entries(session, case), *_task_entries(session, instances, tasks, events),
                            *_start_entries(session, instances, events, names),
                            *_attachment_entries(session, case, tasks, settings)]
    return CaseFile(case, layout, _sections(layout, entries, tasks), tuple(events),
                    tuple(task for task in tasks if task.status == 'open'), now(), actor, names)


def _instances(session: Session, case: Case) -> list[ProcessInstance]:
    return list(session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)
                                .options(defer(ProcessInstance.state), selectinload(ProcessInstance.definition))
                                .order_by(ProcessInstance.id)))


def _document_entries(session: Session, case: Case) -> list[DocumentEntry]:
    documents = session.scalars(sa.select(Document).where(Document.case_id == case.id)
                                .order_by(Document.created_dt, Document.id))
    return [DocumentEntry(document) for document in documents]


def _task_entries(session: Session, instances: Sequence[ProcessInstance], tasks: Sequence[HumanTask],
                  events: Iterable[AuditEvent]) -> list[TaskEntry]:
    """The completed tasks with the data entered, as the ``task.completed`` event recorded it."""
    entered = {event.human_task_id: event.after or {} for event in events
               if event.kind == 'task.completed' and event.human_task_id}
    forms = _task_forms(session, instances)
    return [TaskEntry(task, entered.get(task.id, {}), forms.get((task.instance_id, task.bpmn_id), {}))
            for task in tasks if task.status == 'completed']


def _task_forms(session: Session, instances: Sequence[ProcessInstance]) -> dict[tuple[int, str], dict[str, FieldSpec]]:
    """Each instance's task forms, by (instance id, bpmn id): the labels and options of the data."""
    forms: dict[tuple[int, str], dict[str, FieldSpec]] = {}
    for instance in instances:
        bundle = process_bundle(session, instance.definition)
        for bpmn_id, info in bundle.user_tasks.items():
            forms[(instance.id, bpmn_id)] = {spec.id: spec for spec in info.form.fields} if info.form else {}
    return forms


def _start_entries(session: Session, instances: Sequence[ProcessInstance], events: Iterable[AuditEvent],
                   names: Mapping[str, str]) -> list[StartEntry]:
    """The case's start data (``case.started``) and each request's (``request.started``)."""
    start_fields: dict[str, dict[str, FieldSpec]] = {}
    for instance in instances:
        form = process_bundle(session, instance.definition).start_form
        start_fields.setdefault(instance.definition.key, {spec.id: spec for spec in form.fields} if form else {})
    entries = []
    for event in events:
        if event.kind not in ('case.started', 'request.started') or not event.after:
            continue
        key = str(event.after.get('kind') or '')
        entries.append(StartEntry(key, names.get(key, key), event.kind == 'request.started', event.actor_name,
                                  event.occurred_dt, dict(event.after.get('data') or {}), start_fields.get(key, {}),
                                  event.id))
    return entries


def _attachment_entries(session: Session, case: Case, tasks: Sequence[HumanTask],
                        settings: AttachmentSettings) -> list[AttachmentEntry]:
    titles = {task.id: task.title for task in tasks}
    return [_attachment_entry(attachment, titles.get(attachment.task_id or 0), settings)
            for attachment in list_attachments(session, case)]


def _attachment_entry(attachment: Attachment, task_title: str | None,
                      settings: AttachmentSettings) -> AttachmentEntry:
    """The attachment, a small image with its bytes inline; bytes that fail their checksum are not shown."""
    if attachment.content_type not in EMBEDDABLE_TYPES or attachment.size > EMBED_MAX_BYTES:
        return AttachmentEntry(attachment, task_title=task_title)
    try:
        data = read_content(attachment, settings)
    except AttachmentUnreadable:
        return AttachmentEntry(attachment, unreadable=True, task_title=task_title)
    uri = f'data:{attachment.content_type};base64,{base64.b64encode(data).decode("ascii")}'
    return AttachmentEntry(attachment, image_uri=uri, task_title=task_title)


# -- ordering -------------------------------------------------------------------------------------------------

class _Router:
    """Finds the section of each entry from a layout's rules."""

    def __init__(self, layout: Layout, tasks: Iterable[HumanTask]) -> None:
        self.layout = layout
        self.documents = {kind: rule.key for rule in layout.sections for kind in rule.documents}
        self.tasks = {key: rule.key for rule in layout.sections for key in rule.tasks}
        self.starts = {key: rule.key for rule in layout.sections for key in rule.starts}
        self.attachment_tasks = {key: rule.key for rule in layout.sections for key in rule.attachment_tasks}
        self.other = next((rule.key for rule in layout.sections if rule.is_other), SUMMARY)
        self.evidence = next((rule.key for rule in layout.sections if rule.is_evidence), self.other)
        self.task_keys = {task.id: (f'{task.process_key}:{task.bpmn_id}', task.process_key) for task in tasks}

    def _by_task(self, rules: Mapping[str, str], task_id: int | None) -> str | None:
        specific, process = self.task_keys.get(task_id or 0, ('', ''))
        return rules.get(specific) or rules.get(process)

    def section_of(self, entry: Entry) -> str:
        """The key of the section ``entry`` belongs in."""
        if isinstance(entry, DocumentEntry):
            return self.documents.get(entry.document.kind, self.other)
        if isinstance(entry, TaskEntry):
            return self._by_task(self.tasks, entry.task.id) or self.other
        if isinstance(entry, StartEntry):
            return self.starts.get(entry.process_key, self.other)
        return self._by_task(self.attachment_tasks, entry.attachment.task_id) or self.evidence


#: at the same moment: the start record, then the task, the document it produced, the files
_RANK = {'start': 0, 'task': 1, 'document': 2, 'attachment': 3}


def _order(entry: Entry) -> tuple[datetime, int, int]:
    """Time order, ties broken by :data:`_RANK` and then by id."""
    return entry.when, _RANK[entry.kind], entry.ident


def _sections(layout: Layout, entries: Iterable[Entry], tasks: Iterable[HumanTask]) -> tuple[SectionFile, ...]:
    """The layout's sections with their entries, numbered; empty record sections are left out."""
    router = _Router(layout, tasks)
    grouped: dict[str, list[Entry]] = {rule.key: [] for rule in layout.sections}
    for entry in entries:
        grouped[router.section_of(entry)].append(entry)
    sections: list[SectionFile] = []
    number = 0
    for rule in layout.sections:
        held = sorted(grouped[rule.key], key=_order)
        if not held and rule.generated is None:
            continue
        items = tuple(Item(number + offset, entry) for offset, entry in enumerate(held, 1))
        number += len(items)
        sections.append(SectionFile(rule, len(sections) + 1, items))
    return tuple(sections)


# -- the audit -----------------------------------------------------------------------------------------------

def export_filename(case: Case) -> str:
    """``卷宗-<case number>.html``."""
    return f'卷宗-{case.number}.html'


def _contents(case_file: CaseFile) -> dict[str, Any]:
    """What the file held: its sections and the ids of its documents and attachments."""
    return {'sections': [section.rule.key for section in case_file.sections],
            'documents': [item.entry.document.id for item in case_file.items if isinstance(item.entry, DocumentEntry)],
            'attachments': [item.entry.attachment.id for item in case_file.items
                            if isinstance(item.entry, AttachmentEntry)]}


def record_export(session: Session, case_file: CaseFile, content: bytes, *, channel: str) -> None:
    """Audit an export (``case.file_exported``): who took the file, what it held, and the SHA-256 of the bytes
    handed over, so a printed copy can be matched to its export.

    :param content: the exported document as sent
    :param channel: ``web`` (the 导出 button) or ``api``
    """
    case = case_file.case
    audit.record(session, 'case.file_exported', actor=case_file.compiled_by, case_id=case.id, org_path=case.org_path,
                 after={'filename': export_filename(case), 'size': len(content),
                        'sha256': hashlib.sha256(content).hexdigest(), 'channel': channel, **_contents(case_file)})


def record_preview(session: Session, case_file: CaseFile) -> None:
    """Audit an on-screen preview (``case.file_previewed``): it shows the sensitive data in full too."""
    case = case_file.case
    audit.record(session, 'case.file_previewed', actor=case_file.compiled_by, case_id=case.id,
                 org_path=case.org_path, after=_contents(case_file))
