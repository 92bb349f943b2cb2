"""Tokens, lockout, anonymous callers and CSRF on session-authenticated writes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.directory import MAX_FAILED_LOGINS
from engine.models.users import User
from tests.api.conftest import REGISTER, Api, assert_error, start_demo_case
from tests.fixtures.directory import PASSWORD
from tests.fixtures.web import csrf_token


def _token(client: FlaskClient, username: str, password: str) -> tuple[int, dict[str, object]]:
    response = client.post('/api/v1/auth/token', json={'username': username, 'password': password})
    return response.status_code, response.get_json()


def test_token_authenticates_later_calls(client: FlaskClient, people: dict[str, User]) -> None:
    status, body = _token(client, 'staff', PASSWORD)
    assert status == 200 and set(body) == {'token'} and len(str(body['token'])) >= 32
    again = client.post('/api/v1/auth/token', json={'username': 'staff', 'password': PASSWORD})
    assert again.headers['Cache-Control'] == 'no-store'
    response = client.get('/api/v1/cases', headers={'Authorization': f'Bearer {body["token"]}'})
    assert response.status_code == 200 and response.get_json() == {'items': [], 'next': None}


def test_wrong_password_and_unknown_user_get_the_same_generic_401(client: FlaskClient,
                                                                  people: dict[str, User]) -> None:
    wrong = client.post('/api/v1/auth/token', json={'username': 'staff', 'password': 'nope1234'})
    unknown = client.post('/api/v1/auth/token', json={'username': 'nobody', 'password': 'nope1234'})
    first, second = assert_error(wrong, 401, 'login_failed'), assert_error(unknown, 401, 'login_failed')
    assert first == second
    assert 'staff' not in first['message']


def test_lockout_after_five_failures_is_committed(client: FlaskClient, people: dict[str, User],
                                                  session: Session) -> None:
    for attempt in range(1, MAX_FAILED_LOGINS):
        assert _token(client, 'staff', 'wrong-pass1')[0] == 401
        session.expire_all()
        # Each failure is counted in the database although the request "failed".
        assert session.get(User, people['staff'].id).failed_logins == attempt
    locked = client.post('/api/v1/auth/token', json={'username': 'staff', 'password': 'wrong-pass1'})
    generic = assert_error(locked, 401, 'login_failed')
    session.expire_all()
    assert session.get(User, people['staff'].id).locked_until_dt is not None
    refused = client.post('/api/v1/auth/token', json={'username': 'staff', 'password': PASSWORD})
    assert assert_error(refused, 401, 'login_failed') == generic
    assert _token(client, 'staff2', PASSWORD)[0] == 200  # other accounts are unaffected


@pytest.mark.parametrize('payload', [{}, {'username': 'staff'}, {'username': 'staff', 'password': 5},
                                     {'username': 'staff', 'password': PASSWORD, 'otp': '1'}, [], 'x'])
def test_token_request_is_validated(client: FlaskClient, people: dict[str, User], payload: object) -> None:
    assert_error(client.post('/api/v1/auth/token', json=payload), 400, 'invalid')


@pytest.mark.parametrize('headers', [{}, {'Authorization': 'Bearer not-a-token'}, {'Authorization': 'Basic eDp5'},
                                     {'Authorization': 'Bearer '}])
def test_anonymous_and_bad_tokens_get_401_json_not_a_redirect(client: FlaskClient, people: dict[str, User],
                                                              headers: dict[str, str]) -> None:
    for response in (client.get('/api/v1/tasks', headers=headers),
                     client.post('/api/v1/cases', json={'process_key': 'x'}, headers=headers)):
        assert 'Location' not in response.headers
        assert_error(response, 401, 'unauthorized')


def test_session_reads_need_no_csrf_token(login: Callable[[str], FlaskClient], people: dict[str, User],
                                          demo: object) -> None:
    client = login('staff')
    assert client.get('/api/v1/tasks?view=group').status_code == 200


def test_session_write_without_csrf_token_is_refused(login: Callable[[str], FlaskClient],
                                                     as_user: Callable[[str | None], Api],
                                                     people: dict[str, User], demo: object,
                                                     session: Session) -> None:
    task_id = start_demo_case(as_user('staff'))['tasks'][0]['id']
    client = login('staff')
    refused = client.post(f'/api/v1/tasks/{task_id}/claim')
    assert_error(refused, 400, 'csrf')
    refused = client.post('/api/v1/cases', json={'process_key': 'demo_intake', 'data': {}})
    assert_error(refused, 400, 'csrf')
    bad = client.post(f'/api/v1/tasks/{task_id}/claim', headers={'X-CSRFToken': 'forged'})
    assert_error(bad, 400, 'csrf')
    token = csrf_token(client, '/tasks')
    claimed = client.post(f'/api/v1/tasks/{task_id}/claim', headers={'X-CSRFToken': token})
    assert claimed.status_code == 200 and claimed.get_json()['assignee'] == people['staff'].id
    done = client.post(f'/api/v1/tasks/{task_id}/complete', json={'data': REGISTER}, headers={'X-CSRFToken': token})
    assert done.status_code == 200, done.get_json()


def test_bearer_token_writes_need_no_csrf_token(as_user: Callable[[str | None], Api], people: dict[str, User],
                                                demo: object) -> None:
    staff = as_user('staff')
    task_id = start_demo_case(staff)['tasks'][0]['id']
    assert staff.post(f'/tasks/{task_id}/claim').status_code == 200
