"""The public page's helpers: the verified-session marker, the per-address limiter, the page address."""

from __future__ import annotations

import math
import re
from typing import Any, Final

from flask import current_app, render_template, request, session
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from markupsafe import Markup

from engine.access import Scope
from engine.models.cases import Case
from web.auth.util import SlidingWindow, wall_time
from web.cases.util import may_start_requests
from workflows.disputes.settings import LEVEL_GROUPS, PROCESS_KEY
from workflows.shared.id_numbers import mask_id_number
from workflows.shared.sensitive import FIELD_KINDS, PHONE

#: session key of the verified-party marker: ``{'code': ..., 'until': epoch seconds, 'method': ...}``
MARKER: Final = 'fq_public'
#: how long a verification lets the party reload the page
MARKER_SECONDS: Final = 30 * 60
#: start-data keys holding a party's phone number (their last digits are the second factor)
PHONE_FIELDS: Final = frozenset(key for key, kind in FIELD_KINDS.items() if kind == PHONE)
#: the groups whose member is named as the case's 调解员 (disputes only)
MEDIATOR_GROUPS: Final = frozenset({*LEVEL_GROUPS.values(), 'senior_mediator'})
_DEFAULTS: Final = {'PUBLIC_RATE_LIMIT': 10, 'PUBLIC_VIEW_RATE_LIMIT': 60, 'PUBLIC_RATE_WINDOW': 60}


def mediator_groups(kind: str) -> frozenset[str]:
    """The groups named as 调解员 on a case of ``kind``: none outside the dispute lifecycle."""
    return MEDIATOR_GROUPS if kind == PROCESS_KEY else frozenset()


def may_issue_pin(scope: Scope, case: Case) -> bool:
    """Whether the caller may issue the case's 查询密码: its own units while it is open, but never a hospital's
    医患办 (the other party of a dispute)."""
    return may_start_requests(scope, case) and not scope.hospitals


def client_address() -> str:
    """The caller's address (behind a proxy, ProxyFix has already put the client's there)."""
    return request.remote_addr or '-'


def mark_verified(code: str, method: str) -> None:
    """Let this browser reload ``code``'s page for :data:`MARKER_SECONDS`; one code per browser at a time."""
    session[MARKER] = {'code': code, 'until': wall_time() + MARKER_SECONDS, 'method': method}


def verified_method(code: str) -> str | None:
    """How this browser proved itself for ``code`` (``pin``/``phone``), if that is still in force."""
    marker: Any = session.get(MARKER)
    if not isinstance(marker, dict) or marker.get('code') != code:
        return None
    until = marker.get('until')
    if not isinstance(until, int | float) or until < wall_time():
        session.pop(MARKER, None)
        return None
    method = marker.get('method')
    return method if isinstance(method, str) else 'session'


def _limiter(name: str, limit_key: str) -> SlidingWindow:
    extensions = current_app.extensions
    if name not in extensions:
        config = current_app.config
        extensions[name] = SlidingWindow(int(config.get(limit_key, _DEFAULTS[limit_key])),
                                         float(config.get('PUBLIC_RATE_WINDOW', _DEFAULTS['PUBLIC_RATE_WINDOW'])))
    limiter: SlidingWindow = extensions[name]
    return limiter


def over_limit(*, attempt: bool) -> ResponseReturnValue | None:
    """A 429 page when this address asks too often (verification attempts, or views), else None.

    Per process like the login limiter; the per-code lock in the database is what holds across processes.
    """
    name, key = (('fengqiao.public_attempts', 'PUBLIC_RATE_LIMIT') if attempt
                 else ('fengqiao.public_views', 'PUBLIC_VIEW_RATE_LIMIT'))
    wait = _limiter(name, key).hit(client_address())
    if wait is None:
        return None
    seconds = max(1, math.ceil(wait))
    message = gettext('尝试次数过多，请 %(seconds)s 秒后再试。', seconds=seconds)
    response = current_app.make_response((render_template('public/message.html', message=message), 429))
    response.headers['Retry-After'] = str(seconds)
    return response


def page_url(code: str) -> str:
    """The public page's address, ``<PUBLIC_BASE_URL or this site>/c/<code>``, as the QR code carries it."""
    base = current_app.config.get('PUBLIC_BASE_URL') or request.url_root
    return f'{base.rstrip("/")}/c/{code}'


#: an 18-character resident ID number inside a document's text
_ID_NUMBER = re.compile(r'(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])')


def masked_document(body_html: str) -> Markup:
    """A document body as issued, its ID numbers masked: the page is not behind a staff login.

    ``body_html`` was rendered with autoescaping when the document was issued and is kept as issued.
    """
    return Markup(_ID_NUMBER.sub(lambda match: mask_id_number(match.group(0)), body_html))
