"""Service tasks call registered operations inside the command; requests attach to existing cases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import can_view_case, load_scope, visible_cases
from engine.errors import Conflict, NotFound
from engine.models.cases import Case, CaseAccessGrant
from engine.models.instances import ProcessInstance
from engine.models.users import User
from engine.profiles import CaseProfile, register_profile
from engine.services import ServiceContext, _operations, service
from tests.fixtures.directory import Org

SERVICE_BPMN = 'tests/engine/bpmn/service_case.bpmn'
REQUEST_BPMN = 'tests/engine/bpmn/request_note.bpmn'


@pytest.fixture
def operations() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def mark_colour(context: ServiceContext, data: dict[str, Any]) -> dict[str, Any]:
        colour = context.properties['colour']
        context.case.risk_colour = colour
        calls.append((context.case.number, dict(context.properties)))
        return {'colour_set_by': 'service', 'colour': colour}

    service('tests.mark_colour')(mark_colour)
    yield calls
    _operations.pop('tests.mark_colour', None)


@pytest.fixture
def staff(org: Org, create_member: Callable[..., User]) -> User:
    return create_member('staff', 'township_staff', org.township)


def test_service_task_runs_registered_operation_with_case_and_properties(
        session: Session, org: Org, staff: User, operations: list[tuple[str, dict[str, Any]]],
        deploy_file: Callable[[str], object]) -> None:
    deploy_file(SERVICE_BPMN)
    case, tasks = runtime.start_case(session, 'service_case', {}, actor=staff, org_unit=org.township)
    session.commit()
    assert operations == [(case.number, {'colour': 'red'})]
    assert case.risk_colour == 'red'
    assert runtime.task_data(session, tasks[0])['colour_set_by'] == 'service'


def test_operation_error_rolls_back_the_command(session: Session, org: Org, staff: User,
                                                deploy_file: Callable[[str], object]) -> None:
    def refuse(context: ServiceContext, data: dict[str, Any]) -> None:
        context.case.risk_colour = 'green'
        raise Conflict('测试冲突')

    service('tests.mark_colour')(refuse)
    try:
        deploy_file(SERVICE_BPMN)
        with pytest.raises(Conflict, match='测试冲突'):
            runtime.start_case(session, 'service_case', {}, actor=staff, org_unit=org.township)
        session.rollback()
        assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0
    finally:
        _operations.pop('tests.mark_colour', None)


@pytest.fixture
def request_profile() -> Iterator[None]:
    register_profile('request_note', CaseProfile(attach_to_case=True))
    yield
    register_profile('request_note', CaseProfile())


def test_request_attaches_to_existing_case(session: Session, org: Org, staff: User, request_profile: None,
                                           deploy_file: Callable[[str], object]) -> None:
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    deploy_file(REQUEST_BPMN)
    case, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=staff, org_unit=org.township)
    session.commit()
    same, tasks = runtime.start_case(session, 'request_note', {'case_id': case.id, 'reason': '外出探亲'},
                                     actor=staff, org_unit=org.other_township, scope=load_scope(session, staff))
    session.commit()
    assert same.id == case.id and [t.bpmn_id for t in tasks] == ['approve']
    instances = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)
                                .order_by(ProcessInstance.id)).all()
    assert [i.is_lifecycle for i in instances] == [True, False]
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 1


def test_request_on_unknown_foreign_or_closed_case_is_refused(
        session: Session, org: Org, staff: User, create_member: Callable[..., User], request_profile: None,
        deploy_file: Callable[[str], object]) -> None:
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    deploy_file(REQUEST_BPMN)
    outsider = create_member('outsider', 'township_staff', org.other_township)
    case, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=staff, org_unit=org.township)
    session.commit()
    with pytest.raises(NotFound):
        runtime.start_case(session, 'request_note', {'case_id': 999999}, actor=staff, org_unit=org.township,
                           scope=load_scope(session, staff))
    with pytest.raises(NotFound):
        runtime.start_case(session, 'request_note', {'case_id': case.id}, actor=outsider,
                           org_unit=org.other_township, scope=load_scope(session, outsider))
    session.rollback()
    case = session.get(Case, case.id)
    case.close(case.created_dt)
    session.commit()
    with pytest.raises(Conflict):
        runtime.start_case(session, 'request_note', {'case_id': case.id}, actor=staff, org_unit=org.township,
                           scope=load_scope(session, staff))


def test_access_grant_gives_read_access_only(session: Session, org: Org, staff: User,
                                             create_member: Callable[..., User], request_profile: None,
                                             deploy_file: Callable[[str], object]) -> None:
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    deploy_file(REQUEST_BPMN)
    outsider = create_member('outsider', 'township_staff', org.other_township)
    case, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=staff, org_unit=org.township)
    session.commit()
    scope = load_scope(session, outsider)
    assert not can_view_case(session, scope, case)
    assert session.scalars(visible_cases(scope)).all() == []
    session.add(CaseAccessGrant(case_id=case.id, org_path=org.other_county.path, reason='变更执行地',
                                granted_dt=case.created_dt))
    session.commit()
    assert can_view_case(session, scope, case)
    assert [c.id for c in session.scalars(visible_cases(scope))] == [case.id]
    with pytest.raises(NotFound):
        runtime.start_case(session, 'request_note', {'case_id': case.id}, actor=outsider,
                           org_unit=org.other_township, scope=scope)
