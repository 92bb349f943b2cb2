"""Intake and acceptance: the case profile, 不予受理, the documents issued at acceptance, deployment."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import runtime
from engine.clocks import case_clock
from engine.definitions import deploy
from engine.errors import ValidationFailed
from engine.models.definitions import ProcessDefinition
from engine.models.notifications import Notification
from tests.fixtures.engine import ROOT
from tests.workflows.disputes.conftest import DIAGRAMS, PATIENT_ID, Driver, Taojiang, start_data
from workflows.disputes import PROFILE
from workflows.disputes.operations import notify


def test_start_opens_a_yt_case_with_its_columns(driver: Driver) -> None:
    case = driver.start(source='网源', claimed_amount='120000.50')
    assert case.number.startswith('YT-2025-') and case.kind == 'dispute_mediation'
    assert case.title == '王哲与桃江县某医院医疗纠纷'
    assert (case.person_name, case.id_number, case.hospital, case.dispute_source) == (
        '王哲', PATIENT_ID, '桃江县某医院', '网源')
    assert case.claimed_amount == Decimal('120000.50') and isinstance(case.claimed_amount, Decimal)
    assert str(case.start_event_on) == '2025-09-26'
    task = driver.task(case, 'accept_review')
    assert task.candidate_group == 'mediator' and task.org_unit_id == driver.org.county.id
    # Three working days from the application: Sunday 09-28 is a make-up working day, so 09-28, 29, 30.
    assert task.due_rule is not None and task.due_rule['due_on'] == '2025-09-30'


@pytest.mark.parametrize(('change', 'field'), [
    ({'id_number': '430922195806120030'}, 'id_number'),
    ({'claimed_amount': 30000.5}, 'claimed_amount'),
    ({'claimed_amount': '30000.555'}, 'claimed_amount'),
    ({'claimed_amount': '-1'}, 'claimed_amount'),
    ({'source': '其他'}, 'source'),
    ({'people_involved': 0}, 'people_involved'),
    ({'people_involved': True}, 'people_involved'),
    ({'patient_died': 'yes'}, 'patient_died'),
    ({'applied_on': '26/09/2025'}, 'applied_on'),
    ({'hospital': ' '}, 'hospital'),
])
def test_profile_refuses_bad_start_data(change: dict[str, Any], field: str) -> None:
    problems = PROFILE.validate(start_data(**change))
    assert field in problems


def test_profile_accepts_contract_start_data() -> None:
    data = start_data(claimed_amount=30000)
    assert PROFILE.validate(data) == {}
    assert PROFILE.subject_columns(data)['claimed_amount'] == Decimal('30000')


def test_start_form_refuses_float_amounts(driver: Driver) -> None:
    with pytest.raises(ValidationFailed) as error:
        driver.start(claimed_amount=30000.5)
    driver.session.rollback()
    assert 'claimed_amount' in error.value.fields


@pytest.mark.parametrize(('review', 'reason'), [
    ({'court_accepted': True}, '人民法院提起诉讼'),
    ({'health_bureau_accepted': True}, '卫生主管部门调解'),
    ({'consent_status': 'refused'}, '明确拒绝调解'),
])
def test_not_accepted_ends_with_a_written_notice(driver: Driver, review: dict[str, Any], reason: str) -> None:
    case = driver.start()
    driver.accept(case, **review)
    closed = driver.fresh(case)
    assert (closed.status, closed.outcome, closed.subsidy_tier, closed.risk_colour) == (
        'closed', '不予受理', None, None)
    [notice] = driver.documents(case)
    assert (notice.kind, notice.title, notice.audience) == ('rejection_notice', '不予受理通知书', 'parties')
    assert reason in notice.body_html and '王某某' in notice.body_html
    clock = case_clock(driver.session, case.id, 'mediation')
    assert clock is not None and clock.status == 'stopped'
    assert driver.instance(case).status == 'completed'


def test_acceptance_issues_register_and_rights_notice_with_the_public_code(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case, review_note='材料齐全，予以受理。')
    register, rights = driver.documents(case)
    assert (register.kind, register.audience, register.number) == ('registration_form', None, f'{case.number}-01')
    assert (rights.kind, rights.audience) == ('rights_notice', 'parties')
    for document in (register, rights):
        assert case.public_code in document.body_html
        assert '桃江县医疗纠纷人民调解委员会' in document.body_html
    assert '受理人：mediator（测试）' in register.body_html and '材料齐全' in register.body_html
    assert '接受调解、拒绝调解或者要求终止调解' in rights.body_html
    # The notice to the parties carries no ID number.
    assert PATIENT_ID not in rights.body_html


def test_rejection_rolls_back_nothing_else(driver: Driver) -> None:
    """A refused acceptance form leaves the case exactly as it was."""
    case = driver.start()
    with pytest.raises(ValidationFailed):
        driver.accept(case, consent_status='maybe')
    driver.session.rollback()
    assert driver.open_ids(case) == ['accept_review'] and driver.documents(case) == []


def test_each_shipped_diagram_deployed_twice_is_one_version(session: Session) -> None:
    for relative in DIAGRAMS:
        source = (ROOT / relative).read_bytes()
        first, created = deploy(session, source, actor=None, filename=relative, accept_warnings=True)
        again, created_again = deploy(session, source, actor=None, filename=relative, accept_warnings=True)
        assert created and not created_again and again.id == first.id
    session.commit()
    counts = {key: count for key, count in session.execute(
        sa.select(ProcessDefinition.key, sa.func.count()).group_by(ProcessDefinition.key))}
    assert counts == {'dispute_triage_definitions': 1, 'dispute_subsidy_definitions': 1, 'dispute_mediation': 1}


def test_every_user_task_has_group_form_deadline_basis_and_documentation(session: Session, deployed: None) -> None:
    from engine.definitions import latest_definition, process_bundle
    bundle = process_bundle(session, latest_definition(session, 'dispute_mediation'))
    assert len(bundle.user_tasks) == 24
    for info in bundle.user_tasks.values():
        assert info.candidate_groups, info.bpmn_id
        assert info.form.fields or info.form.key == 'disputes.agreement', info.bpmn_id
        assert info.properties.get('deadline') or info.properties.get('clock'), info.bpmn_id
        assert info.properties.get('deadline.basis'), info.bpmn_id
        assert info.documentation and len(info.documentation) > 40, info.bpmn_id


def test_notifications_are_sent_once_per_cause(session: Session, taojiang: Taojiang, deployed: None) -> None:
    case, _ = runtime.start_case(session, 'dispute_mediation', start_data(), actor=None, org_unit=taojiang.county)
    users = [taojiang.users['chief'], taojiang.users['mediator']]
    assert notify(session, case, users, kind='test', title='t', body='b', key='k') == users
    assert notify(session, case, users, kind='test', title='t', body='b', key='k') == []
    assert session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 2


CONTRACT = {'applied_on': '2025-09-26', 'source': '网源', 'hospital': '桃江县人民医院', 'claimed_amount': '86000.00',
            'patient_died': False, 'people_involved': 2,
            'person_name': '张某某', 'applicant_name': '张某', 'dispute_summary': '网格员上报：患方对手术效果不满。'}


def test_other_systems_start_a_case_with_the_contract_fields(
        driver: Driver, client: FlaskClient, api_token: Callable[[str], dict[str, str]]) -> None:
    """POST /api/v1/cases with the catalogue's start fields (ARCHITECTURE.md) and the party data only."""
    response = client.post('/api/v1/cases', headers=api_token('mediator'),
                           json={'process_key': 'dispute_mediation', 'data': CONTRACT})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body['number'].startswith('YT-') and [t['name'] for t in body['tasks']] == ['accept_review']
    floated = {**CONTRACT, 'claimed_amount': 86000.5}
    float_amount = client.post('/api/v1/cases', headers=api_token('mediator'),
                               json={'process_key': 'dispute_mediation', 'data': floated})
    assert float_amount.status_code == 400 and 'claimed_amount' in float_amount.get_json()['fields']
