"""Bulk imports: a checked file of existing cases, worked off by the worker, and each row's result."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, WriteOnlyMapped, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.cases import Case
    from engine.models.users import User

BATCH_STATUSES = ('queued', 'running', 'done')
ROW_STATUSES = ('pending', 'imported', 'failed')
_PENDING = sa.text("status = 'pending'")


def _in(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


class ImportBatch(Base):
    """One uploaded file whose rows passed the dry run, imported row by row by the worker's ``import`` job."""

    __tablename__ = 'import_batches'
    __table_args__ = (
        sa.CheckConstraint(_in(BATCH_STATUSES), name='valid_status'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the import kind (``offenders``, ``disputes``): which columns and which process
    kind: Mapped[str] = mapped_column(sa.String(32), index=True, nullable=False)
    #: the process key the rows start
    process_key: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    #: the uploaded file's name, as the user's browser gave it
    filename: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    #: SHA-256 of the file's bytes
    file_digest: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: the user who started it (every case is opened in their name)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=False)
    #: the importer's unit path when they started it: the batch is seen from there and above
    org_path: Mapped[str] = mapped_column(sa.String(255), index=True, nullable=False)
    #: when
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: queued (no row tried yet) / running / done (every row settled)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default='queued')
    #: rows in the file
    total_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: rows imported
    imported_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: rows refused when their turn came
    failed_count: Mapped[int] = mapped_column(nullable=False, default=0)
    #: when the last row settled
    finished_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    created_by: Mapped[User] = relationship()
    rows: WriteOnlyMapped[ImportRow] = relationship(back_populates='batch', order_by='ImportRow.id')

    @property
    def pending_count(self) -> int:
        """Rows not tried yet."""
        return self.total_count - self.imported_count - self.failed_count

    @property
    def is_done(self) -> bool:
        """Whether every row has settled."""
        return self.status == 'done'

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'kind', 'created_by_id', status='queued')


class ImportRow(Base):
    """One row of the file: its checked values, then the case it opened or why it failed."""

    __tablename__ = 'import_rows'
    __table_args__ = (
        sa.CheckConstraint(_in(ROW_STATUSES), name='valid_status'),
        sa.UniqueConstraint('batch_id', 'row_number'),
        # The worker takes the next pending rows of a batch in id order; settled ones drop out of the index.
        sa.Index('ix_import_rows_pending', 'batch_id', 'id', postgresql_where=_PENDING, sqlite_where=_PENDING),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the batch
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey('import_batches.id'), index=True, nullable=False)
    #: the row's line in the file (the header is line 1)
    row_number: Mapped[int] = mapped_column(nullable=False)
    #: the path of the row's unit (the rows a user sees are those of their subtrees)
    org_path: Mapped[str] = mapped_column(sa.String(255), index=True, nullable=False)
    #: the row's cells by column key, as read from the file
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False)
    #: pending / imported / failed
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default='pending')
    #: the case the row opened
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=True)
    #: what happened (the step reached, or every reason it failed)
    message: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    #: when it settled
    finished_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    batch: Mapped[ImportBatch] = relationship(back_populates='rows')
    case: Mapped[Case | None] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'batch_id', 'row_number', status='pending', case_id=None)
