"""Every endpoint × every kind of caller: anonymous, township staff in the subtree, a township user
outside it, the county supervisor and the (province) process designer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from engine.models.users import User
from tests.api.conftest import DEMO, REGISTER, START, Api, start_demo_case
from tests.fixtures.directory import PASSWORD

ROLES = ('anonymous', 'staff', 'outsider', 'chief', 'designer')
DEMO_SOURCE = (Path(__file__).resolve().parent.parent.parent / DEMO).read_text(encoding='utf-8')


@dataclass(frozen=True)
class Endpoint:
    """One endpoint, how to call it, and the status each role gets."""

    endpoint: str
    method: str
    path: str
    expected: dict[str, int]
    body: Callable[[dict[str, User]], Any] | None = None
    #: the body built from the case's task id instead
    task_body: Callable[[int], Any] | None = None
    #: username who claims the case's task before the call
    claimed_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the media type of a success (the error bodies are JSON whatever the endpoint)
    result_type: str = 'application/json'


def _statuses(*codes: int) -> dict[str, int]:
    return dict(zip(ROLES, codes, strict=True))


ENDPOINTS = [
    Endpoint('api.create_token', 'post', '/auth/token', _statuses(200, 200, 200, 200, 200),
             body=lambda people: {'username': 'staff2', 'password': PASSWORD}),
    Endpoint('api.get_openapi', 'get', '/openapi.json', _statuses(200, 200, 200, 200, 200)),
    Endpoint('api.list_definitions', 'get', '/definitions', _statuses(401, 200, 200, 200, 200)),
    Endpoint('api.deploy_definition', 'post', '/definitions', _statuses(401, 403, 403, 403, 200),
             body=lambda people: {'source': DEMO_SOURCE}),
    Endpoint('api.validate_definition', 'post', '/definitions/validate', _statuses(401, 403, 403, 403, 200),
             body=lambda people: {'source': DEMO_SOURCE}),
    Endpoint('api.list_cases', 'get', '/cases', _statuses(401, 200, 200, 200, 200)),
    Endpoint('api.start_case', 'post', '/cases', _statuses(401, 201, 201, 201, 403),
             body=lambda people: {'process_key': 'demo_intake', 'data': START}),
    Endpoint('api.get_case', 'get', '/cases/{case}', _statuses(401, 200, 404, 200, 404)),
    Endpoint('api.list_case_history', 'get', '/cases/{case}/history', _statuses(401, 200, 404, 200, 404)),
    Endpoint('api.list_tasks', 'get', '/tasks?view=all', _statuses(401, 200, 200, 200, 200)),
    Endpoint('api.get_task', 'get', '/tasks/{task}', _statuses(401, 200, 404, 200, 404)),
    Endpoint('api.claim_task', 'post', '/tasks/{task}', _statuses(401, 200, 404, 403, 404),
             extra={'suffix': '/claim'}),
    Endpoint('api.unclaim_task', 'post', '/tasks/{task}', _statuses(401, 403, 404, 200, 404),
             claimed_by='staff2', extra={'suffix': '/unclaim'}),
    Endpoint('api.assign_task', 'post', '/tasks/{task}', _statuses(401, 403, 404, 200, 404),
             body=lambda people: {'assignee': people['staff2'].id}, extra={'suffix': '/assign'}),
    Endpoint('api.complete_task', 'post', '/tasks/{task}', _statuses(401, 200, 404, 403, 404),
             body=lambda people: {'data': REGISTER}, extra={'suffix': '/complete'}),
    Endpoint('api.count_tasks', 'get', '/tasks/counts', _statuses(401, 200, 200, 200, 200)),
    # Bulk actions answer 200 with each task's outcome; the refusals are inside.
    Endpoint('api.bulk_claim_tasks', 'post', '/tasks/bulk/claim', _statuses(401, 200, 200, 200, 200),
             task_body=lambda task: {'tasks': [task]}),
    Endpoint('api.bulk_assign_tasks', 'post', '/tasks/bulk/assign', _statuses(401, 200, 200, 200, 200),
             task_body=lambda task: {'tasks': [task], 'assignee': 1}),
    Endpoint('api.delegate_task', 'post', '/tasks/{task}', _statuses(401, 200, 404, 403, 404),
             body=lambda people: {'delegate': people['staff2'].id}, extra={'suffix': '/delegate'}),
    Endpoint('api.resolve_task', 'post', '/tasks/{task}', _statuses(401, 409, 404, 409, 404),
             extra={'suffix': '/resolve'}),
    Endpoint('api.list_filters', 'get', '/filters', _statuses(401, 200, 200, 200, 200)),
    Endpoint('api.save_filter', 'post', '/filters', _statuses(401, 201, 201, 201, 201),
             body=lambda people: {'name': '红色案件', 'view': 'all', 'criteria': {'risk_colour': 'red'}}),
    # staff's own personal filter: nobody else sees it
    Endpoint('api.delete_filter', 'delete', '/filters/{filter}', _statuses(401, 200, 404, 404, 404)),
    # Comments and attachments (tests/api/test_comments.py checks the upload and download of every role in full).
    Endpoint('api.list_comments', 'get', '/cases/{case}/comments', _statuses(401, 200, 404, 200, 404)),
    Endpoint('api.add_comment', 'post', '/cases/{case}/comments', _statuses(401, 201, 404, 201, 404),
             body=lambda people: {'body': '已阅。'}),
    Endpoint('api.list_attachments', 'get', '/cases/{case}/attachments', _statuses(401, 200, 404, 200, 404)),
    # A JSON body is no upload: 400 once access is granted.
    Endpoint('api.add_attachment', 'post', '/cases/{case}/attachments', _statuses(401, 400, 404, 400, 404),
             body=lambda people: {}),
    Endpoint('api.get_attachment_content', 'get', '/cases/{case}/attachments/999999/content',
             _statuses(401, 404, 404, 404, 404)),
    # The case file is for those who may reveal the case's sensitive data: staff and the chief here.
    # machine clients only: no token is a 401, a staff token a 403 (tests/api/test_events.py has the rest)
    Endpoint('api.receive_event', 'post', '/events', _statuses(401, 403, 403, 403, 403),
             body=lambda people: {'kind': 'alarm', 'key': 'matrix-1', 'payload': {}}),
    Endpoint('api.get_casefile', 'get', '/cases/{case}/casefile', _statuses(401, 200, 404, 200, 404),
             result_type='text/html'),
]

#: what each role finds in the lists (case and task visible or not)
SEES_CASE = {'staff': True, 'outsider': False, 'chief': True, 'designer': False}


def test_the_matrix_covers_every_api_endpoint(app: Flask) -> None:
    registered = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith('api.')}
    assert registered == {e.endpoint for e in ENDPOINTS}


@pytest.mark.parametrize('role', ROLES)
@pytest.mark.parametrize('spec', ENDPOINTS, ids=lambda e: e.endpoint.removeprefix('api.'))
def test_access(spec: Endpoint, role: str, as_user: Callable[[str | None], Api], people: dict[str, User],
                demo: object) -> None:
    case = start_demo_case(as_user('staff'))
    task_id = case['tasks'][0]['id']
    if spec.claimed_by:
        assert as_user(spec.claimed_by).post(f'/tasks/{task_id}/claim').status_code == 200
    filter_id = None
    if '{filter}' in spec.path:
        filter_id = as_user('staff').post('/filters', {'name': '我的', 'view': 'mine'}).get_json()['id']
    api = as_user(None if role == 'anonymous' else role)
    path = spec.path.format(case=case['id'], task=task_id, filter=filter_id) + spec.extra.get('suffix', '')
    body = spec.task_body(task_id) if spec.task_body else spec.body(people) if spec.body else None
    if spec.method == 'get':
        response = api.get(path)
    elif spec.method == 'delete':
        response = api.delete(path)
    else:
        response = api.post(path, body)
    assert response.status_code == spec.expected[role], response.get_data(as_text=True)[:500]
    assert response.mimetype == (spec.result_type if response.status_code < 400 else 'application/json')
    if response.status_code >= 400:
        assert {'error', 'message', 'fields'} <= response.get_json().keys()
    if response.status_code == 200 and spec.endpoint in ('api.list_cases', 'api.list_tasks'):
        ids = [item['case_id' if spec.endpoint == 'api.list_tasks' else 'id'] for item in response.get_json()['items']]
        assert (case['id'] in ids) == SEES_CASE[role]
