"""Audit retention: one checkpoint per archive run, so the chain still verifies after old rows leave."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, format_repr


class AuditArchive(Base):
    """Rows ``first_event_id``..``last_event_id`` moved to a JSON-lines file and deleted from ``audit_events``.

    ``last_hash`` is where the live chain resumes: the first remaining row's ``prev_hash`` must equal it.
    Database triggers refuse edits and deletes of checkpoints, as they do for audit events.
    """

    __tablename__ = 'audit_archives'
    __table_args__ = (sa.CheckConstraint('last_event_id >= first_event_id', name='id_range'),)

    #: checkpoint number
    id: Mapped[int] = mapped_column(primary_key=True)
    #: when the archive was made
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: every archived event occurred before this moment (start of the cut-off day, Beijing time)
    cutoff_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: id of the first archived event
    first_event_id: Mapped[int] = mapped_column(nullable=False)
    #: id of the last archived event; unique: a row is archived once
    last_event_id: Mapped[int] = mapped_column(unique=True, nullable=False)
    #: hash of the last archived event, where the live chain resumes
    last_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: how many events the file holds
    event_count: Mapped[int] = mapped_column(nullable=False)
    #: sha256 of the archive file, hex
    file_sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: the file's name when it was written (for the operator; the file may be moved)
    file_name: Mapped[str] = mapped_column(sa.String(255), nullable=False)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'first_event_id', 'last_event_id')
