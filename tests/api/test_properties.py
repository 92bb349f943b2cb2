"""Property-based tests of the REST API: no generated input yields a 500, every rejection is a clear 4xx in the
``{"error", "message", "fields"}`` shape, and a rejected request writes nothing.

Each test shares one database across its examples (the fixtures are function-scoped): a request that happens to
be accepted may change the state the next example sees, which is fine; only rejections must leave it untouched.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from engine.attachments import ACCEPTED_KINDS
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Attachment, Comment
from engine.models.definitions import ProcessDefinition
from engine.models.filters import SavedFilter
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.api.conftest import Api, start_demo_case
from tests.engine.test_upload_fuzz import DEMO, HOSTILE
from tests.fixtures import files

ROOT = Path(__file__).resolve().parents[2]
BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Strings a careless client sends: empty, blank, control characters, lone surrogates (legal in JSON escapes,
# not encodable as UTF-8), very long, numbers and dates in words.
def _repeat(spec: tuple[str, int]) -> str:
    return spec[0] * spec[1]


HUGE = st.sampled_from([('x', 70_000), ('案', 20_000), ('9', 5_000), (' ', 10_000)]).map(_repeat)
SURROGATE = st.text(alphabet=st.characters(categories=['Cs']), min_size=1, max_size=3)
TEXT = st.one_of(st.text(max_size=40), HUGE, SURROGATE,
                 st.sampled_from(['', ' ', '\x00', 'null', 'true', '1', '-1', '2025-02-30', '0001-01-01',
                                  '9999-12-31', 'demo_intake', '430922198001010010', '../../etc/passwd',
                                  "' OR 1=1 --", '<script>', '1e309']))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True), TEXT)
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12),
                                                                                             inner, max_size=4),
                    max_leaves=12)
KEYS = st.one_of(st.text(max_size=12), SURROGATE)


def _obj(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
         ) -> st.SearchStrategy[Any]:
    """A body that is usually an object with the endpoint's keys (any of them missing, any value, extra keys),
    sometimes any JSON value at all."""
    shaped = st.fixed_dictionaries({}, optional={**required, **optional}).flatmap(
        lambda d: st.dictionaries(KEYS, JSON, max_size=2).map(lambda extra: {**extra, **d}))
    return st.one_of(shaped, shaped, shaped, JSON)


def _counts(session: Session) -> tuple[Any, ...]:
    """Every row count and piece of task/instance state a rejected request must leave as it was."""
    session.expire_all()
    counts = tuple(session.scalar(sa.select(sa.func.count()).select_from(model))
                   for model in (Case, ProcessInstance, HumanTask, AuditEvent, ProcessDefinition, SavedFilter,
                                 Comment, Attachment, Job))
    revisions = tuple(session.scalars(sa.select(ProcessInstance.revision).order_by(ProcessInstance.id)))
    tasks = tuple(session.execute(sa.select(HumanTask.id, HumanTask.status, HumanTask.assignee_id,
                                            HumanTask.owner_id).order_by(HumanTask.id)).all())
    return counts, revisions, tasks


def _encode(body: Any) -> str:
    # allow_nan: NaN and Infinity are what some clients' encoders emit, and Python's parser takes them.
    return json.dumps(body, allow_nan=True)


def _check(session: Session, send: Callable[[], TestResponse]) -> TestResponse:
    """Send, then: no 5xx; a 4xx is JSON in the error shape and changed nothing."""
    before = _counts(session)
    response = send()
    if currently_in_test_context():  # the spread of statuses shows under --hypothesis-show-statistics
        event(f'status {response.status_code}')
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert response.is_json, response.get_data(as_text=True)[:300]
        body = response.get_json()
        assert {'error', 'message', 'fields'} <= body.keys(), body
        assert isinstance(body['message'], str) and body['message']
        assert isinstance(body['fields'], dict)
        assert _counts(session) == before, (response.status_code, body)
    return response


def _query(args: dict[str, str]) -> str:
    """The query string as a hostile client sends it: lone surrogates become invalid UTF-8 escapes."""
    return '&'.join(f'{quote(k.encode("utf-8", "surrogatepass"))}={quote(v.encode("utf-8", "surrogatepass"))}'
                    for k, v in args.items())


def _post(api: Api, path: str, body: Any) -> Callable[[], TestResponse]:
    return lambda: api.post(path, data=_encode(body), content_type='application/json')


@pytest.fixture
def staff(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> Api:
    return as_user('staff')


@pytest.fixture
def case(staff: Api) -> dict[str, Any]:
    return start_demo_case(staff)


@given(body=_obj({'process_key': st.one_of(st.just('demo_intake'), TEXT, JSON)},
                 {'data': st.one_of(JSON, st.dictionaries(st.sampled_from(
                     ['person_name', 'id_number', 'received_on', 'summary']), JSON)),
                  'org_unit': st.one_of(TEXT, JSON)}))
@BOUNDED
def test_start_case_never_fails_and_rejections_write_nothing(staff: Api, session: Session, body: Any) -> None:
    _check(session, _post(staff, '/cases', body))


@given(action=st.sampled_from(['complete', 'claim', 'unclaim', 'assign', 'delegate', 'resolve']),
       body=_obj({}, {'data': st.one_of(JSON, st.dictionaries(st.sampled_from(
                      ['visit_count', 'risk_level', 'findings']), JSON)),
                      'assignee': JSON, 'delegate': JSON, 'note': st.one_of(TEXT, JSON)}),
       task=st.one_of(st.just(None), st.integers(min_value=0, max_value=2**63)))
@BOUNDED
def test_task_actions_never_fail_and_rejections_write_nothing(staff: Api, session: Session, case: dict[str, Any],
                                                              action: str, body: Any, task: int | None) -> None:
    task_id = case['tasks'][0]['id'] if task is None else task
    _check(session, _post(staff, f'/tasks/{task_id}/{action}', body))


@given(args=st.dictionaries(st.sampled_from(['view', 'sort', 'filter', 'cursor', 'limit', 'process', 'stage',
                                             'org_unit', 'risk_colour', 'due_from', 'due_to', 'created_from',
                                             'created_to', 'q', 'x']) | st.text(max_size=8),
                            st.one_of(TEXT, st.integers().map(str)), max_size=6),
       path=st.sampled_from(['/tasks', '/tasks/counts', '/cases', '/definitions', '/filters']))
@BOUNDED
def test_list_queries_never_fail(staff: Api, session: Session, case: dict[str, Any], args: dict[str, str],
                                 path: str) -> None:
    response = _check(session, lambda: staff.get(path, query_string=_query(args)))
    if response.status_code == 404:
        # A number in ``filter`` names a saved filter; none exists here, and an unknown id is a 404.
        assert path == '/tasks' and 'filter' in args, response.get_json()
        assert response.get_json()['message'] == '筛选不存在'
        return
    assert response.status_code in (200, 400), response.get_json()


@given(body=_obj({'source': st.one_of(TEXT, JSON, st.sampled_from(['<bpmn:definitions/>', '<?xml version="1.0"?>']))},
                 {'accept_warnings': JSON}),
       path=st.sampled_from(['/definitions', '/definitions/validate']))
@BOUNDED
def test_deploy_and_validate_never_fail(as_user: Callable[[str | None], Api], people: dict[str, User],
                                        session: Session, body: Any, path: str) -> None:
    response = _check(session, _post(as_user('designer'), path, body))
    assert response.status_code in (200, 400, 409), response.get_json()


@given(body=_obj({'name': st.one_of(TEXT, JSON), 'view': st.one_of(st.sampled_from(['mine', 'group', 'all']), JSON)},
                 {'criteria': st.one_of(JSON, st.dictionaries(st.sampled_from(
                     ['process', 'stage', 'org_unit', 'risk_colour', 'due_from', 'due_to', 'created_from',
                      'created_to', 'text']), JSON)),
                  'sort': st.one_of(st.sampled_from(['due', 'priority', 'created']), JSON),
                  'share_group': st.one_of(TEXT, JSON)}))
@BOUNDED
def test_save_filter_never_fails_and_rejections_write_nothing(staff: Api, session: Session, body: Any) -> None:
    _check(session, _post(staff, '/filters', body))


@given(body=_obj({'body': st.one_of(TEXT, JSON)}, {'task_id': JSON}),
       case_id=st.one_of(st.just(None), st.integers(min_value=0, max_value=2**63)))
@BOUNDED
def test_add_comment_never_fails_and_rejections_write_nothing(staff: Api, session: Session, case: dict[str, Any],
                                                              body: Any, case_id: int | None) -> None:
    _check(session, _post(staff, f'/cases/{case["id"] if case_id is None else case_id}/comments', body))


@given(content=st.one_of(st.binary(max_size=2048), st.sampled_from([files.PDF, files.EXE, files.HTML, b''])),
       name=st.one_of(st.text(max_size=40), HUGE,
                      st.sampled_from(['a.pdf', '.pdf', 'a.exe', 'pdf', '../a.pdf', 'CON.pdf'])),
       form=st.dictionaries(st.sampled_from(['task_id', 'note', 'body', 'csrf_token']) | st.text(max_size=8),
                            st.text(max_size=30) | st.integers().map(str), max_size=3))
@BOUNDED
def test_attachment_upload_never_fails_and_rejections_write_nothing(staff: Api, session: Session,
                                                                    case: dict[str, Any], content: bytes, name: str,
                                                                    form: dict[str, str]) -> None:
    def send() -> TestResponse:
        data: dict[str, Any] = {**form, 'file': (io.BytesIO(content), name)}
        return staff.post(f'/cases/{case["id"]}/attachments', data=data, content_type='multipart/form-data')
    response = _check(session, send)
    if response.status_code == 201:  # only content that really is one of the accepted kinds gets in
        assert response.get_json()['content_type'] in {kind.content_type for kind in ACCEPTED_KINDS}
        assert content.startswith((b'%PDF-', b'\xff\xd8\xff', b'\x89PNG', b'PK\x03\x04')), content[:16]


@pytest.mark.parametrize('raw', [
    '{"process_key": "\\ud800"}',  # a lone surrogate: valid JSON escape, not encodable as UTF-8
    '{"process_key": "demo_intake", "data": {"summary": "\\udfff"}}',
    '{"process_key": "demo_intake", "data": {"\\ud800": 1}}',
    '{"process_key": "demo_intake", "data": {"visit_count": NaN}}',  # not JSON, but Python parses it
    '{"process_key": "demo_intake", "data": {"visit_count": -Infinity}}',
    '[' * 100_000 + ']' * 100_000,  # deeper than the parser's recursion limit
    '{"data": ' * 5_000 + '{}' + '}' * 5_000,
])
def test_bodies_no_database_can_store_are_a_clean_400(staff: Api, session: Session, raw: str) -> None:
    response = _check(session, lambda: staff.post('/cases', data=raw, content_type='application/json'))
    assert response.status_code == 400
    assert list(response.get_json()['fields']) == ['_schema']


@pytest.mark.parametrize('path', ['/definitions', '/definitions/validate'])
@pytest.mark.parametrize('name', ['random bytes', 'truncated demo', 'over the size limit', 'deep 10k',
                                  'billion laughs', 'xxe file', 'external dtd', 'doctype in utf-16', 'two roots'])
def test_hostile_upload_through_the_api_is_refused_cleanly(as_user: Callable[[str | None], Api],
                                                           people: dict[str, User], session: Session,
                                                           name: str, path: str) -> None:
    source = HOSTILE[name]()
    raw = source.encode('utf-8') if isinstance(source, str) else source
    designer = as_user('designer')
    upload = {'file': (io.BytesIO(raw), 'fuzz.bpmn'), 'accept_warnings': 'true'}
    response = _check(session, lambda: designer.post(path, data=upload, content_type='multipart/form-data'))
    body = response.get_json()
    if path == '/definitions':  # deploy: a 400 carrying the report, nothing stored (checked by _check)
        assert response.status_code == 400 and body['error'] == 'invalid_definition', body
    else:  # validate: the report itself
        assert response.status_code == 200 and body['errors'] and not body['valid'], body
    assert 'root:' not in response.get_data(as_text=True)


def test_utf16_upload_through_the_api_is_deployed(as_user: Callable[[str | None], Api], people: dict[str, User],
                                                  session: Session) -> None:
    # Used to answer 500: the report was clean but storing decoded the bytes as UTF-8.
    source = DEMO.decode('utf-8').replace('encoding="UTF-8"', 'encoding="UTF-16"', 1).encode('utf-16')
    upload = {'file': (io.BytesIO(source), 'demo.bpmn'), 'accept_warnings': 'true'}
    response = as_user('designer').post('/definitions', data=upload, content_type='multipart/form-data')
    assert response.status_code == 201, response.get_json()
    assert response.get_json()['key'] == 'demo_intake'


def test_configured_attachment_limit_applies_through_the_api(app: Flask, staff: Api, session: Session,
                                                             case: dict[str, Any]) -> None:
    app.config['ATTACHMENT_MAX_BYTES'] = 1024
    path = f'/cases/{case["id"]}/attachments'

    def upload(size: int) -> Callable[[], TestResponse]:
        content = files.PDF + b'0' * (size - len(files.PDF))
        return lambda: staff.post(path, data={'file': (io.BytesIO(content), 'a.pdf')},
                                  content_type='multipart/form-data')
    over = _check(session, upload(1025))
    assert over.status_code == 400 and over.get_json()['fields'] == {'file': ['文件过大：附件不能超过 1 KB。']}
    at_limit = _check(session, upload(1024))
    assert at_limit.status_code == 201 and at_limit.get_json()['size'] == 1024


def test_attachment_limit_and_request_cap_come_from_the_environment() -> None:
    # Config reads the variable when it is imported: ask a fresh interpreter.
    script = 'import config; print(config.Config.ATTACHMENT_MAX_BYTES, config.Config.MAX_CONTENT_LENGTH)'
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True, cwd=ROOT,
                            env={**os.environ, 'FENGQIAO_ATTACHMENT_MAX_BYTES': '2048'}, timeout=60)
    assert result.stdout.split() == ['2048', str(2048 + 1024 * 1024)]


@pytest.mark.parametrize('big', [2**31, 2**63, 10**30])
@pytest.mark.parametrize(('method', 'path'), [('get', '/cases/{big}'), ('post', '/cases/{big}/comments'),
                                              ('get', '/tasks/{big}'), ('post', '/tasks/{big}/claim')])
def test_ids_beyond_the_integer_columns_are_404(staff: Api, session: Session, method: str, path: str,
                                                big: int) -> None:
    # On PostgreSQL an id past int4 in a query is a DataError: it used to answer 500 there.
    url = path.format(big=big)
    if method == 'get':
        response = _check(session, lambda: staff.get(url))
    else:
        response = _check(session, lambda: staff.post(url, data='{"body": "意见"}', content_type='application/json'))
    # A POST may meet a GET-only catch-all route first: 405, equally clean.
    assert response.status_code in ((404,) if method == 'get' else (404, 405)), (url, response.get_json())
