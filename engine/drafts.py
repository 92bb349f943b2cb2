"""Drafts of definitions edited in the browser: create, save with optimistic locking, validate, deploy.

A draft is only XML and a few facts read from it (key, kind, name); nothing runs from it. Deploying goes
through :func:`engine.definitions.deploy`, so a draft becomes a version exactly as a file deployed from
the command line or the API would, with the same validation report. A deployed draft is removed: the
version is now the source of truth, and a new draft is one click away from it.

Drafts are shared by every designer (definitions are not tied to an org unit). Two designers editing the
same draft cannot overwrite each other: every save names the revision it started from, and a save from a
stale revision is refused with :class:`engine.errors.Conflict`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, definitions
from engine.clock import now
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.i18n import N_, _
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import DRAFT_KINDS, AcceptedWarning, DefinitionDraft
from engine.models.users import User
from engine.specs import safe_xml_parser, utf8_text

if TYPE_CHECKING:
    from engine.definitions import ValidationReport

#: the largest draft accepted, in bytes of UTF-8 (the shipped mediation diagram is about 150 KB)
MAX_XML_BYTES = 5 * 1024 * 1024
#: file name endings accepted on upload, and the kind each one promises
UPLOAD_SUFFIXES = {'.bpmn': 'bpmn', '.bpmn2': 'bpmn', '.dmn': 'dmn', '.xml': None}
BPMN_NS = 'http://www.omg.org/spec/BPMN/20100524/MODEL'
#: a key the blank templates accept: an XML id that reads well in URLs and API calls
KEY_PATTERN = re.compile(r'^[A-Za-z_][A-Za-z0-9_.-]{0,127}$')
NAME_MAX = 200

MSG_NOT_FOUND = N_('草稿不存在。')
MSG_INVALID = N_('草稿有误，请检查标出的内容。')
MSG_NOT_XML = N_('不是有效的 XML 文件：{error}')
MSG_NOT_DEFINITIONS = N_('不是 BPMN 或 DMN 文件：根元素应为 definitions。')
MSG_NO_PROCESS = N_('文件中没有流程（process）或决策（decision）。')
MSG_TOO_LARGE = N_('文件过大（上限 5 MB）。')
MSG_EMPTY = N_('文件为空。')
MSG_SUFFIX = N_('只能上传 .bpmn、.dmn 或 .xml 文件。')
MSG_SUFFIX_KIND = N_('文件扩展名与内容不符：扩展名为 {suffix}，内容是 {kind}。')
MSG_KIND_CHANGED = N_('草稿是 {expected}，提交的内容是 {actual}，不能保存。')
MSG_KEY = N_('流程标识须以字母或下划线开头，只含字母、数字、下划线、点和连字符，最多 128 个字符。')
MSG_NAME = N_('请填写名称（最多 200 个字）。')
MSG_KIND = N_('请选择 BPMN 流程或 DMN 决策表。')
MSG_STALE = N_('草稿已被{name}在您打开之后保存（现为第 {revision} 次保存），您的修改未保存。'
               '请先导出您的版本，刷新页面后再合并修改。')
MSG_STALE_UNKNOWN = N_('草稿已被他人同时保存，您的修改未保存。请先导出您的版本，刷新页面后再合并修改。')


@dataclass(frozen=True)
class Header:
    """What a BPMN or DMN document declares about itself: the key it deploys under, its kind and name."""

    key: str
    kind: str
    name: str


# -- reading a document ---------------------------------------------------------------------------------

def _parse(content: bytes) -> etree._Element:
    if not content.strip():
        raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_EMPTY)]})
    if len(content) > MAX_XML_BYTES:
        raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_TOO_LARGE)]})
    try:
        return etree.fromstring(content, safe_xml_parser())
    except etree.XMLSyntaxError as error:
        raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_NOT_XML).format(error=error.msg)]}) from None


def _kind_of(root: etree._Element) -> str:
    qname = etree.QName(root)
    if qname.localname == 'definitions' and qname.namespace == BPMN_NS:
        return 'bpmn'
    if qname.localname == 'definitions' and 'DMN' in (qname.namespace or '').upper():
        return 'dmn'
    raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_NOT_DEFINITIONS)]})


def _bpmn_header(root: etree._Element) -> Header:
    processes = [p for p in root.iterchildren(f'{{{BPMN_NS}}}process') if p.get('id')]
    if not processes:
        raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_NO_PROCESS)]})
    called = {a.get('calledElement') for a in root.iter(f'{{{BPMN_NS}}}callActivity')}
    # The key deployment uses (engine.specs): the executable process nothing calls; else the first one.
    main = next((p for p in processes if p.get('isExecutable') == 'true' and p.get('id') not in called),
                processes[0])
    key = str(main.get('id'))
    participant = next((p.get('name') for p in root.iter(f'{{{BPMN_NS}}}participant')
                        if p.get('processRef') == key and p.get('name')), None)
    return Header(key, 'bpmn', _name(main.get('name') or participant, key))


def _dmn_header(root: etree._Element) -> Header:
    namespace = etree.QName(root).namespace
    decision = next(root.iterchildren(f'{{{namespace}}}decision'), None)
    key = root.get('id') or (decision.get('id') if decision is not None else None)
    if decision is None or not key:
        raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_NO_PROCESS)]})
    return Header(key, 'dmn', _name(decision.get('name') or root.get('name'), key))


def _name(text: str | None, key: str) -> str:
    return ((text or '').strip() or key)[:NAME_MAX]


def read_header(xml: str | bytes) -> Header:
    """Read the key, kind and name of a BPMN or DMN document without validating it further.

    :raise ValidationFailed: not XML, not a BPMN/DMN ``definitions`` document, or nothing to deploy in it
    """
    root = _parse(xml.encode('utf-8') if isinstance(xml, str) else xml)
    header = _bpmn_header(root) if _kind_of(root) == 'bpmn' else _dmn_header(root)
    return Header(header.key[:128], header.kind, header.name)


def decode_upload(content: bytes) -> str:
    """An uploaded file as text: UTF-8 (with or without a BOM) as is, other declared encodings re-encoded."""
    root = _parse(content)
    encoding = (root.getroottree().docinfo.encoding or 'UTF-8').upper()
    if encoding in ('UTF-8', 'UTF8'):
        try:
            return content.decode('utf-8-sig')
        except UnicodeDecodeError as error:
            raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_NOT_XML).format(error=error.reason)]}) from None
    return utf8_text(root)


# -- blank documents --------------------------------------------------------------------------------------

def _xml_attr(text: str) -> str:
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace('"', '&quot;'))


def blank_bpmn(key: str, name: str) -> str:
    """A new executable process with one start event, drawn, ready for the modeler."""
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  id="{key}_definitions" targetNamespace="http://fengqiao.example/bpmn" exporter="Fengqiao" exporterVersion="1.0">
  <bpmn:process id="{key}" name="{_xml_attr(name)}" isExecutable="true">
    <bpmn:startEvent id="{key}_start" name="开始" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="{key}_diagram">
    <bpmndi:BPMNPlane id="{key}_plane" bpmnElement="{key}">
      <bpmndi:BPMNShape id="{key}_start_di" bpmnElement="{key}_start">
        <dc:Bounds x="180" y="160" width="36" height="36" />
      </bpmndi:BPMNShape>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
'''


def blank_dmn(key: str, name: str) -> str:
    """A new decision with a one-input, one-output table (first hit), drawn in the DRD."""
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"
  xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/" xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/"
  id="{key}" name="{_xml_attr(name)}" namespace="http://fengqiao.example/dmn" exporter="Fengqiao" exporterVersion="1.0">
  <decision id="{key}_decision" name="{_xml_attr(name)}">
    <decisionTable id="{key}_table" hitPolicy="FIRST">
      <input id="{key}_input" label="输入">
        <inputExpression id="{key}_input_expression" typeRef="string">
          <text>value</text>
        </inputExpression>
      </input>
      <output id="{key}_output" name="result" label="结果" typeRef="string" />
    </decisionTable>
  </decision>
  <dmndi:DMNDI>
    <dmndi:DMNDiagram id="{key}_drd">
      <dmndi:DMNShape id="{key}_decision_di" dmnElementRef="{key}_decision">
        <dc:Bounds height="80" width="180" x="160" y="100" />
      </dmndi:DMNShape>
    </dmndi:DMNDiagram>
  </dmndi:DMNDI>
</definitions>
'''


# -- drafts -------------------------------------------------------------------------------------------------

def get_draft(session: Session, draft_id: int) -> DefinitionDraft:
    """One draft, or NotFound."""
    draft = session.get(DefinitionDraft, draft_id)
    if draft is None:
        raise NotFound(_(MSG_NOT_FOUND))
    return draft


def list_drafts(session: Session) -> list[DefinitionDraft]:
    """Every draft, the most recently saved first, with who saved it and the version it came from."""
    return list(session.scalars(
        sa.select(DefinitionDraft)
        .options(joinedload(DefinitionDraft.updated_by), joinedload(DefinitionDraft.based_on))
        .order_by(DefinitionDraft.updated_dt.desc(), DefinitionDraft.id.desc())))


def create_draft(session: Session, xml: str, *, actor: User, based_on: ProcessDefinition | None = None,
                 filename: str | None = None) -> DefinitionDraft:
    """Store ``xml`` as a new draft (audited as ``draft.created``).

    :param based_on: the version it was copied from
    :param filename: the uploaded file's name
    :raise ValidationFailed: the XML is not a BPMN or DMN document
    """
    header = read_header(xml)
    moment = now()
    draft = DefinitionDraft(key=header.key, kind=header.kind, name=header.name, xml=xml,
                            based_on_id=based_on.id if based_on else None,
                            filename=filename[:255] if filename else None, created_by_id=actor.id,
                            created_dt=moment, updated_by_id=actor.id, updated_dt=moment)
    session.add(draft)
    session.flush()
    audit.record(session, 'draft.created', actor=actor,
                 after={'draft_id': draft.id, 'key': draft.key, 'kind': draft.kind,
                        'based_on': based_on.version if based_on else None, 'filename': draft.filename})
    return draft


def create_blank_draft(session: Session, kind: str, key: str, name: str, *, actor: User) -> DefinitionDraft:
    """A draft from the blank template of ``kind`` ('bpmn' or 'dmn') with the given key and name.

    :raise ValidationFailed: every bad field at once
    """
    key, name = key.strip(), name.strip()
    problems: dict[str, list[str]] = {}
    if kind not in DRAFT_KINDS:
        problems['kind'] = [_(MSG_KIND)]
    if not KEY_PATTERN.match(key):
        problems['key'] = [_(MSG_KEY)]
    if not name or len(name) > NAME_MAX:
        problems['name'] = [_(MSG_NAME)]
    if problems:
        raise ValidationFailed(_(MSG_INVALID), problems)
    xml = blank_bpmn(key, name) if kind == 'bpmn' else blank_dmn(key, name)
    return create_draft(session, xml, actor=actor)


def draft_from_definition(session: Session, definition: ProcessDefinition, *, actor: User) -> DefinitionDraft:
    """A draft holding a deployed version's source, to be changed and deployed as the next version."""
    return create_draft(session, definition.source, actor=actor, based_on=definition)


