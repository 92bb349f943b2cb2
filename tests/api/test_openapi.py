"""The OpenAPI document: valid OpenAPI 3, and every route of the API in it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from web.api.openapi import openapi_path


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get('/api/v1/openapi.json')  # no login needed
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if '$ref' in schema:
        name = schema['$ref'].rsplit('/', 1)[1]
        resolved: dict[str, Any] = document['components']['schemas'][name]
        return resolved
    return schema


def test_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document['openapi'].startswith('3.')


def test_every_api_route_and_method_is_documented(app: Flask, document: dict[str, Any]) -> None:
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith('/api/v1')]
    assert rules and all(rule.endpoint.startswith('api.') for rule in rules)
    for rule in rules:
        path = openapi_path(rule.rule)
        assert path in document['paths'], path
        for method in (rule.methods or set()) - {'HEAD', 'OPTIONS'}:
            operation = document['paths'][path][method.lower()]
            assert operation['operationId'] == rule.endpoint.removeprefix('api.')
            assert operation['summary'] and operation['responses']
            for name in re.findall(r'{(\w+)}', path):
                assert any(p['in'] == 'path' and p['name'] == name for p in operation['parameters'])
    documented = {(path, method) for path, item in document['paths'].items() for method in item}
    registered = {(openapi_path(r.rule), m.lower()) for r in rules for m in (r.methods or set()) - {'HEAD', 'OPTIONS'}}
    assert documented == registered


def test_security_schemes_and_public_operations(document: dict[str, Any]) -> None:
    schemes = document['components']['securitySchemes']
    assert schemes['bearer'] == {'type': 'http', 'scheme': 'bearer', 'description': schemes['bearer']['description']}
    assert document['security'] == [{'bearer': []}, {'session': []}]
    assert document['paths']['/api/v1/auth/token']['post']['security'] == []
    assert '401' in document['paths']['/api/v1/cases']['get']['responses']


def test_request_and_response_schemas(document: dict[str, Any]) -> None:
    paths = document['paths']
    start = paths['/api/v1/cases']['post']
    body = _resolve(document, start['requestBody']['content']['application/json']['schema'])
    assert set(body['properties']) == {'process_key', 'data', 'org_unit'} and body['required'] == ['process_key']
    created = _resolve(document, start['responses']['201']['content']['application/json']['schema'])
    assert {'id', 'number', 'public_code', 'tasks'} <= set(created['properties'])
    task = document['components']['schemas']['Task']
    # The contract's fields, then what the to-do list added (extended, never renamed).
    assert set(task['properties']) == {'id', 'name', 'title', 'case_id', 'case_number', 'candidate_group',
                                       'assignee', 'due_at', 'status', 'created_at', 'process_key', 'org_unit',
                                       'priority', 'risk_colour', 'owner', 'delegation_state', 'is_escalated',
                                       'completed_at'}
    deploy = paths['/api/v1/definitions']['post']
    assert set(deploy['requestBody']['content']) == {'application/json', 'multipart/form-data'}
    assert {'200', '201', '400', '401', '403'} <= set(deploy['responses'])
    error = document['components']['schemas']['Error']
    assert {'error', 'message', 'fields', 'problems'} <= set(error['properties'])
    tasks = paths['/api/v1/tasks']['get']
    view = next(p for p in tasks['parameters'] if p['name'] == 'view')
    assert view['in'] == 'query' and set(view['schema']['enum']) >= {'mine', 'group', 'overdue', 'due_soon'}
    complete = paths['/api/v1/tasks/{task_id}/complete']['post']
    assert {'200', '400', '401', '403', '404', '409', '422'} == set(complete['responses'])
