"""engine.definitions: validation reports, and deployments that refuse errors and ask for warnings to be accepted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.definitions import deploy, deploy_with_report, validate
from engine.errors import DeploymentRejected, WarningsNotAccepted
from engine.lint import Finding
from engine.models.audit import AuditEvent
from engine.models.definitions import ProcessDefinition
from engine.models.users import User
from tests.fixtures.directory import Org

ROOT = Path(__file__).resolve().parents[2]
# The demo's review loops back into its first task: one fake-join warning, no error.
DEMO = (ROOT / 'tests/fixtures/bpmn/demo_intake.bpmn').read_text(encoding='utf-8')
DEADLINE = '<camunda:property name="deadline" value="365 calendar_days" />'
NO_DEADLINES = DEMO.replace(DEADLINE, '')
PROBE = (ROOT / 'tests/workflows/disputes/bpmn/probe_triage.bpmn').read_text(encoding='utf-8')
TRIAGE_DMN = (ROOT / 'bpmn/disputes/triage.dmn').read_bytes()


def _count(session: Session, model: type[object]) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def _rules(findings: list[Finding]) -> set[tuple[str, str | None]]:
    return {(f.rule, f.element_id) for f in findings}


def test_validate_makes_a_report_and_stores_nothing(session: Session) -> None:
    report = validate(session, DEMO, filename='demo_intake.bpmn')
    assert (report.key, report.kind, report.valid) == ('demo_intake', 'bpmn', True)
    assert report.name == '案件登记与审核（演示）'
    assert report.errors == [] and _rules(report.warnings) == {('fake-join', 'register')}
    broken = validate(session, NO_DEADLINES)
    assert not broken.valid
    assert {('user-task-deadline', 'register'), ('user-task-deadline', 'review')} <= _rules(broken.errors)
    session.commit()
    assert _count(session, ProcessDefinition) == 0 and _count(session, AuditEvent) == 0


def test_validate_never_raises_on_garbage(session: Session) -> None:
    for source in (b'', b'\x00\x01', '<x/>', DEMO[:200]):
        report = validate(session, source)
        assert not report.valid and report.errors


def test_errors_are_refused_even_when_warnings_are_accepted(session: Session) -> None:
    with pytest.raises(DeploymentRejected) as refused:
        deploy(session, NO_DEADLINES, actor=None, accept_warnings=True)
    report = refused.value.report
    assert report is not None and not report.valid
    assert [{'element': f.element_id, 'message': f.message} for f in report.errors] == refused.value.problems
    assert _count(session, ProcessDefinition) == 0


def test_warnings_must_be_accepted(session: Session) -> None:
    with pytest.raises(WarningsNotAccepted) as refused:
        deploy(session, DEMO, actor=None)
    assert refused.value.code == 'warnings_not_accepted'
    assert refused.value.report.valid and _rules(refused.value.report.warnings) == {('fake-join', 'register')}
    session.commit()
    assert _count(session, ProcessDefinition) == 0 and _count(session, AuditEvent) == 0


def test_accepted_warnings_are_recorded_in_the_audit_event(session: Session,
                                                          create_member: Callable[..., User],
                                                          org: Org) -> None:
    designer = create_member('designer', 'designer', org.province)
    result = deploy_with_report(session, DEMO, actor=designer, filename='demo_intake.bpmn', accept_warnings=True)
    session.commit()
    assert result.created and result.definition.version == 1 and result.definition.deployed_by_id == designer.id
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'definition.deployed')).one()
    assert event.after is not None
    assert event.after['accepted_warnings'] == [f.to_dict() for f in result.report.warnings]
    assert event.after['accepted_warnings'][0]['rule'] == 'fake-join'


def test_a_clean_source_needs_nothing_accepted(session: Session) -> None:
    dmn, created = deploy(session, TRIAGE_DMN, actor=None)
    session.commit()
    assert created and dmn.kind == 'dmn'
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'definition.deployed')).one()
    assert event.after is not None and event.after['accepted_warnings'] == []


def test_unchanged_source_makes_no_version_and_asks_nothing(session: Session) -> None:
    first, created = deploy(session, DEMO, actor=None, accept_warnings=True)
    again = deploy_with_report(session, DEMO, actor=None)
    assert created and not again.created and again.definition.id == first.id
    assert again.report.warnings  # reported, but there was nothing to accept
    changed, created_changed = deploy(session, DEMO.replace('（演示）', '（演示二）'), actor=None, accept_warnings=True)
    assert created_changed and changed.version == 2


def test_decision_references_resolve_against_deployed_tables(session: Session) -> None:
    assert ('decision-ref', 'decide') in _rules(validate(session, PROBE).errors)
    deploy(session, TRIAGE_DMN, actor=None)
    assert ('decision-ref', 'decide') not in _rules(validate(session, PROBE).errors)


def test_unknown_groups_are_checked_once_roles_exist(session: Session, create_member: Callable[..., User],
                                                     org: Org) -> None:
    unknown = DEMO.replace('camunda:candidateGroups="county_officer"', 'camunda:candidateGroups="county_officers"')
    assert not {f.rule for f in validate(session, unknown).warnings} & {'unknown-group'}
    create_member('officer', 'county_officer', org.county)
    create_member('staff', 'township_staff', org.township)
    assert ('unknown-group', 'review') in _rules(validate(session, unknown).warnings)
    assert not {f.rule for f in validate(session, DEMO).warnings} & {'unknown-group'}
