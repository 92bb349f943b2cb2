"""Org units: province → city → county → township, stored as a materialised-path tree."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr, prefix_text

LEVELS = ('province', 'city', 'county', 'township')


class OrgUnit(Base):
    """A node of the administrative tree; every case, task and membership belongs to one."""

    __tablename__ = 'org_units'
    __table_args__ = (
        sa.CheckConstraint(f"level IN ({', '.join(repr(v) for v in LEVELS)})", name='valid_level'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: stable code (行政区划代码 or a local code), unique
    code: Mapped[str] = mapped_column(sa.String(32), unique=True, nullable=False)
    #: display name, e.g. 浏阳市司法局
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    #: one of LEVELS
    level: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: the parent unit; None for the root
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=True)
    #: materialised path of ids, '/1/4/9/': everything under a unit is one indexed prefix query
    path: Mapped[str] = mapped_column(prefix_text(255), index=True, nullable=False, default='')
    #: when the unit was created
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    parent: Mapped[OrgUnit | None] = relationship(remote_side=[id], back_populates='children')
    children: Mapped[list[OrgUnit]] = relationship(back_populates='parent')

    def contains(self, other: OrgUnit) -> bool:
        """Whether ``other`` is this unit or lies below it."""
        return other.path.startswith(self.path)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'code', 'level')
