"""Comments and attachments on a case, optionally about one of its tasks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.users import User

ATTACHMENT_STORAGES = ('database', 'folder')


class Comment(Base):
    """A note written on a case (or on one of its tasks); never edited, like the audit trail."""

    __tablename__ = 'comments'

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the case
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=False)
    #: the task it was written on, if any
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey('human_tasks.id'), index=True, nullable=True)
    #: who wrote it
    author_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=False)
    #: the text
    body: Mapped[str] = mapped_column(sa.Text, nullable=False)
    #: when
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    author: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', task_id=None)


class Attachment(Base):
    """An uploaded file (scan, photo, PDF) kept with a case, in the database or a configured folder."""

    __tablename__ = 'attachments'
    __table_args__ = (
        sa.CheckConstraint(f"storage IN ({', '.join(repr(s) for s in ATTACHMENT_STORAGES)})", name='valid_storage'),
        sa.CheckConstraint("(storage = 'database') = (content IS NOT NULL)", name='content_in_database'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the case
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=False)
    #: the task it was uploaded on, if any
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey('human_tasks.id'), index=True, nullable=True)
    #: the file name as uploaded (shown, never used as a path)
    filename: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: the checked media type
    content_type: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    #: bytes
    size: Mapped[int] = mapped_column(nullable=False)
    #: hex sha256 of the content: proves the file is the one uploaded
    sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: database or folder
    storage: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: the content when stored in the database (loaded only when downloaded)
    content: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary, nullable=True))
    #: the file's name inside the configured folder (random, not the uploaded name)
    stored_name: Mapped[str | None] = mapped_column(sa.String(80), nullable=True)
    #: who uploaded it
    uploaded_by_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=False)
    #: when
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    uploaded_by: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', 'filename')
