"""Drafts of BPMN/DMN definitions edited in the browser modeler, and the lint warnings accepted at deploy."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.definitions import ProcessDefinition
    from engine.models.users import User

DRAFT_KINDS = ('bpmn', 'dmn')


class DefinitionDraft(Base):
    """A diagram or decision table being edited; nothing runs from it until it is deployed as a version."""

    __tablename__ = 'definition_drafts'
    __table_args__ = (
        sa.CheckConstraint("kind IN ('bpmn', 'dmn')", name='valid_kind'),
        sa.CheckConstraint('revision > 0', name='positive_revision'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the process id (or DMN definitions id) the XML declares now; it becomes the key when deployed
    key: Mapped[str] = mapped_column(sa.String(128), index=True, nullable=False)
    #: 'bpmn' or 'dmn'
    kind: Mapped[str] = mapped_column(sa.String(8), nullable=False)
    #: the process (or decision) name the XML declares now
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: the XML as last saved
    xml: Mapped[str] = mapped_column(sa.Text, nullable=False)
    #: the deployed version it was copied from (None: blank or uploaded)
    based_on_id: Mapped[int | None] = mapped_column(sa.ForeignKey('process_definitions.id'), index=True,
                                                    nullable=True)
    #: the uploaded file's name, shown in validation messages (None: not uploaded)
    filename: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    #: optimistic-lock counter: a save must name the revision it edited
    revision: Mapped[int] = mapped_column(nullable=False, default=1)
    # SQLAlchemy checks and bumps the revision in every UPDATE: two concurrent saves cannot both win.
    __mapper_args__ = {'version_id_col': revision}
    #: who created it
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=False)
    #: when
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: who saved it last
    updated_by_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=False)
    #: when
    updated_dt: Mapped[datetime] = mapped_column(nullable=False)

    based_on: Mapped[ProcessDefinition | None] = relationship()
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])
    updated_by: Mapped[User] = relationship(foreign_keys=[updated_by_id])

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'key', 'revision', kind='bpmn')


class AcceptedWarning(Base):
    """A lint warning a designer accepted when deploying a version from a draft (the version keeps it)."""

    __tablename__ = 'accepted_warnings'

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the version deployed despite the warning
    definition_id: Mapped[int] = mapped_column(sa.ForeignKey('process_definitions.id'), index=True,
                                               nullable=False)
    #: the lint rule, e.g. ``label-required``
    rule: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: the BPMN/DMN element concerned (None: the whole file)
    element_id: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    #: its name at the time
    element_name: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    #: the warning as the designer read it
    message: Mapped[str] = mapped_column(sa.Text, nullable=False)
    #: who accepted it
    accepted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when
    accepted_dt: Mapped[datetime] = mapped_column(nullable=False)

    accepted_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'definition_id', 'rule')
