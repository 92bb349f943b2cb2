"""The audit log: append-only rows, each hashed together with the previous row's hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, format_repr, prefix_text


class AuditEvent(Base):
    """One state change: who, when, what, values before and after. Database triggers refuse edits."""

    __tablename__ = 'audit_events'

    #: position in the chain
    id: Mapped[int] = mapped_column(primary_key=True)
    #: when it happened
    occurred_dt: Mapped[datetime] = mapped_column(index=True, nullable=False)
    #: who did it (None for the system/worker)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: the actor's name at the time, so the log reads the same after a rename
    actor_name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    #: what kind of change, e.g. case.started, task.completed
    kind: Mapped[str] = mapped_column(sa.String(64), index=True, nullable=False)
    #: the case concerned
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=True)
    #: the instance concerned
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey('process_instances.id'), index=True,
                                                       nullable=True)
    #: the task concerned
    human_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey('human_tasks.id'), index=True,
                                                         nullable=True)
    #: the org unit path at the time, for scoped audit queries (byte order: subtrees are index ranges)
    org_path: Mapped[str | None] = mapped_column(prefix_text(255), index=True, nullable=True)
    #: values before the change
    before: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    #: values after the change
    after: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    #: a reason or comment
    note: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: hash of the previous row ('' for the first)
    prev_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: sha256 over prev_hash and this row's canonical content
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'kind', 'case_id')


class AuditChainHead(Base):
    """A single row holding the newest hash; locking it orders concurrent appenders."""

    __tablename__ = 'audit_chain_head'
    __table_args__ = (sa.CheckConstraint('id = 1', name='single_row'),)

    #: always 1
    id: Mapped[int] = mapped_column(primary_key=True)
    #: id of the newest event
    last_event_id: Mapped[int] = mapped_column(nullable=False, default=0)
    #: hash of the newest event
    last_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, default='')

    def __repr__(self) -> str:
        return format_repr(self, 'last_event_id')
