"""Saved to-do filters (常用筛选): a user's own, or shared with the holders of a group below a unit."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr, prefix_text

if TYPE_CHECKING:
    from engine.models.users import User


class SavedFilter(Base):
    """A named to-do view plus filter criteria and sort order, shown with its live count."""

    __tablename__ = 'saved_filters'
    __table_args__ = (
        sa.UniqueConstraint('owner_id', 'name'),
        sa.CheckConstraint('(shared_group IS NULL) = (shared_org_path IS NULL)', name='shared_pair'),
        sa.Index('ix_saved_filters_shared', 'shared_group', 'shared_org_path'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: who made it (and may change or delete it)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id', ondelete='CASCADE'), index=True,
                                          nullable=False)
    #: shown on the tab
    name: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    #: the to-do view it narrows (mine, group, all, ...)
    view: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: the filter and sort criteria, as ``engine.tasks.TaskFilter`` reads them
    criteria: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    #: shared with the holders of this group ...
    shared_group: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    #: ... at this unit or below (None: personal)
    shared_org_path: Mapped[str | None] = mapped_column(prefix_text(255), nullable=True)
    #: when it was saved
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    owner: Mapped[User] = relationship()

    @property
    def is_shared(self) -> bool:
        """Whether other people see it."""
        return self.shared_group is not None

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'owner_id', 'name', shared_group=None)
