"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request, session
from flask_babel import Babel, gettext
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

import workflows
from config import BASE_DIR, INSTANCE_DIR, Config
from engine import i18n
from engine.mail import configure_mail
from web.core.auth import init_auth
from web.core.database import init_database
from web.core.database_faults import database_fault, database_unavailable
from web.core.health import init_health
from web.core.templating import init_templating

csrf = CSRFProtect()
babel = Babel()
log = logging.getLogger(__name__)


def _select_locale() -> str:
    if request.args.get('lang') in ('zh_CN', 'en'):
        session['lang'] = request.args['lang']
    return str(session.get('lang', 'zh_CN'))


class RecordIdConverter(IntegerConverter):
    """``<int:…>`` in every route: a non-negative integer that the INTEGER id columns can hold."""

    #: 0 … 2**31-1 in the pattern itself: a larger id must not match at all, or werkzeug, which checks the
    #: method before the converter's bound, answers 405 on a path that a GET route shares
    regex = (r'(?:[0-9]{1,9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}'
             r'|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])')

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        # Every primary key is an INTEGER (int4 on PostgreSQL): a larger id there is a DataError, not no row.
        kwargs.setdefault('max', 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(config: Any = None) -> Flask:
    """Build the Flask app.

    :param config: a Config instance (defaults to ``Config()`` read from the environment)
    """
    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    # Record ids fit a signed 32-bit column: a larger number in a URL is a 404, not a database overflow.
    app.url_map.converters['int'] = RecordIdConverter
    app.config.from_object(config or Config())
    workflows.register()
    init_database(app)
    init_auth(app)
    csrf.init_app(app)
    # Absolute: a relative directory would be looked up under web/, not the project's translations/.
    babel.init_app(app, locale_selector=_select_locale,
                   default_translation_directories=str(BASE_DIR / 'translations'))
    init_templating(app)
    _configure_mail(app)
    # Engine messages use Chinese msgids; flask-babel translates them for English users.
    i18n.set_translator(_translate)
    _register_blueprints(app)
    _register_error_handlers(app)
    _register_cli(app)
    app.after_request(_security_headers)
    init_health(app)
    return app


def _configure_mail(app: Flask) -> None:
    """Mail reminders through ``SMTP_HOST`` when it is set; off otherwise.

    The worker runs inside this app's context (``flask --app wsgi worker`` and ``serve``), so it mails
    with the same settings.
    """
    config = app.config
    host = config.get('SMTP_HOST') or None
    if host and not config.get('SMTP_SENDER'):
        raise RuntimeError('SMTP_HOST is set but SMTP_SENDER is not: set the From address of reminder mail')
    configure_mail(host, port=int(config.get('SMTP_PORT') or 25), sender=config.get('SMTP_SENDER') or '',
                   use_tls=bool(config.get('SMTP_USE_TLS')), username=config.get('SMTP_USERNAME') or None,
                   password=config.get('SMTP_PASSWORD') or None)


def _translate(text: str) -> str:
    try:
        return gettext(text)
    except RuntimeError:  # outside a request: keep the Chinese text
        return text


def _register_blueprints(app: Flask) -> None:
    from web.admin.blueprint import bp as admin_bp
    from web.api.blueprint import bp as api_bp
    from web.auth.blueprint import bp as auth_bp
    from web.cases.blueprint import bp as cases_bp
    from web.comments.blueprint import bp as comments_bp
    from web.dashboard.blueprint import bp as dashboard_bp
    from web.designer.blueprint import bp as designer_bp
    from web.diagrams.blueprint import bp as diagrams_bp
    from web.imports.blueprint import bp as imports_bp
    from web.migrations.blueprint import bp as migrations_bp
    from web.notifications.blueprint import bp as notifications_bp
    from web.public.blueprint import bp as public_bp
    from web.supervision.blueprint import bp as supervision_bp
    from web.tasks.blueprint import bp as tasks_bp
    for bp in (auth_bp, tasks_bp, cases_bp, comments_bp, diagrams_bp, notifications_bp, admin_bp, supervision_bp,
               designer_bp, migrations_bp, dashboard_bp, public_bp, imports_bp, api_bp):
        app.register_blueprint(bp)
    csrf.exempt(api_bp)  # the API checks CSRF itself, only for session-authenticated writes


def _register_cli(app: Flask) -> None:
    from web.cli import register_commands
    register_commands(app)


def _wants_json() -> bool:
    return request.path.startswith('/api/')


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        message = gettext('页面已过期或请求来源无法验证，请刷新页面后重试。')
        if _wants_json():
            return jsonify(error='csrf', message=message, fields={}), 400
        return render_template('error.html', status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        messages = {400: '请求有误。', 401: '请先登录。', 403: '您没有权限执行此操作。', 404: '找不到该页面或记录。',
                    405: '不支持该请求方式。', 409: '记录已被他人更新，请刷新后重试。', 413: '上传内容过大。',
                    503: '服务暂时不可用，请稍后重试。'}
        status = exc.code or 500
        message = gettext(messages.get(status, '请求未能完成。'))
        if _wants_json():
            return jsonify(error=exc.name.lower().replace(' ', '_'), message=message, fields={}), status
        return render_template('error.html', status=status, message=message), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        fault = database_fault(exc)  # the database failed outside a view (loading the caller, say)
        if fault is not None:
            return database_unavailable(fault, exc)
        log.exception('unhandled error on %s', request.path)
        message = gettext('系统内部错误，已记录。请稍后重试或联系管理员。')
        if _wants_json():
            return jsonify(error='internal', message=message, fields={}), 500
        return render_template('error.html', status=500, message=message), 500


def _security_headers(response: Any) -> Any:
    """Headers on every response: no framing, no sniffing, a CSP without inline scripts, HSTS over HTTPS,
    and no caching of pages (they hold personal data; the back button after logout must not show them)."""
    headers = response.headers
    headers.setdefault('X-Content-Type-Options', 'nosniff')
    headers.setdefault('X-Frame-Options', 'DENY')
    headers.setdefault('Referrer-Policy', 'same-origin')
    headers.setdefault('Cross-Origin-Opener-Policy', 'same-origin')
    headers.setdefault('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), payment=()')
    headers.setdefault('Content-Security-Policy',
                       "default-src 'self'; script-src 'self'; img-src 'self' data:; object-src 'none'; "
                       "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
    if request.is_secure or current_app.config.get('SESSION_COOKIE_SECURE'):
        headers.setdefault('Strict-Transport-Security', 'max-age=31536000; includeSubDomains')
    if response.mimetype == 'text/html' and 'Cache-Control' not in headers:
        headers['Cache-Control'] = 'no-store'
    return response