def import_draft(session: Session, content: bytes, filename: str, *, actor: User) -> DefinitionDraft:
    """A draft from an uploaded ``.bpmn``/``.dmn`` file (Camunda Modeler, the MIWG test suite...).

    The file is only checked to be a BPMN or DMN document: whether it can run is the validation report's
    business, shown before it is deployed.

    :raise ValidationFailed: a wrong file name ending, not XML, not BPMN/DMN, or the ending contradicts the content
    """
    suffix = '.' + filename.rsplit('.', 1)[-1].lower() if '.' in filename else ''
    if suffix not in UPLOAD_SUFFIXES:
        raise ValidationFailed(_(MSG_INVALID), {'file': [_(MSG_SUFFIX)]})
    try:
        xml = decode_upload(content)
        header = read_header(xml)
    except ValidationFailed as error:
        raise ValidationFailed(error.message, {'file': error.fields.get('xml', [])}) from None
    promised = UPLOAD_SUFFIXES[suffix]
    if promised is not None and promised != header.kind:
        raise ValidationFailed(_(MSG_INVALID), {'file': [_(MSG_SUFFIX_KIND).format(
            suffix=suffix, kind=header.kind.upper())]})
    return create_draft(session, xml, actor=actor, filename=filename)


def check_revision(draft: DefinitionDraft, revision: int) -> None:
    """Raise Conflict unless the caller's copy of ``draft`` is the one stored (``revision``)."""
    if draft.revision != revision:
        raise Conflict(_(MSG_STALE).format(name=draft.updated_by.display_name, revision=draft.revision))


