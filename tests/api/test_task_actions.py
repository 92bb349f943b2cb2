"""Who may act on a task, conflicts between people, and faults during completion."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from engine.definitions import deploy
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.api.conftest import REGISTER, Api, assert_error, start_demo_case
from tests.fixtures.directory import PASSWORD

FAULTY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="faulty_defs" targetNamespace="x">
  <bpmn:process id="faulty" name="办理后出错" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="lane_staff" name="township_staff">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>step</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>divide</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="step" name="填写除数">
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="n" label="除数" type="long" />
        </camunda:formData>
        <camunda:properties><camunda:property name="deadline" value="365 calendar_days" /></camunda:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:scriptTask id="divide" name="相除" scriptFormat="python">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>x = 1 / n</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="step" />
    <bpmn:sequenceFlow id="f2" sourceRef="step" targetRef="divide" />
    <bpmn:sequenceFlow id="f3" sourceRef="divide" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def case(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> dict[str, Any]:
    return start_demo_case(as_user('staff'))


def _task_id(case: dict[str, Any]) -> int:
    task_id: int = case['tasks'][0]['id']
    return task_id


@pytest.mark.parametrize(('method', 'path', 'body'), [
    ('get', '/cases/{case}', None),
    ('get', '/cases/{case}/history', None),
    ('get', '/tasks/{task}', None),
    ('post', '/tasks/{task}/claim', None),
    ('post', '/tasks/{task}/unclaim', None),
    ('post', '/tasks/{task}/assign', {'assignee': 1}),
    ('post', '/tasks/{task}/complete', {'data': REGISTER}),
])
def test_township_user_of_another_county_gets_404(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                                  session: Session, method: str, path: str,
                                                  body: dict[str, Any] | None) -> None:
    outsider = as_user('outsider')
    url = path.format(case=case['id'], task=_task_id(case))
    response = outsider.get(url) if method == 'get' else outsider.post(url, body)
    assert_error(response, 404, 'not_found')
    assert session.get(HumanTask, _task_id(case)).status == 'open'


def test_lists_of_another_county_stay_empty(as_user: Callable[[str | None], Api], case: dict[str, Any]) -> None:
    outsider = as_user('outsider')
    assert outsider.get('/cases').get_json()['items'] == []
    for view in ('mine', 'group', 'all'):
        assert outsider.get(f'/tasks?view={view}').get_json()['items'] == []


def test_claim_by_a_non_candidate(as_user: Callable[[str | None], Api], case: dict[str, Any]) -> None:
    # The county officer is not a candidate and does not supervise: the task is invisible to them.
    assert_error(as_user('officer').post(f'/tasks/{_task_id(case)}/claim'), 404)
    # The supervisor sees the task but is not in its candidate group.
    assert_error(as_user('chief').post(f'/tasks/{_task_id(case)}/claim'), 403, 'forbidden')


def test_claiming_a_claimed_task_conflicts(as_user: Callable[[str | None], Api], case: dict[str, Any]) -> None:
    assert as_user('staff').post(f'/tasks/{_task_id(case)}/claim').status_code == 200
    assert_error(as_user('staff2').post(f'/tasks/{_task_id(case)}/claim'), 409, 'conflict')
    assert_error(as_user('staff').post(f'/tasks/{_task_id(case)}/claim'), 409, 'conflict')


def test_only_the_assignee_or_a_supervisor_unclaims(as_user: Callable[[str | None], Api],
                                                    case: dict[str, Any]) -> None:
    task_id = _task_id(case)
    assert_error(as_user('staff').post(f'/tasks/{task_id}/unclaim'), 409, 'conflict')  # nobody holds it
    as_user('staff').post(f'/tasks/{task_id}/claim')
    assert_error(as_user('staff2').post(f'/tasks/{task_id}/unclaim'), 403, 'forbidden')
    assert as_user('chief').post(f'/tasks/{task_id}/unclaim').status_code == 200


def test_a_task_claimed_by_someone_else_cannot_be_completed(as_user: Callable[[str | None], Api],
                                                            case: dict[str, Any]) -> None:
    as_user('staff').post(f'/tasks/{_task_id(case)}/claim')
    assert_error(as_user('staff2').post(f'/tasks/{_task_id(case)}/complete', {'data': REGISTER}), 403)


def test_only_supervisors_assign(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                 people: dict[str, User]) -> None:
    response = as_user('staff').post(f'/tasks/{_task_id(case)}/assign', {'assignee': people['staff2'].id})
    assert_error(response, 403, 'forbidden')


def test_completing_twice_conflicts(as_user: Callable[[str | None], Api], case: dict[str, Any]) -> None:
    staff = as_user('staff')
    assert staff.post(f'/tasks/{_task_id(case)}/complete', {'data': REGISTER}).status_code == 200
    assert_error(staff.post(f'/tasks/{_task_id(case)}/complete', {'data': REGISTER}), 409, 'conflict')
    assert_error(staff.post(f'/tasks/{_task_id(case)}/claim'), 409, 'conflict')


def test_concurrent_completions_one_wins_one_conflicts(app: Flask, case: dict[str, Any],
                                                       session: Session) -> None:
    task_id = _task_id(case)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def attempt(username: str) -> None:
        client = app.test_client()  # each thread its own client, cookie jar and request session
        token = client.post('/api/v1/auth/token', json={'username': username, 'password': PASSWORD})
        headers = {'Authorization': f'Bearer {token.get_json()["token"]}'}
        barrier.wait()
        response = client.post(f'/api/v1/tasks/{task_id}/complete', json={'data': REGISTER}, headers=headers)
        statuses.append(response.status_code)
        if response.status_code != 200:
            assert_error(response, 409, 'conflict')

    threads = [threading.Thread(target=attempt, args=(name,)) for name in ('staff', 'staff2')]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(HumanTask).where(
        HumanTask.bpmn_id == 'review', HumanTask.status == 'open')) == 1


def test_workflow_fault_is_422_rolled_back_and_recorded(as_user: Callable[[str | None], Api],
                                                        people: dict[str, User], session: Session) -> None:
    deploy(session, FAULTY, actor=None, accept_warnings=True)
    session.commit()
    staff = as_user('staff')
    started = staff.post('/cases', {'process_key': 'faulty', 'data': {}})
    assert started.status_code == 201, started.get_json()
    task_id = started.get_json()['tasks'][0]['id']
    instance = session.scalars(sa.select(ProcessInstance)).one()
    revision, state = instance.revision, instance.state

    body = assert_error(staff.post(f'/tasks/{task_id}/complete', {'data': {'n': 0}}), 422, 'workflow_fault')
    assert body['fields'] == {}
    session.expire_all()
    instance = session.get(ProcessInstance, instance.id)
    assert instance.error_message and instance.error_dt is not None
    # The command rolled back; only writing the fault note touched the row.
    assert instance.state == state and instance.revision == revision + 1
    assert session.get(HumanTask, task_id).status == 'open'
    assert session.get(Case, instance.case_id).status == 'open'
    history = staff.get(f'/cases/{instance.case_id}/history').get_json()['items']
    assert history[-1]['kind'] == 'instance.fault'
    assert staff.post(f'/tasks/{task_id}/complete', {'data': {'n': 4}}).status_code == 200
