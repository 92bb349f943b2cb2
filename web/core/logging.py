"""Structured logs: one JSON object per line (``FENGQIAO_LOG_FORMAT=json``), each request with its id.

Every request gets an id: the proxy's ``X-Request-ID`` when it looks like one, else a new one; it is echoed
in the response header and carried by every line logged while the request runs, so a line in nginx's
log, the app's and a user's bug report can be matched. One access line per request records method, path
(never the query string: searches may carry ID numbers), status, duration and the user id. Plain text
stays the default (``make run``); the format applies to the whole process, so the worker's lines (with
their job id and kind) come out the same way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, g, has_request_context, request

#: a proxy-supplied id is trusted only in this shape (nginx's ``$request_id`` is 32 hex digits)
VALID_REQUEST_ID = re.compile(r'^[A-Za-z0-9._:-]{8,128}$')
REQUEST_ID_HEADER = 'X-Request-ID'
#: record attributes copied into the JSON object when set (``extra=`` or the request filter)
CONTEXT_FIELDS = ('request_id', 'method', 'path', 'status', 'duration_ms', 'user_id', 'remote_addr',
                  'job_id', 'job_kind', 'job_key', 'outcome')
_MARK = '_fengqiao_handler'
access_log = logging.getLogger('fengqiao.request')


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            'time': datetime.fromtimestamp(record.created, UTC).isoformat(timespec='milliseconds'),
            'level': record.levelname, 'logger': record.name, 'message': record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info:
            data['exception'] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class RequestContextFilter(logging.Filter):
    """Stamp the current request's id and user id on every record logged while a request runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and getattr(record, 'request_id', None) is None:
            record.request_id = g.get('request_id')
            if getattr(record, 'user_id', None) is None:
                record.user_id = _user_id()
        return True


def configure_logging(fmt: str, *, stream: Any = None, level: int = logging.INFO) -> None:
    """Send the process's logs to ``stream`` (stderr) as JSON lines (``fmt == 'json'``) or plain text.

    Replaces a handler this function installed before, so calling it again (one app per test) never
    doubles the lines; leaves other handlers (pytest's, gunicorn's) alone.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _MARK, True)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == 'json' else logging.Formatter(
        '%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s', defaults={'request_id': '-'}))
    root.addHandler(handler)
    root.setLevel(level)
    # SpiffWorkflow logs every task state change at INFO; one line per job or request is what operators read.
    logging.getLogger('spiff').setLevel(logging.WARNING)


def init_logging(app: Flask) -> None:
    """Give every request an id and an access line; with ``FENGQIAO_LOG_FORMAT=json`` log JSON lines.

    The format is read from the app's config (``LOG_FORMAT``) or the environment.
    """
    fmt = str(app.config.get('LOG_FORMAT') or os.environ.get('FENGQIAO_LOG_FORMAT', 'text')).lower()
    if fmt == 'json':
        configure_logging('json')
    # First of all before-request hooks: a hook that answers early (a rate limit) still gets an id and a line.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)


def _start_request() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, '')
    g.request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _user_id() -> int | None:
    """The logged-in user's id if flask-login already loaded one (never loads it: no query for logging)."""
    user = g.get('_login_user')
    if user is None or not getattr(user, 'is_authenticated', False):
        return None
    # The identity key, not ``user.id``: after a failed flush or a rollback the row is expired, and reading
    # an attribute would query the database, which may be the very thing that just failed.
    state = sa.inspect(user, raiseerr=False)
    identity = state.identity if state is not None else None
    return int(identity[0]) if identity else None


def _finish_request(response: Response) -> Response:
    request_id = g.get('request_id') or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get('request_started')
    duration = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    access_log.info('%s %s %s %sms', request.method, request.path, response.status_code, duration, extra={
        'request_id': request_id, 'method': request.method, 'path': request.path,
        'status': response.status_code, 'duration_ms': duration, 'user_id': _user_id(),
        'remote_addr': request.remote_addr})
    return response
