"""URLs of the auth area."""

from __future__ import annotations

from flask import Blueprint

from web.auth.controllers import LoginView, LogoutView, TotpView, VerifyLoginView

bp = Blueprint('auth', __name__, template_folder='templates')

bp.add_url_rule('/login', 'login', view_func=LoginView.as_view('login'), methods=['GET', 'POST'])
bp.add_url_rule('/login/verify', 'verify_login', view_func=VerifyLoginView.as_view('verify_login'),
                methods=['GET', 'POST'])
bp.add_url_rule('/logout', 'logout', view_func=LogoutView.as_view('logout'), methods=['POST'])
bp.add_url_rule('/account/totp', 'totp', view_func=TotpView.as_view('totp'), methods=['GET', 'POST'])
