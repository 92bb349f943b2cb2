"""Bad input answers 400 with every field's message (in Chinese) and changes nothing; unknown ids 404."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.api.conftest import START, Api, assert_error, start_demo_case

CHINESE = re.compile(r'[\u4e00-\u9fff]')


def _all_chinese(fields: dict[str, list[str]]) -> bool:
    return all(messages and all(CHINESE.search(m) for m in messages) for messages in fields.values())


def _snapshot(session: Session) -> tuple[Any, ...]:
    """Everything a failed command must leave untouched."""
    session.expire_all()
    revisions = tuple(session.scalars(sa.select(ProcessInstance.revision).order_by(ProcessInstance.id)))
    tasks = tuple(session.execute(sa.select(HumanTask.id, HumanTask.status, HumanTask.assignee_id)
                                  .order_by(HumanTask.id)).all())
    cases = session.scalar(sa.select(sa.func.count()).select_from(Case))
    events = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    return revisions, tasks, cases, events


@pytest.fixture
def staff(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> Api:
    return as_user('staff')


@pytest.fixture
def open_task(staff: Api) -> int:
    task_id: int = start_demo_case(staff)['tasks'][0]['id']
    return task_id


@pytest.mark.parametrize(('raw', 'content_type'), [
    ('{"process_key": "demo_intake", ', 'application/json'),
    ('not json at all', 'application/json'),
    ('{"process_key": "demo_intake"}', 'text/plain'),
    ('process_key=demo_intake', 'application/x-www-form-urlencoded'),
])
def test_malformed_body_is_400(staff: Api, session: Session, raw: str, content_type: str) -> None:
    before = _snapshot(session)
    body = assert_error(staff.post('/cases', data=raw, content_type=content_type), 400, 'invalid')
    assert list(body['fields']) == ['_schema'] and _all_chinese(body['fields'])
    assert _snapshot(session) == before


@pytest.mark.parametrize('payload', [[], ['process_key'], 'demo_intake', 42, True, None])
def test_non_object_body_is_400(staff: Api, session: Session, payload: Any) -> None:
    before = _snapshot(session)
    response = staff.post('/cases', data=json.dumps(payload), content_type='application/json')
    body = assert_error(response, 400, 'invalid')
    assert body['fields'] == {'_schema': ['请求体应为 JSON 对象。']}
    assert _snapshot(session) == before


def test_missing_unknown_and_mistyped_fields_are_each_reported(staff: Api, session: Session) -> None:
    before = _snapshot(session)
    body = assert_error(staff.post('/cases', {'data': [], 'org_unit': 5, 'extra': 1}), 400, 'invalid')
    assert set(body['fields']) == {'process_key', 'data', 'org_unit', 'extra'}
    assert body['fields']['process_key'] == ['此项为必填项。']
    assert body['fields']['extra'] == ['不支持此字段。']
    assert body['fields']['data'] == ['应为 JSON 对象。']
    assert _all_chinese(body['fields'])
    assert _snapshot(session) == before


def test_invalid_start_data_reports_every_form_field(staff: Api, session: Session) -> None:
    before = _snapshot(session)
    bad = {'person_name': '谢', 'id_number': '123', 'received_on': '2025-02-30', 'nickname': 'x'}
    body = assert_error(staff.post('/cases', {'process_key': 'demo_intake', 'data': bad}), 400, 'invalid')
    assert {'person_name', 'received_on', 'nickname'} <= set(body['fields'])
    assert _all_chinese(body['fields'])
    assert _snapshot(session) == before


def test_bad_id_number_is_refused_by_the_profile(staff: Api, session: Session) -> None:
    before = _snapshot(session)
    body = assert_error(staff.post('/cases', {'process_key': 'demo_intake',
                                              'data': {**START, 'id_number': '430922198001010011'}}), 400)
    assert list(body['fields']) == ['id_number']
    assert _snapshot(session) == before


def test_invalid_task_data_reports_every_field_and_changes_nothing(staff: Api, session: Session,
                                                                   open_task: int) -> None:
    before = _snapshot(session)
    bad = {'visit_count': 'many', 'risk_level': 'extreme', 'findings': '短', 'secret': 1}
    body = assert_error(staff.post(f'/tasks/{open_task}/complete', {'data': bad}), 400, 'invalid')
    assert set(body['fields']) == {'visit_count', 'risk_level', 'findings', 'secret'}
    assert _all_chinese(body['fields'])
    assert _snapshot(session) == before
    missing = assert_error(staff.post(f'/tasks/{open_task}/complete', {'data': {}}), 400, 'invalid')
    assert set(missing['fields']) == {'visit_count', 'risk_level', 'findings'}
    assert _snapshot(session) == before


@pytest.mark.parametrize('payload', [{'data': []}, {'data': 'x'}, {'data': 3}, {'data': {}, 'more': 1}, []])
def test_complete_rejects_non_object_data(staff: Api, session: Session, open_task: int, payload: Any) -> None:
    before = _snapshot(session)
    body = assert_error(staff.post(f'/tasks/{open_task}/complete', payload), 400, 'invalid')
    assert body['fields'] and _all_chinese(body['fields'])
    assert _snapshot(session) == before


@pytest.mark.parametrize('payload', [{}, {'assignee': '2'}, {'assignee': True}, {'assignee': 0},
                                     {'assignee': 1.5}, {'assignee': 2, 'why': 'x'}])
def test_assign_rejects_bad_bodies(as_user: Callable[[str | None], Api], open_task: int, session: Session,
                                   payload: dict[str, Any]) -> None:
    before = _snapshot(session)
    body = assert_error(as_user('chief').post(f'/tasks/{open_task}/assign', payload), 400, 'invalid')
    assert _all_chinese(body['fields'])
    assert _snapshot(session) == before


def test_assign_to_a_non_candidate_is_400_on_the_assignee(as_user: Callable[[str | None], Api], open_task: int,
                                                          people: dict[str, User], session: Session) -> None:
    before = _snapshot(session)
    response = as_user('chief').post(f'/tasks/{open_task}/assign', {'assignee': people['officer'].id})
    assert list(assert_error(response, 400, 'invalid')['fields']) == ['assignee']
    missing = as_user('chief').post(f'/tasks/{open_task}/assign', {'assignee': 999999})
    assert list(assert_error(missing, 400, 'invalid')['fields']) == ['assignee']
    assert _snapshot(session) == before


def test_claim_rejects_a_body_with_keys(staff: Api, open_task: int) -> None:
    body = assert_error(staff.post(f'/tasks/{open_task}/claim', {'assignee': 1}), 400, 'invalid')
    assert body['fields'] == {'assignee': ['不支持此字段。']}


@pytest.mark.parametrize('query', ['limit=0', 'limit=201', 'limit=ten', 'cursor=abc', 'cursor=-1',
                                   'cursor=99999999999999999999999', 'view=everything'])
def test_bad_list_parameters_are_400(staff: Api, query: str) -> None:
    body = assert_error(staff.get(f'/tasks?{query}'), 400, 'invalid')
    assert _all_chinese(body['fields'])


@pytest.mark.parametrize('query', ['limit=0', 'cursor=x1', 'status=deleted', 'q=' + 'x' * 65])
def test_bad_case_list_parameters_are_400(staff: Api, query: str) -> None:
    assert_error(staff.get(f'/cases?{query}'), 400, 'invalid')


def test_nul_characters_are_refused_before_reaching_the_database(staff: Api, session: Session) -> None:
    before = _snapshot(session)
    body = assert_error(staff.post('/cases', {'process_key': 'demo\x00', 'data': START}), 400, 'invalid')
    assert body['fields'] == {'process_key': ['包含无法保存的字符。']}
    assert_error(staff.get('/cases?q=%00'), 400, 'invalid')
    assert_error(staff.client.post('/api/v1/auth/token', json={'username': 'st\x00aff', 'password': 'x'}), 400)
    assert _snapshot(session) == before


def test_unknown_process_and_org_unit_are_404(staff: Api, session: Session) -> None:
    before = _snapshot(session)
    assert_error(staff.post('/cases', {'process_key': 'no_such_process', 'data': START}), 404, 'not_found')
    assert_error(staff.post('/cases', {'process_key': 'demo_intake', 'data': START, 'org_unit': '000'}), 404)
    assert _snapshot(session) == before


@pytest.mark.parametrize(('method', 'path'), [
    ('get', '/cases/999999'), ('get', '/cases/999999/history'), ('get', '/tasks/999999'),
    ('post', '/tasks/999999/claim'), ('post', '/tasks/999999/unclaim'), ('post', '/tasks/999999/assign'),
    ('post', '/tasks/999999/complete'), ('get', '/cases/abc'), ('get', '/no-such-endpoint'),
])
def test_unknown_ids_are_404_json(staff: Api, method: str, path: str) -> None:
    response = getattr(staff, method)(path)
    assert_error(response, 404)


def test_wrong_method_is_json(staff: Api) -> None:
    assert_error(staff.client.delete('/api/v1/cases', headers=staff.headers), 405)