def save_draft(session: Session, draft: DefinitionDraft, xml: str, *, revision: int,
               actor: User) -> DefinitionDraft:
    """Replace the draft's XML, if nobody saved it since ``revision``; its key and name follow the XML.

    Saves are not audited one by one (a designer saves every few minutes); creating, deleting and
    deploying a draft are.

    :param revision: the revision the caller's copy was loaded at
    :raise Conflict: someone saved the draft after ``revision`` (nothing changes)
    :raise ValidationFailed: not a BPMN/DMN document, or a different kind from the draft's
    """
    check_revision(draft, revision)
    header = read_header(xml)
    if header.kind != draft.kind:
        raise ValidationFailed(_(MSG_INVALID), {'xml': [_(MSG_KIND_CHANGED).format(
            expected=draft.kind.upper(), actual=header.kind.upper())]})
    draft.xml, draft.key, draft.name = xml, header.key, header.name
    draft.updated_by_id, draft.updated_dt = actor.id, now()
    _flush(session)
    return draft


def _flush(session: Session) -> None:
    # The revision check above and the UPDATE's own ``WHERE revision = ...`` close the window between them.
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(_(MSG_STALE_UNKNOWN)) from None


def delete_draft(session: Session, draft: DefinitionDraft, *, actor: User) -> None:
    """Remove a draft (audited as ``draft.deleted``); deployed versions are untouched."""
    audit.record(session, 'draft.deleted', actor=actor,
                 before={'draft_id': draft.id, 'key': draft.key, 'kind': draft.kind, 'revision': draft.revision})
    session.delete(draft)
    _flush(session)


