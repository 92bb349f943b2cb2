"""Idempotency keys: a command sent twice (a double click, a client's blind retry) has one effect."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, format_repr


class IdempotencyKey(Base):
    """The first outcome of a command under a caller's key, answered again to every repeat."""

    __tablename__ = 'idempotency_keys'
    __table_args__ = (sa.UniqueConstraint('user_id', 'command', 'key'),)

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: whose key: keys of different callers never meet
    user_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False)
    #: the command the key was used for, e.g. ``api.start_case``
    command: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: the caller's key (``Idempotency-Key`` header or a form's nonce)
    key: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    #: sha256 of the request, so a key reused for a different request is refused
    fingerprint: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: the outcome answered the first time: a status and what the response carried
    status: Mapped[int] = mapped_column(nullable=False)
    #: the response body (or, for a page, where it redirected)
    response: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    #: when the command first ran (keys are kept for ``engine.idempotency.RETENTION``)
    created_dt: Mapped[datetime] = mapped_column(index=True, nullable=False)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'user_id', 'command', 'key')
