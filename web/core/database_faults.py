"""Database faults a user can only wait out: the server is unreachable, its disk is full, it is read-only.

Each becomes a 503 saying which, as the JSON error shape under ``/api`` and as the error page elsewhere,
never a stack trace. :func:`database_unavailable` ends the request's transaction first, so nothing of the
request is written. Other database errors (a constraint violated, a bad statement) are bugs: they stay
500s and are logged with their traceback. Used by ``BaseView`` for failures inside a view and by the app's
catch-all error handler for failures before it (loading the caller's account or token).
"""

from __future__ import annotations

import logging

from flask import Response, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from engine.i18n import N_
from web.core.database import db

log = logging.getLogger(__name__)

UNAVAILABLE = 'unavailable'
DISK_FULL = 'disk_full'
READ_ONLY = 'read_only'
MESSAGES = {
    UNAVAILABLE: N_('数据库暂时无法访问，请稍后重试。'),
    DISK_FULL: N_('数据库存储空间已满，本次操作未能保存。请联系系统管理员。'),
    READ_ONLY: N_('数据库当前为只读状态，本次操作未能保存。请稍后重试或联系系统管理员。'),
}
#: PostgreSQL SQLSTATEs that say which fault it is (53100 disk_full, 25006 read_only_sql_transaction)
_SQLSTATES = {'53100': DISK_FULL, '25006': READ_ONLY}
#: SQLite's primary result codes (the low byte of the extended code): SQLITE_FULL, SQLITE_READONLY
_SQLITE_CODES = {13: DISK_FULL, 8: READ_ONLY}
#: seconds a client should wait before trying again
RETRY_AFTER_SECONDS = 5


def database_fault(exc: BaseException) -> str | None:
    """Which wait-it-out fault ``exc`` is (``unavailable``, ``disk_full``, ``read_only``), or None."""
    if isinstance(exc, PoolTimeout):
        return UNAVAILABLE  # every pooled connection busy or the server too slow to hand out one
    if not isinstance(exc, DBAPIError):
        return None
    sqlstate = getattr(exc.orig, 'sqlstate', None)  # psycopg
    if sqlstate in _SQLSTATES:
        return _SQLSTATES[sqlstate]
    sqlite_code = getattr(exc.orig, 'sqlite_errorcode', None)
    if isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_CODES:
        return _SQLITE_CODES[sqlite_code & 0xFF]
    if isinstance(exc, OperationalError) or exc.connection_invalidated:
        return UNAVAILABLE  # connection refused or lost, server shutting down, lock or statement timeout
    return None


def database_unavailable(kind: str, exc: BaseException) -> ResponseReturnValue:
    """The 503 for a database fault of ``kind``: JSON under ``/api``, the error page elsewhere.

    Ends the request's transaction first, so nothing of the request is written. It closes the session
    rather than rolling it back: a rollback would expire the caller's user, and reading it again (the
    error page, the request log) would need the database that just failed.
    """
    log.warning('database %s on %s %s: %s', kind, request.method, request.path, _one_line(exc))
    db().close()
    message = gettext(MESSAGES[kind])
    response: Response | str
    if request.path.startswith('/api/'):
        response = jsonify(error='service_unavailable', message=message, fields={}, reason=kind)
    else:
        response = _error_page(message)
    headers = {'Retry-After': str(RETRY_AFTER_SECONDS), 'Cache-Control': 'no-store'}
    return response, 503, headers


def _error_page(message: str) -> str:
    """The error page; shown as to an anonymous visitor when the caller's account cannot be read now.

    The page asks ``current_user`` for the menu and the "back" link. When loading the user is what
    failed, or a failed flush left it expired, asking would fail inside the error handler and turn this
    503 into a bare 500.
    """
    try:
        return render_template('error.html', status=503, message=message)
    except SQLAlchemyError:
        db().close()
        from web.core.auth import login_manager  # here: web.core.auth imports the app's session helpers
        g._login_user = login_manager.anonymous_user()
        return render_template('error.html', status=503, message=message)


def _one_line(exc: BaseException) -> str:
    """The driver's error in one line (the server's own words, without SQLAlchemy's statement dump)."""
    cause = getattr(exc, 'orig', None) or exc
    text = str(cause).strip().splitlines()
    return f'{type(cause).__name__}: {text[0] if text else ""}'[:300]
