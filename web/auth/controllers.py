"""Log in (one generic message for every failure, then the TOTP step when the account has one), log out
(POST with CSRF, voiding the session everywhere), and enrol the TOTP second factor."""

from __future__ import annotations

from typing import Any

import segno
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_login import current_user, logout_user

from engine.directory import (
    LoginFailed,
    SecondFactorRequired,
    authenticate,
    complete_enrolment_login,
    end_sessions,
    enrol_totp,
    new_totp_secret,
    totp_uri,
    verify_second_factor,
)
from engine.errors import ValidationFailed
from engine.models.users import User
from web.auth.forms import CodeForm, LoginForm
from web.auth.util import MUST_ENROL, PENDING, PENDING_SECONDS, fresh_session, start_session, wall_time
from web.core.database import db
from web.core.pages import PageView, safe_path, translate

#: the secret being enrolled, kept in the (signed) session until the user proves their app shows it
ENROLLING = 'fq_totp_enrolling'


def _demo_accounts() -> tuple[list[tuple[str, str]], str] | None:
    """The demo accounts and password, only when the app runs in demo mode."""
    if not current_app.config.get('DEMO_MODE'):
        return None
    from workflows.demo import DEMO_PASSWORD, USERS
    return [(username, name) for username, name, _unit, _groups in USERS], DEMO_PASSWORD


def _after_login(target: str | None) -> ResponseReturnValue:
    return redirect(safe_path(target) or url_for('tasks.list_tasks'))


class LoginView(PageView):
    """The login page."""

    login_required = False

    def _render(self, form: LoginForm, *, failed: bool = False) -> ResponseReturnValue:
        return render_template('auth/login.html', form=form, failed=failed, demo=_demo_accounts(),
                               next=safe_path(request.args.get('next')),
                               max_failed=current_app.config['MAX_FAILED_LOGINS'],
                               lockout_minutes=current_app.config['LOCKOUT_MINUTES'])

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
        except SecondFactorRequired as exc:
            return self._second_step(exc.user)
        except LoginFailed:
            # Returning normally lets BaseView commit the failure count that locks the account.
            return self._render(form, failed=True)
        start_session(user)
        return _after_login(request.args.get('next'))

    def _second_step(self, user: User) -> ResponseReturnValue:
        """The password was right: ask for the TOTP code, or let a user who must enrol do only that."""
        if user.totp_secret is None:
            start_session(complete_enrolment_login(user), must_enrol=True)
            flash(gettext('您的岗位须启用双因素认证，请先完成设置。'), 'info')
            return redirect(url_for('auth.totp'))
        fresh_session()
        session[PENDING] = {'user': user.id, 'at': wall_time(), 'next': safe_path(request.args.get('next'))}
        return redirect(url_for('auth.verify_login'))


class VerifyLoginView(PageView):
    """Login step two: the code from the authenticator app."""

    login_required = False

    def load(self, **kwargs: Any) -> None:
        pending = session.get(PENDING)
        self.user: User | None = None
        if isinstance(pending, dict) and wall_time() - float(pending.get('at', 0)) <= PENDING_SECONDS:
            self.user = db().get(User, int(pending.get('user', 0)))
        self.target = pending.get('next') if isinstance(pending, dict) else None

    def _render(self, form: CodeForm, *, failed: bool = False) -> ResponseReturnValue:
        return render_template('auth/verify.html', form=form, failed=failed)

    def get(self) -> ResponseReturnValue:
        if self.user is None:
            return redirect(url_for('auth.login'))
        return self._render(CodeForm())

    def post(self) -> ResponseReturnValue:
        form = CodeForm()
        if self.user is None:
            fresh_session()
            flash(gettext('验证已超时，请重新登录。'), 'info')
            return redirect(url_for('auth.login'))
        if not form.validate_on_submit():
            return self._render(form, failed=True)
        try:
            user = verify_second_factor(db(), self.user, form.code.data or '')
        except LoginFailed:
            return self._render(form, failed=True)  # the failure counts towards the lockout: commit it
        start_session(user)
        return _after_login(self.target)


class TotpView(PageView):
    """Enrol the TOTP second factor: a QR code of the otpauth URI, then one code to confirm."""

    def _secret(self) -> str:
        secret = session.get(ENROLLING)
        if not isinstance(secret, str):
            secret = session[ENROLLING] = new_totp_secret()
        return secret

    def _render(self, form: CodeForm, *, errors: list[str] | None = None) -> ResponseReturnValue:
        user: User = current_user._get_current_object()
        if user.totp_secret is not None:
            return render_template('auth/totp.html', enrolled=True)
        secret = self._secret()
        uri = totp_uri(user, secret)
        qr = segno.make(uri, error='m').svg_data_uri(scale=5, border=2)
        return render_template('auth/totp.html', enrolled=False, form=form, qr=qr, secret=secret, errors=errors or [],
                               must_enrol=bool(session.get(MUST_ENROL)))

    def get(self) -> ResponseReturnValue:
        return self._render(CodeForm())

    def post(self) -> ResponseReturnValue:
        form = CodeForm()
        user: User = current_user._get_current_object()
        if user.totp_secret is not None:
            return redirect(url_for('auth.totp'))
        if not form.validate_on_submit():
            return self._render(form, errors=[gettext('请输入验证器应用显示的 6 位验证码。')])
        try:
            enrol_totp(db(), user, self._secret(), form.code.data or '')
        except ValidationFailed as exc:
            return self._render(form, errors=[translate(exc.message)])
        session.pop(ENROLLING, None)
        session.pop(MUST_ENROL, None)
        flash(gettext('双因素认证已启用，今后登录时需输入验证码。'), 'success')
        return redirect(url_for('tasks.list_tasks'))


class LogoutView(PageView):
    """End the session, here and wherever a copy of its cookie may be."""

    def post(self) -> ResponseReturnValue:
        end_sessions(current_user._get_current_object())
        logout_user()
        fresh_session()
        flash(gettext('您已退出登录。'), 'info')
        return redirect(url_for('auth.login'))
