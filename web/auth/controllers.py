"""Log in (one generic message for every failure) and log out (POST with CSRF)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user

from engine.directory import LoginFailed, authenticate
from engine.models.users import User
from web.auth.forms import LoginForm
from web.core.database import db
from web.core.pages import PageView, safe_path


def _demo_accounts() -> tuple[list[tuple[str, str]], str] | None:
    """The demo accounts and password, only when the app runs in demo mode."""
    if not current_app.config.get('DEMO_MODE'):
        return None
    from workflows.demo import DEMO_PASSWORD, USERS
    return [(username, name) for username, name, _unit, _groups in USERS], DEMO_PASSWORD


def _fresh_session() -> None:
    """Empty the session but keep the chosen language (nothing secret about it)."""
    lang = session.get('lang')
    session.clear()
    if lang:
        session['lang'] = lang


def _start_session(user: User) -> None:
    """Log ``user`` in on a fresh session, so a session id planted before login is worthless (fixation)."""
    _fresh_session()
    login_user(user)


class LoginView(PageView):
    """The login page."""

    login_required = False

    def _render(self, form: LoginForm, *, failed: bool = False) -> ResponseReturnValue:
        return render_template('auth/login.html', form=form, failed=failed, demo=_demo_accounts(),
                               next=safe_path(request.args.get('next')))

    def get(self) -> ResponseReturnValue:
        if current_user.is_authenticated:
            return redirect(url_for('tasks.list_tasks'))
        return self._render(LoginForm())

    def post(self) -> ResponseReturnValue:
        form = LoginForm()
        if not form.validate_on_submit():
            return self._render(form, failed=True)
        try:
            user = authenticate(db(), form.username.data or '', form.password.data or '')
        except LoginFailed:
            # Returning normally lets BaseView commit the failure count that locks the account.
            return self._render(form, failed=True)
        _start_session(user)
        return redirect(safe_path(request.args.get('next')) or url_for('tasks.list_tasks'))


class LogoutView(PageView):
    """End the session."""

    def post(self) -> ResponseReturnValue:
        logout_user()
        _fresh_session()
        flash(gettext('您已退出登录。'), 'info')
        return redirect(url_for('auth.login'))

