"""Browser sessions: idle timeout, absolute lifetime, rotation at login, server-side voiding, cookie flags,
security headers, the login rate limit and the TOTP second factor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from config import TestConfig as AppConfig
from engine.clock import FrozenClock, now
from engine.directory import AccountPolicy, change_password, configure_accounts
from engine.models.users import User
from tests.fixtures.directory import PASSWORD, Org
from tests.fixtures.web import csrf_token
from web.app import create_app
from web.auth.util import NONCE, LoginLimiter

COOKIE = 'session'


@pytest.fixture(autouse=True)
def _default_policy() -> Iterator[None]:
    """Apps made here may install another account policy; later tests get the default back."""
    yield
    configure_accounts(AccountPolicy())


class WallClock:
    """Stands in for time.time() in an app's session bookkeeping."""

    def __init__(self) -> None:
        self.seconds = 1_750_000_000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, delta: timedelta) -> None:
        self.seconds += delta.total_seconds()

    def install(self, app: Flask) -> WallClock:
        app.extensions['fengqiao.session_clock'] = self
        return self


@pytest.fixture
def wall(app: Flask) -> WallClock:
    return WallClock().install(app)


def _app(db_url: str, **settings: object) -> Flask:
    config = AppConfig(db_url)
    for name, value in settings.items():
        setattr(config, name, value)
    return create_app(config)


