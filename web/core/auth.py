"""Login state: flask-login for the browser, bearer tokens for the API; the caller's Scope per request."""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import LoginManager, current_user

from engine.access import Scope, load_scope
from engine.directory import user_for_token
from engine.models.users import User
from web.core.database import db

login_manager = LoginManager()
login_manager.login_view = 'auth.login'
login_manager.login_message = '请先登录。'
login_manager.session_protection = 'strong'


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    user = db().get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.is_active else None


@login_manager.request_loader
def _load_user_from_token(req: object) -> User | None:
    header = request.headers.get('Authorization', '')
    if not header.startswith('Bearer '):
        return None
    user = user_for_token(db(), header[len('Bearer '):].strip())
    if user is not None:
        g.token_auth = True
    return user


# flask-login's UserMixin is not on the model (engine/ has no Flask); these give it what it asks for.
User.is_authenticated = True  # type: ignore[attr-defined]
User.is_anonymous = False  # type: ignore[attr-defined]
User.get_id = lambda self: str(self.id)  # type: ignore[attr-defined]


def init_auth(app: Flask) -> None:
    """Install flask-login on ``app``."""
    login_manager.init_app(app)


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
