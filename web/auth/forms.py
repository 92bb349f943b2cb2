"""The login form."""

from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    """Username and password; Flask-WTF adds the hidden ``csrf_token``."""

    username = StringField(lazy_gettext('用户名'), validators=[DataRequired(), Length(max=64)],
                           render_kw={'autocomplete': 'username', 'autocapitalize': 'none',
                                      'spellcheck': 'false'})
    password = PasswordField(lazy_gettext('密码'), validators=[DataRequired(), Length(max=256)],
                             render_kw={'autocomplete': 'current-password'})


class CodeForm(FlaskForm):
    """A six-digit code from the authenticator app (login step two, and enrolment)."""

    code = StringField(lazy_gettext('验证码'), validators=[DataRequired(), Length(min=6, max=8)],
                       render_kw={'autocomplete': 'one-time-code', 'inputmode': 'numeric', 'pattern': '[0-9 ]*',
                                  'spellcheck': 'false'})
