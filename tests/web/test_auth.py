"""Logging in and out: the generic failure message, lockout, session rotation, safe redirects, demo mode."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.models.audit import AuditEvent
from engine.models.users import User
from tests.fixtures.directory import PASSWORD
from tests.fixtures.web import csrf_token
from tests.web.conftest import page, text_of

GENERIC = '用户名或密码错误，或账户已被锁定。'


def _login(client: FlaskClient, username: str, password: str, path: str = '/login') -> object:
    return client.post(path, data={'username': username, 'password': password, 'csrf_token': csrf_token(client)})


def test_login_form_has_exactly_the_expected_fields(client: FlaskClient) -> None:
    doc = page(client.get('/login'))
    form = doc.xpath('//form[.//input[@name="password"]]')[0]
    assert sorted(form.xpath('.//input/@name')) == ['csrf_token', 'password', 'username']
    for name in ('username', 'password'):
        field_id = form.xpath(f'.//input[@name="{name}"]/@id')[0]
        assert form.xpath(f'.//label[@for="{field_id}"]'), f'{name} has no label'


def test_login_success_lands_on_the_todo_list(client: FlaskClient, people: dict[str, User]) -> None:
    response = _login(client, 'staff', PASSWORD)
    assert response.status_code == 302 and response.headers['Location'] == '/tasks'
    body = client.get('/tasks').get_data(as_text=True)
    assert '刘晓燕' in body and '桃花江镇司法所' in body


@pytest.mark.parametrize(('username', 'password'), [('staff', 'wrong-pass1'), ('nobody', PASSWORD), ('', '')])
def test_every_login_failure_gets_the_same_message(client: FlaskClient, people: dict[str, User],
                                                   username: str, password: str) -> None:
    response = _login(client, username, password)
    assert response.status_code == 200
    assert GENERIC in response.get_data(as_text=True)
    assert client.get('/tasks').status_code == 302  # still anonymous


def test_failed_login_is_counted_in_the_database(client: FlaskClient, people: dict[str, User],
                                                 session: Session) -> None:
    _login(client, 'staff', 'wrong-pass1')
    assert session.get(User, people['staff'].id, populate_existing=True).failed_logins == 1


def test_five_failures_lock_the_account_even_for_the_right_password(client: FlaskClient, people: dict[str, User],
                                                                     session: Session) -> None:
    for _ in range(5):
        _login(client, 'staff', 'wrong-pass1')
    user = session.get(User, people['staff'].id, populate_existing=True)
    assert user.locked_until_dt is not None
    response = _login(client, 'staff', PASSWORD)
    assert response.status_code == 200 and GENERIC in response.get_data(as_text=True)


def test_login_rotates_the_session(client: FlaskClient, people: dict[str, User]) -> None:
    with client.session_transaction() as planted:
        planted['planted_by_attacker'] = 'x'
    _login(client, 'staff', PASSWORD)
    with client.session_transaction() as current:
        assert 'planted_by_attacker' not in current and current.get('_user_id') == str(people['staff'].id)


@pytest.mark.parametrize(('target', 'expected'), [
    ('/tasks?view=group', '/tasks?view=group'),
    ('//evil.example/x', '/tasks'),
    ('https://evil.example/', '/tasks'),
    ('/\\evil.example', '/tasks'),
    ('javascript:alert(1)', '/tasks'),
])
def test_login_follows_next_only_to_local_paths(client: FlaskClient, people: dict[str, User], target: str,
                                                expected: str) -> None:
    response = client.post('/login', query_string={'next': target},
                           data={'username': 'staff', 'password': PASSWORD, 'csrf_token': csrf_token(client)})
    assert response.headers['Location'] == expected


def test_anonymous_users_are_sent_to_login_with_next(client: FlaskClient) -> None:
    for path in ('/', '/tasks', '/tasks/1', '/cases', '/cases/1', '/cases/new'):
        response = client.get(path)
        assert response.status_code == 302, path
        location = urlsplit(response.headers['Location'])
        assert location.path == '/login' and parse_qs(location.query)['next'] == [path], path


def test_logout_is_a_post_that_ends_the_session(client: FlaskClient, login: Callable[[str], FlaskClient],
                                                people: dict[str, User]) -> None:
    login('staff')
    assert client.get('/logout').status_code == 405
    response = client.post('/logout', data={'csrf_token': csrf_token(client, '/tasks')})
    assert response.status_code == 302 and response.headers['Location'] == '/login'
    assert client.get('/tasks').status_code == 302


def test_demo_accounts_are_listed_only_in_demo_mode(app: Flask, client: FlaskClient) -> None:
    app.config['DEMO_MODE'] = True
    shown = text_of(page(client.get('/login')))
    assert 'demo1234' in shown and 'lsj_staff' in shown
    app.config['DEMO_MODE'] = False
    hidden = client.get('/login').get_data(as_text=True)
    assert 'demo1234' not in hidden and 'lsj_staff' not in hidden


def test_login_page_in_english(client: FlaskClient, people: dict[str, User]) -> None:
    client.get('/login?lang=en')
    response = _login(client, 'staff', 'wrong-pass1')
    body = response.get_data(as_text=True)
    assert 'Incorrect username or password, or the account is locked.' in body
    assert GENERIC not in body


def test_unlock_user_command_lifts_the_lockout_and_is_audited(app: Flask, client: FlaskClient,
                                                              people: dict[str, User], session: Session) -> None:
    for _ in range(5):
        _login(client, 'staff', 'wrong-pass1')
    assert GENERIC in _login(client, 'staff', PASSWORD).get_data(as_text=True)  # type: ignore[attr-defined]
    with app.app_context():  # as `flask --app wsgi unlock-user staff` runs it
        result = app.test_cli_runner().invoke(args=['unlock-user', 'staff'])
    assert result.exit_code == 0 and '已解锁用户 staff。' in result.output
    assert _login(client, 'staff', PASSWORD).status_code == 302  # type: ignore[attr-defined]
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'user.unlocked')).one()
    assert event.after == {'username': 'staff'} and event.actor_id is None


def test_unlock_user_command_names_an_unknown_user(app: Flask, people: dict[str, User]) -> None:
    with app.app_context():
        result = app.test_cli_runner().invoke(args=['unlock-user', 'nobody'])
    assert result.exit_code != 0 and '用户不存在：nobody' in result.output


def test_lockout_hint_follows_the_settings(app: Flask, client: FlaskClient) -> None:
    app.config.update(MAX_FAILED_LOGINS=3, LOCKOUT_MINUTES=20)
    assert '连续输错 3 次密码，账户将锁定 20 分钟。' in text_of(page(client.get('/login')))


def test_locked_and_unknown_accounts_get_the_same_answer(client: FlaskClient, people: dict[str, User]) -> None:
    for _ in range(5):
        _login(client, 'staff', 'wrong-pass1')
    locked = _login(client, 'staff', PASSWORD).get_data(as_text=True)  # type: ignore[attr-defined]
    unknown = _login(client, 'nobody', PASSWORD).get_data(as_text=True)  # type: ignore[attr-defined]
    assert GENERIC in locked and GENERIC in unknown
