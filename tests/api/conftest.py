"""Fixtures of the API tests: the people of the small org tree, the demo diagram, a JSON client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from engine.models.definitions import ProcessDefinition

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'id_number': '430922198001010010', 'received_on': '2025-09-26',
         'summary': '邻里纠纷'}
REGISTER = {'visit_count': 2, 'risk_level': 'high', 'findings': '走访属实'}
REVIEW_OK = {'approved': True, 'review_opinion': '同意结案'}


@pytest.fixture
def demo(deploy_file: Callable[[str], ProcessDefinition]) -> ProcessDefinition:
    return deploy_file(DEMO)


@dataclass
class Api:
    """A test client speaking JSON to /api/v1 as one user (or anonymously, with no headers)."""

    client: FlaskClient
    headers: dict[str, str]

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(f'/api/v1{path}', headers=self.headers, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        if json is not None:
            kwargs['json'] = json
        headers = {**self.headers, **kwargs.pop('headers', {})}
        return self.client.post(f'/api/v1{path}', headers=headers, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.delete(f'/api/v1{path}', headers=self.headers, **kwargs)


@pytest.fixture
def as_user(client: FlaskClient, api_token: Callable[[str], dict[str, str]]) -> Callable[[str | None], Api]:
    """``as_user('staff')`` → an Api holding staff's bearer token; ``as_user(None)`` is anonymous."""
    tokens: dict[str, dict[str, str]] = {}

    def make(username: str | None) -> Api:
        if username is None:
            return Api(client, {})
        if username not in tokens:
            tokens[username] = api_token(username)
        return Api(client, tokens[username])
    return make


def start_demo_case(api: Api, data: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
    """Start a demo case through the API and return the response body (asserting 201)."""
    response = api.post('/cases', {'process_key': 'demo_intake', 'data': data or START, **body})
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def assert_error(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the error shape and status; return the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)[:300]
    body: dict[str, Any] = response.get_json()
    assert {'error', 'message', 'fields'} <= body.keys()
    assert isinstance(body['message'], str) and body['message']
    assert isinstance(body['fields'], dict)
    if code is not None:
        assert body['error'] == code
    return body
