"""Process instances: serialized SpiffWorkflow state with a revision for optimistic locking."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.cases import Case
    from engine.models.definitions import ProcessDefinition

INSTANCE_STATUSES = ('running', 'waiting', 'completed', 'error', 'suspended')


class ProcessInstance(Base):
    """One run of one definition version, attached to a case."""

    __tablename__ = 'process_instances'
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in INSTANCE_STATUSES)})", name='valid_status'),
        sa.Index('ix_process_instances_next_timer', 'next_timer_dt', postgresql_where=sa.text(
            'next_timer_dt IS NOT NULL'), sqlite_where=sa.text('next_timer_dt IS NOT NULL')),
    )
    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the case it belongs to
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=False)
    #: the definition version it runs (and stays on)
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey('process_definitions.id'), index=True,
                                               nullable=False)
    #: whether this is the case's main lifecycle (False for attached requests)
    is_lifecycle: Mapped[bool] = mapped_column(nullable=False, default=True)
    #: running (user tasks open) / waiting (only timers or messages) / completed / error / suspended
    status: Mapped[str] = mapped_column(sa.String(16), index=True, nullable=False, default='running')
    #: optimistic-lock counter
    revision: Mapped[int] = mapped_column(nullable=False, default=1)
    # SQLAlchemy checks and bumps the revision in every UPDATE: a stale writer gets StaleDataError.
    __mapper_args__ = {'version_id_col': revision}
    #: serialized workflow without its spec (the spec lives once, on the definition); read only to restore the
    #: workflow, so deferred: lists, case pages and commands that reuse a kept workflow never parse it
    state: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict, deferred=True)
    #: SpiffWorkflow serializer version of ``state``
    serializer_version: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: earliest pending timer
    next_timer_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: number of SpiffWorkflow tasks in the state (guard against runaway growth)
    task_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: the last failure, shown to supervisors
    error_message: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: when it failed
    error_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: started at
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: reached an end event at
    completed_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    case: Mapped[Case] = relationship(back_populates='instances')
    definition: Mapped[ProcessDefinition] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', 'definition_id', 'revision', status='running')
