"""The parties' second factor for the public case page (一案一码): a PIN hash and the failed attempts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, format_repr


class PublicAccess(Base):
    """One case's 查询密码 (stored only as an argon2 hash) and the lock its failed attempts set."""

    __tablename__ = 'public_accesses'
    __table_args__ = (
        sa.CheckConstraint('failed_count >= 0', name='failed_count_not_negative'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the case whose public page this guards (one row per case)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), unique=True, index=True,
                                         nullable=False)
    #: argon2id hash of the 6-digit PIN; None until one is issued (the phone digits still work)
    pin_hash: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    #: when the current PIN was issued
    pin_issued_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: failed verifications since the last success or lock
    failed_count: Mapped[int] = mapped_column(nullable=False, default=0, server_default='0')
    #: no verification is accepted before this instant (set after too many failures)
    locked_until_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', failed_count=0)
