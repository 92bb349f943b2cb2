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
    #: username who claims the case's task before the call
    claimed_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _statuses(*codes: int) -> dict[str, int]:
    return dict(zip(ROLES, codes, strict=True))


ENDPOINTS = [
    Endpoint('api.create_token', 'post', '/auth/token', _statuses(200, 200, 200, 200, 200),
             body=lambda people: {'username': 'staff2', 'password': PASSWORD}),
    Endpoint('api.get_openapi', 'get', '/openapi.json', _statuses(200, 200, 200, 200, 200)),
    Endpoint('api.list_definitions', 'get', '/definitions', _statuses(401, 200, 200, 200, 200)),
    Endpoint('api.deploy_definition', 'post', '/definitions', _statuses(401, 403, 403, 403, 200),
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
    api = as_user(None if role == 'anonymous' else role)
    path = spec.path.format(case=case['id'], task=task_id) + spec.extra.get('suffix', '')
    body = spec.body(people) if spec.body else None
    response = api.get(path) if spec.method == 'get' else api.post(path, body)
    assert response.status_code == spec.expected[role], response.get_data(as_text=True)[:500]
    assert response.is_json
    if response.status_code >= 400:
        assert {'error', 'message', 'fields'} <= response.get_json().keys()
    if response.status_code == 200 and spec.endpoint in ('api.list_cases', 'api.list_tasks'):
        ids = [item['case_id' if spec.endpoint == 'api.list_tasks' else 'id'] for item in response.get_json()['items']]
        assert (case['id'] in ids) == SEES_CASE[role]
