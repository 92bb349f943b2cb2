"""Users, groups (roles), memberships and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.org_units import OrgUnit


class User(Base):
    """A person who logs in; what they may see comes from their memberships."""

    __tablename__ = 'users'

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: login name, unique
    username: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    #: name shown to colleagues
    display_name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    #: argon2id hash
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    #: where reminders are mailed when SMTP is configured (None: in-app only)
    email: Mapped[str | None] = mapped_column(sa.String(254), nullable=True)
    #: the unit the person works at (for display and defaults)
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=False)
    #: disabled accounts cannot log in
    is_active: Mapped[bool] = mapped_column(nullable=False, default=True)
    #: failed logins since the last success
    failed_logins: Mapped[int] = mapped_column(nullable=False, default=0)
    #: login refused until this time after too many failures
    locked_until_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: last successful login
    last_login_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: bumped at logout, password change and unlock: every browser session started before is void
    session_version: Mapped[int] = mapped_column(nullable=False, default=0, server_default='0')
    #: base32 TOTP secret once the second factor is enrolled (never shown again after enrolment)
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    #: the last TOTP time step accepted, so a code cannot be replayed within its window
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    #: when the account was created
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    org_unit: Mapped[OrgUnit] = relationship()
    memberships: Mapped[list[Membership]] = relationship(back_populates='user', cascade='all, delete-orphan')

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'username', is_active=True)


class Group(Base):
    """A role such as township_staff or county_officer; BPMN candidate groups name these codes."""

    __tablename__ = 'groups'

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: code used in BPMN (camunda:candidateGroups, lane names)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    #: display name, e.g. 司法所工作人员
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)

    memberships: Mapped[list[Membership]] = relationship(back_populates='group')

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'code')


class Membership(Base):
    """A user holds a group's role at one org unit (and, for supervisors, everything below it)."""

    __tablename__ = 'memberships'
    __table_args__ = (sa.UniqueConstraint('user_id', 'group_id', 'org_unit_id'),)

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the member
    user_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id', ondelete='CASCADE'), index=True,
                                         nullable=False)
    #: the role
    group_id: Mapped[int] = mapped_column(sa.ForeignKey('groups.id'), index=True, nullable=False)
    #: where the role is held
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=False)

    user: Mapped[User] = relationship(back_populates='memberships')
    group: Mapped[Group] = relationship(back_populates='memberships')
    org_unit: Mapped[OrgUnit] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'user_id', 'group_id', 'org_unit_id')


class ApiToken(Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = 'api_tokens'

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: owner
    user_id: Mapped[int] = mapped_column(sa.ForeignKey('users.id', ondelete='CASCADE'), index=True,
                                         nullable=False)
    #: sha256 hex of the token
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    #: issued at
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: no longer accepted after this
    expires_dt: Mapped[datetime] = mapped_column(nullable=False)

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'user_id')
