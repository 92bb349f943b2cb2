"""Login state: flask-login for the browser, bearer tokens for the API; the caller's Scope per request."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_login import LoginManager, current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.access import Scope, load_scope
from engine.directory import AccountPolicy, configure_accounts, session_holder, token_holder
from engine.models.users import User
from web.auth.util import MUST_ENROL, enforce_session_limits, init_login_limiter, limit_login_attempts, session_matches
from web.core.database import db

login_manager = LoginManager()
login_manager.login_view = 'auth.login'
login_manager.login_message = '请先登录。'
login_manager.session_protection = 'strong'


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    holder = session_holder(db(), int(user_id)) if user_id.isdigit() else None
    # A session started before the user's last logout or password change is void, wherever its cookie is.
    if holder is None or not session_matches(holder[0]):
        return None
    user, g.scope = holder
    return user


@login_manager.request_loader
def _load_user_from_token(req: object) -> User | None:
    header = request.headers.get('Authorization', '')
    if not header.startswith('Bearer '):
        return None
    holder = token_holder(db(), header[len('Bearer '):].strip())
    if holder is None:
        return None
    g.token_auth = True
    user, g.scope = holder
    return user


# flask-login's UserMixin is not on the model (engine/ has no Flask); these give it what it asks for.
User.is_authenticated = True  # type: ignore[attr-defined]
User.is_anonymous = False  # type: ignore[attr-defined]
User.get_id = lambda self: str(self.id)  # type: ignore[attr-defined]


def init_auth(app: Flask) -> None:
    """Install flask-login, the session limits, the login rate limiter and the account policy on ``app``."""
    if app.config.get('PROXY_FIX'):
        # Behind one reverse proxy: the client's address (rate limit) and scheme (Secure cookies, HSTS).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    login_manager.init_app(app)
    configure_accounts(_account_policy(app))
    init_login_limiter(app)
    app.before_request(limit_login_attempts)
    app.before_request(enforce_session_limits)
    app.before_request(_require_enrolment)
    from web.auth.cli import reset_totp_command, unlock_user_command
    app.cli.add_command(unlock_user_command)
    app.cli.add_command(reset_totp_command)


def _account_policy(app: Flask) -> AccountPolicy:
    roles = str(app.config.get('TOTP_REQUIRED_ROLES') or '')
    return AccountPolicy(max_failed_logins=int(app.config['MAX_FAILED_LOGINS']),
                         lockout=timedelta(minutes=int(app.config['LOCKOUT_MINUTES'])),
                         totp_required_roles=frozenset(r.strip() for r in roles.split(',') if r.strip()))


#: what a user who must enrol a second factor may reach before enrolling
_ENROLMENT_ENDPOINTS = frozenset({'auth.totp', 'auth.logout', 'auth.login', 'static'})


def _require_enrolment() -> ResponseReturnValue | None:
    """Before each request: a user whose role needs TOTP and who has none yet may only enrol it."""
    if not session.get(MUST_ENROL) or request.endpoint in _ENROLMENT_ENDPOINTS:
        return None
    if request.path.startswith('/api/'):
        return jsonify(error='second_factor_required', message=gettext('请先设置双因素认证。'), fields={}), 403
    return redirect(url_for('auth.totp'))


def current_scope() -> Scope:
    """The logged-in user's grants, loaded once per request."""
    if 'scope' not in g:
        g.scope = load_scope(db(), current_user._get_current_object())
    scope: Scope = g.scope
    return scope


def current_actor() -> User:
    """The logged-in user as a model instance."""
    user: User = current_user._get_current_object()
    return user


def is_token_request() -> bool:
    """Whether this request authenticated with a bearer token (exempt from CSRF)."""
    return bool(g.get('token_auth'))