def _post_login(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    return client.post('/login', data={'username': username, 'password': password,
                                        'csrf_token': csrf_token(client)})


def _logged_in(client: FlaskClient) -> bool:
    return client.get('/tasks').status_code == 200


# -- idle timeout and lifetime -------------------------------------------------------------------------------

def test_idle_session_ends_after_30_minutes(client: FlaskClient, people: dict[str, User], wall: WallClock) -> None:
    _post_login(client, 'staff')
    wall.advance(timedelta(minutes=29))
    assert _logged_in(client)  # activity: the idle clock starts again
    wall.advance(timedelta(minutes=29))
    assert _logged_in(client)
    wall.advance(timedelta(minutes=30, seconds=1))
    response = client.get('/tasks')
    assert response.status_code == 302 and response.headers['Location'].startswith('/login')
    assert '登录已超时，请重新登录。' in client.get('/login').get_data(as_text=True)


def test_idle_timeout_is_configurable(db_url: str, people: dict[str, User]) -> None:
    app = _app(db_url, IDLE_MINUTES=5)
    wall = WallClock().install(app)
    client = app.test_client()
    _post_login(client, 'staff')
    wall.advance(timedelta(minutes=5, seconds=1))
    assert not _logged_in(client)


def test_session_ends_after_its_lifetime_however_active(client: FlaskClient, people: dict[str, User],
                                                        wall: WallClock) -> None:
    _post_login(client, 'staff')
    for _ in range(35):  # every 20 minutes for 11 h 40 min
        wall.advance(timedelta(minutes=20))
        assert _logged_in(client)
    wall.advance(timedelta(minutes=20, seconds=1))
    assert not _logged_in(client)


def test_moving_the_engine_clock_keeps_the_session(client: FlaskClient, people: dict[str, User],
                                                   clock: FrozenClock, wall: WallClock) -> None:
    # Tests and simulations move business time by days to fire timers; sessions age in wall time.
    _post_login(client, 'staff')
    clock.advance(timedelta(days=30))
    assert _logged_in(client)


# -- rotation and voiding ---------------------------------------------------------------------------------------

def test_each_login_gets_a_new_nonce_and_cookie(app: Flask, people: dict[str, User]) -> None:
    seen = []
    for _ in range(2):
        client = app.test_client()
        _post_login(client, 'staff')
        with client.session_transaction() as state:
            seen.append((state[NONCE], client.get_cookie(COOKIE).value))  # type: ignore[union-attr]
    assert seen[0][0] != seen[1][0] and seen[0][1] != seen[1][1]


def test_logout_voids_a_copy_of_the_cookie(app: Flask, client: FlaskClient, people: dict[str, User]) -> None:
    _post_login(client, 'staff')
    stolen = client.get_cookie(COOKIE).value  # type: ignore[union-attr]
    client.post('/logout', data={'csrf_token': csrf_token(client, '/tasks')})
    replay = app.test_client()
    replay.set_cookie(COOKIE, stolen)
    assert not _logged_in(replay)


def test_password_change_ends_every_session(client: FlaskClient, people: dict[str, User], session: Session) -> None:
    _post_login(client, 'staff')
    user = session.get(User, people['staff'].id)
    assert user is not None
    change_password(session, user, 'Neues-Passw0rt', actor=None)
    session.commit()
    assert not _logged_in(client)
    _post_login(client, 'staff', 'Neues-Passw0rt')
    assert _logged_in(client)


# -- cookies and headers ------------------------------------------------------------------------------------------

def test_session_cookie_is_httponly_and_lax_and_not_secure_over_http(client: FlaskClient,
                                                                    people: dict[str, User]) -> None:
    response = _post_login(client, 'staff')
    cookie = next(c for c in response.headers.getlist('Set-Cookie')
                  if c.startswith(f'{COOKIE}='))
    assert 'HttpOnly' in cookie and 'SameSite=Lax' in cookie and 'Secure' not in cookie


def test_session_cookie_is_secure_and_hsts_sent_when_served_over_https(db_url: str,
                                                                       people: dict[str, User]) -> None:
    client = _app(db_url, SESSION_COOKIE_SECURE=True).test_client()
    response = client.post('/login', base_url='https://localhost',
                           data={'username': 'staff', 'password': PASSWORD, 'csrf_token': csrf_token(client)})
    cookie = next(c for c in response.headers.getlist('Set-Cookie') if c.startswith(f'{COOKIE}='))
    assert 'Secure' in cookie and 'HttpOnly' in cookie
    assert response.headers['Strict-Transport-Security'].startswith('max-age=31536000')


def test_behind_a_proxy_the_forwarded_scheme_and_address_count(db_url: str, people: dict[str, User]) -> None:
    app = _app(db_url, PROXY_FIX=True, LOGIN_RATE_LIMIT=1)
    client = app.test_client()
    response = client.get('/login', headers={'X-Forwarded-Proto': 'https'})
    assert 'Strict-Transport-Security' in response.headers
    assert 'Strict-Transport-Security' not in client.get('/login').headers
    token = csrf_token(client)
    for address, expected in (('10.0.0.1', 200), ('10.0.0.1', 429), ('10.0.0.2', 200)):
        response = client.post('/login', headers={'X-Forwarded-For': address},
                               data={'username': 'staff', 'password': 'Wrong-pass1', 'csrf_token': token})
        assert response.status_code == expected, address


def test_security_headers_on_every_response(client: FlaskClient, people: dict[str, User]) -> None:
    for path in ('/login', '/tasks', '/static/css/app.css', '/api/v1/tasks', '/no-such-page'):
        headers = client.get(path).headers
        csp = headers['Content-Security-Policy']
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and 'unsafe-inline' not in csp, path
        assert "object-src 'none'" in csp and "base-uri 'self'" in csp, path
        assert headers['X-Content-Type-Options'] == 'nosniff' and headers['X-Frame-Options'] == 'DENY', path
        assert headers['Referrer-Policy'] == 'same-origin', path
        assert 'Strict-Transport-Security' not in headers, path
    assert client.get('/login').headers['Cache-Control'] == 'no-store'


# -- rate limit -------------------------------------------------------------------------------------------------------

def test_login_attempts_are_rate_limited_per_address_and_username(app: Flask, client: FlaskClient,
                                                                   people: dict[str, User]) -> None:
    ticks = [1000.0]
    # Three tries a minute here (10 by default), fewer than the lockout's five failures.
    app.extensions['fengqiao.login_limiter'] = LoginLimiter(3, 60, 60, clock=lambda: ticks[0])
    token = csrf_token(client)
    for _ in range(3):
        wrong = client.post('/login', data={'username': 'staff', 'password': 'x', 'csrf_token': token})
        assert wrong.status_code == 200
    limited = client.post('/login', data={'username': 'staff', 'password': PASSWORD, 'csrf_token': token})
    assert limited.status_code == 429 and limited.headers['Retry-After'] == '60'
    assert '尝试次数过多，请 60 秒后再试。' in limited.get_data(as_text=True)
    assert client.get('/tasks').status_code == 302  # the right password was not even tried
    assert _post_login(app.test_client(), 'staff2').status_code == 302  # another username, same address
    ticks[0] += 61
    assert _post_login(client, 'staff').status_code == 302


def test_token_endpoint_is_rate_limited_with_json(app: Flask, client: FlaskClient, people: dict[str, User]) -> None:
    app.extensions['fengqiao.login_limiter'] = LoginLimiter(2, 60, 60)
    body = {'username': 'staff', 'password': 'Wrong-pass1'}
    assert [client.post('/api/v1/auth/token', json=body).status_code for _ in range(2)] == [401, 401]
    limited = client.post('/api/v1/auth/token', json=body)
    assert limited.status_code == 429 and int(limited.headers['Retry-After']) > 0
    assert limited.get_json()['error'] == 'too_many_requests' and '尝试次数过多' in limited.get_json()['message']


def test_the_address_limit_stops_spraying_many_usernames(app: Flask, client: FlaskClient,
                                                         people: dict[str, User]) -> None:
    app.extensions['fengqiao.login_limiter'] = LoginLimiter(10, 3, 60)
    statuses = [client.post('/api/v1/auth/token', json={'username': f'user{n}', 'password': 'x'}).status_code
                for n in range(4)]
    assert statuses == [401, 401, 401, 429]


# -- TOTP --------------------------------------------------------------------------------------------------------------

def _enrol(client: FlaskClient, session: Session, username: str, clock: FrozenClock) -> pyotp.TOTP:
    page = client.get('/account/totp').get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page
    with client.session_transaction() as state:
        secret = state['fq_totp_enrolling']
    assert secret in page  # for typing it in by hand, during enrolment only
    totp = pyotp.TOTP(secret)
    response = client.post('/account/totp', data={'code': totp.at(now()),
                                                   'csrf_token': csrf_token(client, '/account/totp')})
    assert response.status_code == 302 and response.headers['Location'] == '/tasks'
    assert secret not in client.get('/account/totp').get_data(as_text=True)  # never shown again
    return totp


def test_enrolled_user_logs_in_with_password_then_code(client: FlaskClient, people: dict[str, User],
                                                       session: Session, clock: FrozenClock) -> None:
    _post_login(client, 'staff')
    totp = _enrol(client, session, 'staff', clock)
    assert session.scalars(sa.select(User.totp_secret).where(User.username == 'staff')).one() == totp.secret
    client.post('/logout', data={'csrf_token': csrf_token(client, '/tasks')})
    response = client.post('/login?next=/cases', data={'username': 'staff', 'password': PASSWORD,
                                                       'csrf_token': csrf_token(client)})
    assert response.headers['Location'] == '/login/verify'
    assert not _logged_in(client)  # the password alone is not a login
    clock.advance(timedelta(seconds=30))
    token = csrf_token(client, '/login/verify')
    wrong = client.post('/login/verify', data={'code': '12345x', 'csrf_token': token})
    assert '验证码错误或已使用，或账户已被锁定。' in wrong.get_data(as_text=True)
    right = client.post('/login/verify', data={'code': totp.at(now()), 'csrf_token': token})
    assert right.status_code == 302 and right.headers['Location'] == '/cases'
    assert _logged_in(client)


def test_verify_step_expires(client: FlaskClient, people: dict[str, User], session: Session,
                             clock: FrozenClock, wall: WallClock) -> None:
    _post_login(client, 'staff')
    totp = _enrol(client, session, 'staff', clock)
    client.post('/logout', data={'csrf_token': csrf_token(client, '/tasks')})
    _post_login(client, 'staff')
    token = csrf_token(client, '/login/verify')
    wall.advance(timedelta(minutes=5, seconds=1))
    clock.advance(timedelta(seconds=30))
    response = client.post('/login/verify', data={'code': totp.at(now()), 'csrf_token': token})
    assert response.headers['Location'] == '/login' and not _logged_in(client)


def test_api_token_is_refused_to_a_user_with_a_second_factor(client: FlaskClient, people: dict[str, User],
                                                             session: Session, clock: FrozenClock) -> None:
    _post_login(client, 'staff')
    _enrol(client, session, 'staff', clock)
    response = client.post('/api/v1/auth/token', json={'username': 'staff', 'password': PASSWORD})
    assert response.status_code == 401 and response.get_json()['error'] == 'login_failed'


def test_required_role_must_enrol_before_anything_else(db_url: str, people: dict[str, User],
                                                       create_member: Callable[..., User], org: Org,
                                                       session: Session, clock: FrozenClock) -> None:
    create_member('chief', 'supervisor', org.county)
    client = _app(db_url, TOTP_REQUIRED_ROLES='supervisor, admin').test_client()
    response = _post_login(client, 'chief')
    assert response.headers['Location'] == '/account/totp'
    for path in ('/tasks', '/cases'):
        assert client.get(path).headers['Location'] == '/account/totp', path
    assert client.get('/api/v1/tasks').status_code == 403
    _enrol(client, session, 'chief', clock)
    assert _logged_in(client)
    assert _post_login(client.application.test_client(), 'staff').headers['Location'] == '/tasks'
