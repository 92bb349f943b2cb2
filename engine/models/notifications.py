"""In-app notifications (reminders, escalations, assignments)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, format_repr

_UNREAD = sa.text('read_dt IS NULL')


class Notification(Base):
    """A message for one user, unread until opened."""

    __tablename__ = 'notifications'
    __table_args__ = (
        sa.Index('ix_notifications_unread', 'user_id', 'id', postgresql_where=_UNREAD, sqlite_where=_UNREAD),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: recipient
    user_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id', ondelete='CASCADE'), index=True,
                                         nullable=False)
    #: reminder / escalation / assigned / ...
    kind: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    #: one line
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: detail
    body: Mapped[str] = mapped_column(sa.Text, nullable=False, default='')
    #: the case concerned
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=True)
    #: the task concerned
    human_task_id: Mapped[int | None] = mapped_column(sa.ForeignKey('human_tasks.id'), index=True,
                                                         nullable=True)
    #: created at
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: opened at
    read_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: what made it (e.g. ``<job key>:<user id>``): the same effect never notifies twice
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True, nullable=True)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'user_id', 'kind', read_dt=None)
