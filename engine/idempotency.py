"""One effect for a command sent twice: a double click on a form, a client retrying after a timeout.

The caller names the attempt with a key (the API's ``Idempotency-Key`` header, a form's hidden nonce). The
first command under a key claims it inside the same transaction as its effects and records its outcome
there; a repeat gets that outcome back and does nothing. A twin arriving while the first is still running
waits on the key's unique index (PostgreSQL) or the database's write lock (SQLite) and then answers with the
first one's outcome. A command that fails leaves no key behind, so it may be sent again. A key reused for a
different request is refused rather than answered with the wrong outcome.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.clock import now
from engine.errors import Conflict, ValidationFailed
from engine.i18n import N_
from engine.models.idempotency import IdempotencyKey

#: how long an outcome is answered again; a caller's older keys go when they claim a new one
RETENTION = timedelta(days=7)
_KEY = re.compile(r'[\x21-\x7e]{1,128}')
MSG_BAD_KEY = N_('幂等键须为 1 至 128 个可见 ASCII 字符。')
MSG_KEY_REUSED = N_('该幂等键已用于内容不同的另一请求，请换一个键。')


def fingerprint(payload: Any) -> str:
    """A stable digest of a request's content (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(',', ':'), default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def valid_key(key: str) -> bool:
    """Whether ``key`` is 1–128 visible ASCII characters."""
    return _KEY.fullmatch(key) is not None


def check_key(key: str, field: str = 'Idempotency-Key') -> str:
    """``key`` if it is valid, else ValidationFailed naming ``field``."""
    if not valid_key(key):
        raise ValidationFailed(MSG_BAD_KEY, {field: [MSG_BAD_KEY]})
    return key


def claim(session: Session, user_id: int, command: str, key: str, digest: str) -> IdempotencyKey:
    """Claim ``key`` for ``command``, or find the outcome of the first command sent under it.

    :param digest: the request's :func:`fingerprint`
    :return: the key's row: ``answered`` when an earlier command already ran (answer with its ``status`` and
        ``response``), otherwise a fresh claim to :func:`settle` once the command has run
    :raise Conflict: the key was used for a different request
    """
    session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.user_id == user_id,
                                                    IdempotencyKey.created_dt < now() - RETENTION))
    row = _find(session, user_id, command, key)
    if row is None:
        row = IdempotencyKey(user_id=user_id, command=command, key=key, fingerprint=digest, status=0,
                             response={}, created_dt=now())
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # a twin committed the key while this one waited on it: answer as it did
            row = _find(session, user_id, command, key)
            if row is None:
                raise
        else:
            return row
    if row.fingerprint != digest:
        raise Conflict(MSG_KEY_REUSED)
    return row


def answered(row: IdempotencyKey) -> bool:
    """Whether ``row`` holds an earlier command's outcome (a claim just made holds none yet)."""
    return row.status != 0


def settle(row: IdempotencyKey, status: int, response: dict[str, Any]) -> None:
    """Record the outcome of the command that claimed ``row``, to be answered to every repeat."""
    row.status, row.response = status, response


def _find(session: Session, user_id: int, command: str, key: str) -> IdempotencyKey | None:
    return session.scalars(sa.select(IdempotencyKey).where(
        IdempotencyKey.user_id == user_id, IdempotencyKey.command == command, IdempotencyKey.key == key,
    ).execution_options(populate_existing=True)).one_or_none()