def _source_name(draft: DefinitionDraft) -> str:
    return draft.filename or f'{draft.key}.{draft.kind}'


def validate_xml(session: Session, xml: str, *, filename: str) -> ValidationReport:
    """The validation report of ``xml`` as deploying it would produce; stores nothing."""
    return definitions.validate(session, xml, filename=filename)


def validate_draft(session: Session, draft: DefinitionDraft) -> ValidationReport:
    """The validation report of the draft as last saved; stores nothing."""
    return validate_xml(session, draft.xml, filename=_source_name(draft))


@dataclass(frozen=True)
class DraftDeployment:
    """What deploying a draft did: the version (new, or the newest one if the source was unchanged)."""

    definition: ProcessDefinition
    created: bool
    accepted_warnings: int


def deploy_draft(session: Session, draft: DefinitionDraft, *, revision: int, actor: User,
                 accept_warnings: bool = False) -> DraftDeployment:
    """Deploy the draft as the next version of its key, then remove the draft.

    Validation runs before anything is stored (:func:`engine.definitions.deploy_with_report`); the
    warnings accepted are kept with the new version (:class:`AcceptedWarning`).

    :param revision: the revision the designer validated; deploying anything else would deploy unseen changes
    :raise Conflict: the draft was saved after ``revision``
    :raise DeploymentRejected: the report has errors (it carries ``.report``)
    :raise WarningsNotAccepted: the report has warnings and ``accept_warnings`` is false (``.report``)
    """
    check_revision(draft, revision)
    result = definitions.deploy_with_report(session, draft.xml, actor=actor, filename=_source_name(draft),
                                            accept_warnings=accept_warnings)
    accepted = result.report.warnings if result.created else []
    audit.record(session, 'draft.deployed', actor=actor,
                 after={'draft_id': draft.id, 'key': result.definition.key, 'version': result.definition.version,
                        'created': result.created, 'accepted_warnings': len(accepted)})
    session.delete(draft)
    _flush(session)
    return DraftDeployment(result.definition, result.created, len(accepted))


def accepted_warnings(session: Session, definition_ids: list[int]) -> dict[int, list[AcceptedWarning]]:
    """The warnings accepted when each of ``definition_ids`` was deployed."""
    if not definition_ids:
        return {}
    found: dict[int, list[AcceptedWarning]] = {}
    rows = session.scalars(sa.select(AcceptedWarning).options(joinedload(AcceptedWarning.accepted_by))
                           .where(AcceptedWarning.definition_id.in_(definition_ids)).order_by(AcceptedWarning.id))
    for row in rows:
        found.setdefault(row.definition_id, []).append(row)
    return found
