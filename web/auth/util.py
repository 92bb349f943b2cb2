"""Session bookkeeping (login time, last activity, per-login nonce) and the login rate limiter."""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, flash, jsonify, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_login import login_user

from engine.models.users import User

#: session keys of this module (flask-login keeps its own ``_user_id``, ``_id``, ``_fresh``)
LOGIN_AT, SEEN_AT, NONCE, VERSION = 'fq_login_at', 'fq_seen_at', 'fq_nonce', 'fq_version'
#: set while a user whose role needs a second factor has yet to enrol one: only enrolment is allowed
MUST_ENROL = 'fq_must_enrol'
#: a login waiting for its TOTP code: ``{'user': id, 'at': epoch seconds, 'next': path}``
PENDING = 'fq_pending'
#: how long the TOTP step may take after the password was accepted
PENDING_SECONDS = 300
#: endpoints that change credentials, rate limited per IP address and username
LIMITED_ENDPOINTS = frozenset({'auth.login', 'auth.verify_login', 'api.create_token'})


def wall_time() -> float:
    """Seconds since the epoch for session ages.

    Not the engine's clock: tests (and simulations) move that one by days to fire timers, and a session's
    age is about the person at the keyboard. An app may carry its own in ``extensions`` (tests do).
    """
    clock: Callable[[], float] = current_app.extensions.get('fengqiao.session_clock', time.time)
    return clock()


def fresh_session() -> None:
    """Empty the session but keep the chosen language (nothing secret about it)."""
    lang = session.get('lang')
    session.clear()
    if lang:
        session['lang'] = lang


def start_session(user: User, *, must_enrol: bool = False) -> None:
    """Log ``user`` in on a fresh session, so a session planted before login is worthless (fixation).

    A new random nonce changes the signed cookie on every login even for the same user, and the user's
    ``session_version`` lets the server void the session later (logout, password change).
    """
    fresh_session()
    stamp = wall_time()
    session[NONCE] = secrets.token_urlsafe(16)
    session[VERSION] = user.session_version
    session[LOGIN_AT] = session[SEEN_AT] = stamp
    if must_enrol:
        session[MUST_ENROL] = True
    login_user(user)


def session_expired(app: Flask) -> bool:
    """Whether the logged-in browser session is past its idle timeout or absolute lifetime."""
    stamp = wall_time()
    login_at, seen_at = session.get(LOGIN_AT), session.get(SEEN_AT)
    if not isinstance(login_at, int | float) or not isinstance(seen_at, int | float):
        return True  # a session from before these keys existed, or a forged one: start again
    idle = app.config['IDLE_MINUTES'] * 60
    lifetime = app.config['SESSION_HOURS'] * 3600
    return bool(stamp - seen_at > idle or stamp - login_at > lifetime)


def enforce_session_limits() -> None:
    """Before each request: end an idle or too old session, else note the activity."""
    if '_user_id' not in session:
        return
    if session_expired(current_app):
        fresh_session()
        flash(gettext('登录已超时，请重新登录。'), 'info')
        return
    session[SEEN_AT] = wall_time()


def session_matches(user: User) -> bool:
    """Whether the session was started after the user's last logout or password change."""
    return bool(session.get(VERSION) == user.session_version)


class SlidingWindow:
    """Counts attempts per key in the last ``window`` seconds; in-process and thread-safe.

    Per process on purpose: it slows one client down cheaply. With several gunicorn workers each keeps its
    own counts, so an attacker gets ``limit`` tries per worker; the account lockout, kept in the database,
    is the guard that holds across processes.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[Any, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: Any) -> float | None:
        """Record an attempt; return the seconds to wait if it is over the limit (then it is not counted)."""
        stamp = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= stamp - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return hits[0] + self.window - stamp
            hits.append(stamp)
            if len(self._hits) > 10_000:
                self._forget_idle(stamp)
            return None

    def _forget_idle(self, stamp: float) -> None:
        """Drop keys with no recent attempt, so a flood of usernames cannot grow memory without end."""
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= stamp - self.window]:
            del self._hits[key]


class LoginLimiter:
    """One window per IP address and username, one per IP address alone."""

    def __init__(self, per_user: int, per_ip: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_user = SlidingWindow(per_user, window, clock)
        self.per_ip = SlidingWindow(per_ip, window, clock)

    def hit(self, address: str, username: str) -> float | None:
        """Record an attempt; return the seconds to wait when either window is full."""
        wait = self.per_ip.hit(address)
        if wait is None:
            wait = self.per_user.hit((address, username.strip().lower()))
        return wait


def init_login_limiter(app: Flask) -> None:
    """Give ``app`` its limiter (a new app, a new count: tests and processes do not share)."""
    app.extensions['fengqiao.login_limiter'] = LoginLimiter(
        app.config['LOGIN_RATE_LIMIT'], app.config['LOGIN_RATE_LIMIT_PER_IP'], app.config['LOGIN_RATE_WINDOW'])


def login_limiter() -> LoginLimiter:
    """The current app's limiter."""
    limiter: LoginLimiter = current_app.extensions['fengqiao.login_limiter']
    return limiter


def _attempted_username() -> str:
    if request.is_json:
        body = request.get_json(silent=True)
        name = body.get('username') if isinstance(body, dict) else None
        return name if isinstance(name, str) else ''
    pending = session.get(PENDING)
    if request.endpoint == 'auth.verify_login' and isinstance(pending, dict):
        return f'#{pending.get("user")}'
    return request.form.get('username', '')


def limit_login_attempts() -> ResponseReturnValue | None:
    """Before each request: answer 429 with Retry-After when a client tries credentials too often."""
    if request.method != 'POST' or request.endpoint not in LIMITED_ENDPOINTS:
        return None
    wait = login_limiter().hit(request.remote_addr or '-', _attempted_username())
    if wait is None:
        return None
    seconds = max(1, math.ceil(wait))
    message = gettext('尝试次数过多，请 %(seconds)s 秒后再试。', seconds=seconds)
    if request.path.startswith('/api/'):
        response = jsonify(error='too_many_requests', message=message, fields={})
    else:
        response = current_app.make_response(render_template('error.html', status=429, message=message))
    response.status_code = 429
    response.headers['Retry-After'] = str(seconds)
    return response
