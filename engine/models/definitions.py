"""Deployed BPMN and DMN definitions, one row per version."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.users import User


class ProcessDefinition(Base):
    """One deployed version of a process (BPMN) or decision table (DMN); never changed once stored."""

    __tablename__ = 'process_definitions'
    __table_args__ = (
        sa.UniqueConstraint('key', 'version'),
        sa.CheckConstraint("kind IN ('bpmn', 'dmn')", name='valid_kind'),
        sa.CheckConstraint('version > 0', name='positive_version'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the executable process id (or DMN definitions id): the key clients start cases with
    key: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    #: 1, 2, 3... per key
    version: Mapped[int] = mapped_column(nullable=False)
    #: 'bpmn' or 'dmn'
    kind: Mapped[str] = mapped_column(sa.String(8), nullable=False)
    #: the process name from the diagram
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: the XML exactly as deployed; loaded on first access, since every command reads its definition row
    #: but only a parse, the diagram or a download needs the XML
    source: Mapped[str] = mapped_column(sa.Text, nullable=False, deferred=True)
    #: sha256 of the source; deploying the same source again creates no version
    checksum: Mapped[str] = mapped_column(sa.String(64), index=True, nullable=False)
    #: who deployed it (None for the system loader)
    deployed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when
    deployed_dt: Mapped[datetime] = mapped_column(nullable=False)

    deployed_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'key', 'version', kind='bpmn')
