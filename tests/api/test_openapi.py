"""The OpenAPI document: valid OpenAPI 3, every route of the API in it, each with schemas and valid examples."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate

from web.api.openapi import openapi_path, schema_example
from web.api.schemas import (
    EXAMPLE_START_DATA,
    EmptyRequestSchema,
    StartCaseRequestSchema,
    StartedCaseSchema,
    TaskSchema,
)


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


# -- coverage: schemas and examples on every operation ---------------------------------------------------------

def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document['paths'].items()
            for method, operation in item.items()]


def _check_example(document: dict[str, Any], schema: dict[str, Any], example: Any, where: str) -> None:
    """``example`` is valid for ``schema`` (its ``$ref``s resolved in the document), formats included."""
    root = {**schema, 'components': document['components']}
    errors = [e.message for e in OAS30Validator(root, format_checker=oas30_format_checker).iter_errors(example)]
    assert not errors, f'{where}: {errors}'


def _properties(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    return set(_resolve(document, schema).get('properties', {}))


def test_every_operation_has_a_success_response_with_a_schema(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        successes = {code: response for code, response in operation['responses'].items() if code.startswith('2')}
        assert successes, f'{method} {path}: no 2xx response'
        for code, response in successes.items():
            assert response['content'], f'{method} {path} {code}: no content'
            for media_type, media in response['content'].items():
                assert media.get('schema'), f'{method} {path} {code} {media_type}: no schema'


def test_every_json_success_response_has_a_complete_valid_example(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for code, response in operation['responses'].items():
            media = response['content'].get('application/json')
            if not code.startswith('2') or media is None:
                continue
            where = f'{method} {path} {code}'
            assert 'example' in media, f'{where}: no example'
            _check_example(document, media['schema'], media['example'], where)
            # A response carries every field its schema lists, so its example must show every one.
            missing = _properties(document, media['schema']) - set(media['example'])
            assert not missing, f'{where}: example lacks {sorted(missing)}'


def test_every_request_body_has_a_valid_example(document: dict[str, Any]) -> None:
    bodies = [(f'{method} {path}', operation['requestBody']) for path, method, operation in _operations(document)
              if 'requestBody' in operation]
    assert len(bodies) >= 15
    for where, body in bodies:
        for media_type, media in body['content'].items():
            assert 'example' in media, f'{where} {media_type}: no example'
            _check_example(document, media['schema'], media['example'], f'{where} {media_type}')


def test_every_error_response_has_the_error_shape_and_an_example(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for code, response in operation['responses'].items():
            if code.startswith('2'):
                continue
            media = response['content']['application/json']
            assert media['schema'] == {'$ref': '#/components/schemas/Error'}, f'{method} {path} {code}'
            _check_example(document, media['schema'], media['example'], f'{method} {path} {code}')


def test_every_parameter_has_a_schema(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for parameter in operation['parameters']:
            assert parameter['in'] in {'path', 'query', 'header'} and parameter['name']
            assert parameter.get('schema', {}).get('type'), f'{method} {path} {parameter["name"]}: no schema'


def test_path_ids_have_the_bounds_the_router_accepts(app: Flask, document: dict[str, Any]) -> None:
    ids = [p for _, _, operation in _operations(document) for p in operation['parameters'] if p['in'] == 'path']
    assert ids and all(p['schema'] == {'type': 'integer', 'minimum': 0, 'maximum': 2**31 - 1} for p in ids)
    client = app.test_client()
    # One more than the documented maximum names no route at all.
    assert client.get(f'/api/v1/cases/{2**31}').status_code == 404


def test_writes_document_the_csrf_refusal_and_the_token_its_rate_limit(document: dict[str, Any]) -> None:
    delete = document['paths']['/api/v1/filters/{filter_id}']['delete']
    assert 'CSRF' in delete['responses']['400']['description']
    token = document['paths']['/api/v1/auth/token']['post']['responses']
    assert token['429']['content']['application/json']['example']['error'] == 'too_many_requests'
    download = document['paths']['/api/v1/cases/{case_id}/attachments/{attachment_id}/content']['get']
    assert 'application/pdf' in download['responses']['200']['content']
    assert 'application/json' not in download['responses']['200']['content']


def test_examples_are_composed_from_the_schemas_field_examples() -> None:
    assert schema_example(StartCaseRequestSchema) == {
        'process_key': 'dispute_mediation', 'data': EXAMPLE_START_DATA, 'org_unit': '430922'}
    started = schema_example(StartedCaseSchema)
    assert started['org_unit'] == {'code': '430922101', 'name': '桃花江镇司法所'}
    assert [set(task) for task in started['tasks']] == [set(TaskSchema.Meta.fields)]
    assert schema_example(EmptyRequestSchema) == {}
