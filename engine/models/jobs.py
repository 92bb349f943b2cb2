"""Jobs: due timers, reminders, escalations and message deliveries for the worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, format_repr

JOB_STATUSES = ('pending', 'done', 'dead', 'cancelled')
_PENDING = sa.text("status = 'pending'")


class Job(Base):
    """Something the worker must do at ``due_dt``; ``key`` makes re-running it change nothing."""

    __tablename__ = 'jobs'
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in JOB_STATUSES)})", name='valid_status'),
        sa.Index('ix_jobs_pending_due', 'due_dt', 'id', postgresql_where=_PENDING, sqlite_where=_PENDING),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: timer / reminder / escalation / message
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: idempotency key: the same effect is never scheduled twice
    key: Mapped[str] = mapped_column(sa.String(200), unique=True, nullable=False)
    #: the instance it acts on
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey('process_instances.id'), index=True,
                                                       nullable=True)
    #: the human task it concerns (reminders, escalations)
    human_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey('human_tasks.id'), index=True,
                                                         nullable=True)
    #: when it should run
    due_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: pending / done / dead / cancelled
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default='pending')
    #: how many times it was tried
    attempts: Mapped[int] = mapped_column(nullable=False, default=0)
    #: the worker holding it
    lock_owner: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    #: the lock lapses after this, so a crashed worker's job is picked up again
    lock_expires_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: what to do
    payload: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    #: the last failure
    last_error: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: created at
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: finished at
    done_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'kind', 'key', status='pending')
