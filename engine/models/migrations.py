"""Bulk migrations: running instances moved to another version of their definition, and each one's result."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.definitions import ProcessDefinition
    from engine.models.instances import ProcessInstance
    from engine.models.users import User

BATCH_STATUSES = ('queued', 'running', 'done')
ITEM_STATUSES = ('pending', 'migrated', 'failed', 'skipped')
_PENDING = sa.text("status = 'pending'")


def _in(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


class MigrationBatch(Base):
    """Instances of one version a designer asked to move to another version, worked off by the worker."""

    __tablename__ = 'migration_batches'
    __table_args__ = (
        sa.CheckConstraint(_in(BATCH_STATUSES), name='valid_status'),
        sa.CheckConstraint('from_definition_id <> to_definition_id', name='different_versions'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the process key both versions share
    key: Mapped[str] = mapped_column(sa.String(128), index=True, nullable=False)
    #: the version the instances run on
    from_definition_id: Mapped[int] = mapped_column(sa.ForeignKey('process_definitions.id'), index=True,
                                                    nullable=False)
    #: its version number, for lists that show no definition row
    from_version: Mapped[int] = mapped_column(nullable=False)
    #: the version they move to
    to_definition_id: Mapped[int] = mapped_column(sa.ForeignKey('process_definitions.id'), index=True,
                                                  nullable=False)
    #: its version number
    to_version: Mapped[int] = mapped_column(nullable=False)
    #: why (required; written to every instance's audit row)
    reason: Mapped[str] = mapped_column(sa.Text, nullable=False)
    #: the designer who started it
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=False)
    #: when
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: queued (no item tried yet) / running / done (every item settled)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default='queued')
    #: items in the batch
    total_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: items moved
    migrated_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: items refused (blocked, conflict, engine fault)
    failed_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: items left alone (already on the target version, completed meanwhile)
    skipped_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: when the last item settled
    finished_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    from_definition: Mapped[ProcessDefinition] = relationship(foreign_keys=[from_definition_id])
    to_definition: Mapped[ProcessDefinition] = relationship(foreign_keys=[to_definition_id])
    created_by: Mapped[User] = relationship()
    items: WriteOnlyMapped[MigrationItem] = relationship(back_populates='batch', order_by='MigrationItem.id')

    @property
    def pending_count(self) -> int:
        """Items not tried yet."""
        return self.total_count - self.migrated_count - self.failed_count - self.skipped_count

    @property
    def is_done(self) -> bool:
        """Whether every item has settled."""
        return self.status == 'done'

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'key', 'from_version', 'to_version', status='queued')


class MigrationItem(Base):
    """One instance of a batch: pending until the worker tries it, then migrated, failed or skipped."""

    __tablename__ = 'migration_items'
    __table_args__ = (
        sa.CheckConstraint(_in(ITEM_STATUSES), name='valid_status'),
        sa.UniqueConstraint('batch_id', 'instance_id'),
        # The worker takes the next pending items of a batch in id order; settled ones drop out of the index.
        sa.Index('ix_migration_items_pending', 'batch_id', 'id', postgresql_where=_PENDING, sqlite_where=_PENDING),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the batch
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey('migration_batches.id'), index=True, nullable=False)
    #: the instance to move
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey('process_instances.id'), index=True, nullable=False)
    #: pending / migrated / failed / skipped
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default='pending')
    #: why it failed or was skipped, or what moved (shown on the batch page)
    message: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: when it settled
    finished_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    batch: Mapped[MigrationBatch] = relationship(back_populates='items')
    instance: Mapped[ProcessInstance] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'batch_id', 'instance_id', status='pending')
