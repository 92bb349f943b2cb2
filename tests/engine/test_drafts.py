"""Drafts of definitions (engine.drafts) and the designer's version overview (engine.versions).

Every test drives the real engine on the real test database: drafts are stored, saved over each other,
validated by engine.definitions and deployed as versions, and the overview counts real instances.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from engine import definitions, drafts, runtime, versions
from engine.access import load_scope
from engine.errors import Conflict, DeploymentRejected, NotFound, ValidationFailed, WarningsNotAccepted
from engine.models.audit import AuditEvent
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import DefinitionDraft
from engine.models.instances import ProcessInstance
from engine.models.users import User
from tests.fixtures.directory import Org

ROOT = Path(__file__).resolve().parents[2]
MIWG = ROOT / 'tests' / 'fixtures' / 'miwg'
TRIAGE = ROOT / 'bpmn' / 'disputes' / 'triage.dmn'
DRAFT_TABLES = ('definition_drafts', 'accepted_warnings')


def process_xml(key: str = 'draft_demo', *, name: str = '草稿演示', group: str = 'township_staff',
                deadline: bool = True, task_name: str = '核实情况') -> str:
    """A small executable process: start → one user task (form, candidate group, deadline) → end, drawn.

    The flow to the end is long enough for a designer to drop another task onto it in the modeler.
    """
    deadline_xml = ('<camunda:properties><camunda:property name="deadline" value="5 working_days"/>'
                    '</camunda:properties>' if deadline else '')
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
  xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
  id="{key}_definitions" targetNamespace="http://fengqiao.example/test">
  <bpmn:process id="{key}" name="{name}" isExecutable="true">
    <bpmn:startEvent id="start" name="开始"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="check" name="{task_name}" camunda:candidateGroups="{group}">
      <bpmn:extensionElements>{deadline_xml}
        <camunda:formData><camunda:formField id="note" label="意见" type="string"/></camunda:formData>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end" name="结束"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="check"/>
    <bpmn:sequenceFlow id="f2" sourceRef="check" targetRef="end"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="d"><bpmndi:BPMNPlane id="p" bpmnElement="{key}">
    <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="100" y="100" width="36" height="36"/>
    </bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="check_di" bpmnElement="check"><dc:Bounds x="200" y="78" width="100" height="80"/>
    </bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="560" y="100" width="36" height="36"/>
    </bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1"><di:waypoint x="136" y="118"/><di:waypoint x="200" y="118"/>
    </bpmndi:BPMNEdge>
    <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2"><di:waypoint x="300" y="118"/><di:waypoint x="560" y="118"/>
    </bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>
'''


@pytest.fixture
def designer(people: dict[str, User]) -> User:
    return people['designer']


def _draft(session: Session, designer: User, xml: str | None = None) -> DefinitionDraft:
    draft = drafts.create_draft(session, xml or process_xml(), actor=designer)
    session.commit()
    return draft


def _audit_kinds(session: Session) -> list[str]:
    # Only this part's events: the people fixture audits the users it creates.
    return [kind for kind in session.scalars(sa.select(AuditEvent.kind).order_by(AuditEvent.id))
            if kind.startswith(('draft.', 'definition.'))]


# -- reading documents ------------------------------------------------------------------------------------

def test_read_header_names_the_executable_process_of_a_bpmn_file() -> None:
    header = drafts.read_header(process_xml('leave_check', name='外出核查'))
    assert (header.key, header.kind, header.name) == ('leave_check', 'bpmn', '外出核查')


def test_read_header_of_a_dmn_file_uses_its_definitions_id_as_deployment_does() -> None:
    header = drafts.read_header(TRIAGE.read_bytes())
    assert (header.key, header.kind, header.name) == ('dispute_triage_definitions', 'dmn', '三色预警研判')


@pytest.mark.parametrize(('content', 'expected'), [
    (b'', '文件为空'),
    (b'<bpmn:definitions', '不是有效的 XML 文件'),
    (b'<html><body>hello</body></html>', '不是 BPMN 或 DMN 文件'),
    (b'<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="x"/>', '没有流程'),
])
def test_read_header_refuses_what_is_no_bpmn_or_dmn_document(content: bytes, expected: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        drafts.read_header(content)
    assert expected in caught.value.fields['xml'][0]


def test_read_header_resolves_no_external_entities(tmp_path: Path) -> None:
    secret = tmp_path / 'secret.txt'
    secret.write_text('top-secret')
    xml = (f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">'
           '<bpmn:process id="p" name="&x;" isExecutable="true"/></bpmn:definitions>')
    try:
        name = drafts.read_header(xml).name
    except ValidationFailed:  # an unresolved entity may also make the document unreadable: refused is fine
        name = ''
    assert 'top-secret' not in name


# -- creating drafts -------------------------------------------------------------------------------------

def test_blank_bpmn_draft_opens_as_a_drawn_process_with_the_given_key(session: Session, designer: User) -> None:
    draft = drafts.create_blank_draft(session, 'bpmn', 'new_process', '新流程 <试行>', actor=designer)
    session.commit()
    assert (draft.key, draft.kind, draft.name, draft.revision) == ('new_process', 'bpmn', '新流程 <试行>', 1)
    assert 'bpmndi:BPMNShape' in draft.xml and '新流程 &lt;试行&gt;' in draft.xml
    assert drafts.read_header(draft.xml).key == 'new_process'
    assert _audit_kinds(session) == ['draft.created']


def test_blank_dmn_draft_is_a_decision_table(session: Session, designer: User) -> None:
    draft = drafts.create_blank_draft(session, 'dmn', 'risk_rules', '风险规则', actor=designer)
    assert (draft.key, draft.kind) == ('risk_rules', 'dmn')
    assert '<decisionTable' in draft.xml


def test_blank_draft_reports_every_bad_field_and_stores_nothing(session: Session, designer: User) -> None:
    with pytest.raises(ValidationFailed) as caught:
        drafts.create_blank_draft(session, 'bpel', '1 bad key', ' ', actor=designer)
    assert set(caught.value.fields) == {'kind', 'key', 'name'}
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(DefinitionDraft)) == 0


def test_draft_from_a_version_copies_its_source(session: Session, designer: User) -> None:
    definition, _ = definitions.deploy(session, process_xml(), actor=designer, accept_warnings=True)
    draft = drafts.draft_from_definition(session, definition, actor=designer)
    session.commit()
    assert draft.xml == definition.source and draft.based_on_id == definition.id


def test_import_takes_a_miwg_file_whatever_it_contains(session: Session, designer: User) -> None:
    path = MIWG / 'C.1.0.bpmn'
    draft = drafts.import_draft(session, path.read_bytes(), path.name, actor=designer)
    session.commit()
    assert draft.kind == 'bpmn' and draft.filename == 'C.1.0.bpmn'
    assert draft.xml == path.read_bytes().decode('utf-8-sig')


def test_import_re_encodes_a_file_declared_in_another_encoding(session: Session, designer: User) -> None:
    xml = process_xml(name='Café').replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    draft = drafts.import_draft(session, xml.encode('iso-8859-1', errors='replace'), 'cafe.bpmn', actor=designer)
    assert draft.name == 'Café' and 'encoding="UTF-8"' in draft.xml


@pytest.mark.parametrize(('filename', 'content', 'expected'), [
    ('notes.txt', process_xml().encode(), '只能上传'),
    ('triage.bpmn', TRIAGE.read_bytes(), '扩展名与内容不符'),
    ('broken.bpmn', b'<not-closed', '不是有效的 XML 文件'),
])
def test_import_refuses_wrong_files_with_a_message_on_the_file_field(session: Session, designer: User,
                                                                      filename: str, content: bytes,
                                                                      expected: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        drafts.import_draft(session, content, filename, actor=designer)
    assert expected in caught.value.fields['file'][0]


def test_import_refuses_a_file_over_the_size_limit(session: Session, designer: User) -> None:
    big = process_xml().replace('</bpmn:definitions>', '<!--' + 'x' * drafts.MAX_XML_BYTES + '--></bpmn:definitions>')
    with pytest.raises(ValidationFailed) as caught:
        drafts.import_draft(session, big.encode(), 'big.bpmn', actor=designer)
    assert '过大' in caught.value.fields['file'][0]


# -- saving with optimistic locking -------------------------------------------------------------------

def test_save_bumps_the_revision_and_follows_the_key_and_name_of_the_xml(session: Session, designer: User,
                                                                         people: dict[str, User]) -> None:
    draft = _draft(session, designer)
    drafts.save_draft(session, draft, process_xml('renamed', name='改名后'), revision=1, actor=people['officer'])
    session.commit()
    assert (draft.revision, draft.key, draft.name, draft.updated_by_id) == (2, 'renamed', '改名后',
                                                                             people['officer'].id)


def test_save_from_a_stale_revision_is_a_conflict_naming_who_saved(session: Session, designer: User,
                                                                   people: dict[str, User]) -> None:
    draft = _draft(session, designer)
    drafts.save_draft(session, draft, process_xml(task_name='第一人'), revision=1, actor=people['officer'])
    session.commit()
    with pytest.raises(Conflict) as caught:
        drafts.save_draft(session, draft, process_xml(task_name='第二人'), revision=1, actor=designer)
    session.rollback()
    assert people['officer'].display_name in caught.value.message and '第 2 次保存' in caught.value.message
    session.refresh(draft)
    assert '第一人' in draft.xml and draft.revision == 2


def test_two_sessions_saving_at_once_cannot_both_win(session_factory: sessionmaker[Session],
                                                     session: Session, designer: User) -> None:
    draft_id = _draft(session, designer).id
    with session_factory() as first, session_factory() as second:
        mine, theirs = first.get(DefinitionDraft, draft_id), second.get(DefinitionDraft, draft_id)
        assert mine is not None and theirs is not None
        # Both read revision 1 and pass the check; the second UPDATE finds the row already at revision 2.
        drafts.save_draft(first, mine, process_xml(task_name='甲'), revision=1, actor=first.merge(designer))
        first.commit()
        with pytest.raises(Conflict):
            drafts.save_draft(second, theirs, process_xml(task_name='乙'), revision=1,
                              actor=second.merge(designer))
        second.rollback()
    session.expire_all()
    stored = session.get(DefinitionDraft, draft_id)
    assert stored is not None and '甲' in stored.xml and stored.revision == 2


def test_save_refuses_a_different_kind_and_junk(session: Session, designer: User) -> None:
    draft = _draft(session, designer)
    with pytest.raises(ValidationFailed) as caught:
        drafts.save_draft(session, draft, TRIAGE.read_text(), revision=1, actor=designer)
    assert 'BPMN' in caught.value.fields['xml'][0]
    with pytest.raises(ValidationFailed):
        drafts.save_draft(session, draft, '<oops', revision=1, actor=designer)
    session.rollback()
    session.refresh(draft)
    assert draft.revision == 1 and draft.xml == process_xml()


def test_delete_removes_the_draft_and_is_audited(session: Session, designer: User) -> None:
    draft = _draft(session, designer)
    drafts.delete_draft(session, draft, actor=designer)
    session.commit()
    with pytest.raises(NotFound):
        drafts.get_draft(session, draft.id)
    assert _audit_kinds(session) == ['draft.created', 'draft.deleted']


# -- validating and deploying -------------------------------------------------------------------------

def test_validate_reports_errors_and_stores_nothing(session: Session, designer: User) -> None:
    draft = _draft(session, designer, process_xml(deadline=False))
    report = drafts.validate_draft(session, draft)
    assert [(f.rule, f.element_id) for f in report.errors] == [('user-task-deadline', 'check')]
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) == 0


def test_deploy_refused_with_errors_keeps_the_draft(session: Session, designer: User) -> None:
    draft = _draft(session, designer, process_xml(deadline=False))
    with pytest.raises(DeploymentRejected) as caught:
        drafts.deploy_draft(session, draft, revision=1, actor=designer, accept_warnings=True)
    session.rollback()
    assert caught.value.report is not None and caught.value.report.errors
    assert session.get(DefinitionDraft, draft.id) is not None
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) == 0


def test_deploy_with_warnings_needs_them_accepted(session: Session, designer: User) -> None:
    draft = _draft(session, designer, process_xml(group='no_such_group'))
    with pytest.raises(WarningsNotAccepted) as caught:
        drafts.deploy_draft(session, draft, revision=1, actor=designer)
    session.rollback()
    assert [f.rule for f in caught.value.report.warnings] == ['unknown-group']
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) == 0


def test_deploy_with_accepted_warnings_keeps_them_with_the_version(session: Session, designer: User) -> None:
    draft = _draft(session, designer, process_xml(group='no_such_group'))
    result = drafts.deploy_draft(session, draft, revision=1, actor=designer, accept_warnings=True)
    session.commit()
    assert result.created and result.definition.version == 1 and result.accepted_warnings == 1
    [warning] = drafts.accepted_warnings(session, [result.definition.id])[result.definition.id]
    assert (warning.rule, warning.element_id, warning.accepted_by_id) == ('unknown-group', 'check', designer.id)
    assert session.get(DefinitionDraft, draft.id) is None
    assert _audit_kinds(session)[-2:] == ['definition.deployed', 'draft.deployed']


def test_deploy_makes_the_next_version_and_an_unchanged_source_makes_none(session: Session,
                                                                          designer: User) -> None:
    first = drafts.deploy_draft(session, _draft(session, designer), revision=1, actor=designer)
    session.commit()
    second = drafts.deploy_draft(session, _draft(session, designer, process_xml(task_name='复核')), revision=1,
                                 actor=designer)
    again = drafts.deploy_draft(session, _draft(session, designer, process_xml(task_name='复核')), revision=1,
                                actor=designer)
    session.commit()
    assert [first.definition.version, second.definition.version] == [1, 2]
    assert not again.created and again.definition.id == second.definition.id
    assert session.scalar(sa.select(sa.func.count()).select_from(DefinitionDraft)) == 0


def test_deploy_from_a_stale_revision_is_a_conflict(session: Session, designer: User) -> None:
    draft = _draft(session, designer)
    drafts.save_draft(session, draft, process_xml(task_name='改过'), revision=1, actor=designer)
    session.commit()
    with pytest.raises(Conflict):
        drafts.deploy_draft(session, draft, revision=1, actor=designer)


# -- the version overview ---------------------------------------------------------------------------------

@pytest.fixture
def two_versions(session: Session, org: Org, people: dict[str, User], clock: object) -> list[ProcessDefinition]:
    """draft_demo v1 with two cases at 核实情况 (township, other township), v2 with one, plus a completed one."""
    designer, staff, outsider = people['designer'], people['staff'], people['outsider']
    v1, _ = definitions.deploy(session, process_xml(), actor=designer)
    runtime.start_case(session, 'draft_demo', {}, actor=staff, org_unit=org.township)
    runtime.start_case(session, 'draft_demo', {}, actor=outsider, org_unit=org.other_township)
    _, [done] = runtime.start_case(session, 'draft_demo', {}, actor=staff, org_unit=org.township)
    runtime.complete_task(session, done.id, {'note': '已核实'}, actor=staff, scope=load_scope(session, staff))
    v2, _ = definitions.deploy(session, process_xml(task_name='核实情况（新）'), actor=designer)
    runtime.start_case(session, 'draft_demo', {}, actor=staff, org_unit=org.township)
    session.commit()
    return [v1, v2]


def test_overview_counts_unfinished_instances_per_version_and_step(session: Session, org: Org,
                                                                   two_versions: list[ProcessDefinition]) -> None:
    [summary] = versions.summarise(session, (org.province.path,))
    assert summary.key == 'draft_demo' and summary.newest.version == 2 and summary.unfinished == 3
    new, old = summary.versions
    assert (old.definition.version, old.unfinished, old.statuses) == (1, 2, {'running': 2})
    assert [(s.bpmn_id, s.title, s.instances) for s in old.steps] == [('check', '核实情况', 2)]
    assert [(s.bpmn_id, s.title, s.instances) for s in new.steps] == [('check', '核实情况（新）', 1)]
    assert new.definition.deployed_by is not None and new.definition.deployed_by.username == 'designer'


def test_overview_counts_only_the_designers_subtree(session: Session, org: Org,
                                                    two_versions: list[ProcessDefinition]) -> None:
    summary = versions.summarise_key(session, 'draft_demo', (org.other_county.path,))
    assert [v.unfinished for v in summary.versions] == [0, 1]
    assert versions.summarise_key(session, 'draft_demo', ()).unfinished == 0


def test_overview_lists_decision_tables_and_drafts_per_key(session: Session, designer: User) -> None:
    definitions.deploy(session, TRIAGE.read_bytes(), actor=designer, accept_warnings=True)
    drafts.create_draft(session, TRIAGE.read_text(), actor=designer)
    session.commit()
    [summary] = versions.summarise(session, ())
    assert (summary.kind, summary.drafts, summary.versions[0].statuses) == ('dmn', 1, {})


def test_overview_runs_a_fixed_number_of_queries_however_many_versions(session: Session, org: Org,
                                                                       two_versions: list[ProcessDefinition],
                                                                       designer: User) -> None:
    def queries() -> int:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        engine = session.get_bind()
        event.listen(engine, 'before_cursor_execute', count)
        try:
            session.expunge_all()
            versions.summarise(session, (org.province.path,))
        finally:
            event.remove(engine, 'before_cursor_execute', count)
        return len(statements)

    before = queries()
    for n in range(3):
        definitions.deploy(session, process_xml(task_name=f'第 {n} 次修改'), actor=designer)
    definitions.deploy(session, process_xml('other_process'), actor=designer)
    session.commit()
    assert queries() == before <= 5


def test_unknown_key_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        versions.summarise_key(session, 'nothing_here', ())


def test_instances_stay_on_their_version_after_a_deploy(session: Session, org: Org,
                                                        two_versions: list[ProcessDefinition]) -> None:
    on_version = dict(session.execute(
        sa.select(ProcessDefinition.version, sa.func.count())
        .join(ProcessInstance, ProcessInstance.definition_id == ProcessDefinition.id)
        .group_by(ProcessDefinition.version)).tuples().all())
    assert on_version == {1: 3, 2: 1}


# -- schema -------------------------------------------------------------------------------------------------

def test_migration_creates_the_draft_tables_as_the_models_declare(session: Session) -> None:
    """The Alembic migration and the models agree on the two tables of this part."""
    import engine.models.all  # noqa: F401  (the complete metadata)
    from engine.db import Base

    context = MigrationContext.configure(session.connection(), opts={'compare_type': True})
    diffs = [diff for diff in compare_metadata(context, Base.metadata) if _concerns(diff, DRAFT_TABLES)]
    assert diffs == []


def _concerns(diff: Any, tables: tuple[str, ...]) -> bool:
    """Whether an autogenerate diff (``('add_table', Table)``, ``[('modify_type', None, 'table', ...)]``...)
    is about one of ``tables``."""
    items = diff if isinstance(diff, list) else [diff]
    for item in items:
        for part in item:
            names = {part if isinstance(part, str) else None, getattr(part, 'name', None),
                     getattr(getattr(part, 'table', None), 'name', None)}
            if names & set(tables):
                return True
    return False
