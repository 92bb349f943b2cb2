"""Org units, users, groups, memberships, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import now
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models.org_units import LEVELS, OrgUnit
from engine.models.users import ApiToken, Group, Membership, User

#: failed logins before the account locks
MAX_FAILED_LOGINS = 5
#: how long a locked account stays locked
LOCKOUT = timedelta(minutes=15)
TOKEN_LIFETIME = timedelta(hours=12)
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, 64 MiB, p=4)
# Verifying against this when the user does not exist costs the same time as a real check.
_dummy_hash = _hasher.hash('fengqiao-timing-equaliser')


class LoginFailed(Exception):
    """Wrong username or password, or a locked account: one generic message for all."""


def configure_hashing(*, time_cost: int, memory_cost: int, parallelism: int = 1) -> None:
    """Replace the argon2id parameters (the test suite uses cheap ones; production keeps the default).

    Existing hashes keep verifying; they are re-hashed with the new parameters at the next login.
    """
    global _hasher, _dummy_hash
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    _dummy_hash = _hasher.hash('fengqiao-timing-equaliser')


def hash_password(password: str) -> str:
    """Return an argon2id hash of ``password``."""
    return _hasher.hash(password)


def check_password_policy(password: str) -> list[str]:
    """Return what is wrong with ``password`` (empty when acceptable)."""
    problems = []
    if len(password) < 8:
        problems.append('密码至少 8 位。')
    if password.isdigit() or password.isalpha():
        problems.append('密码需同时包含字母和数字。')
    return problems


def create_org_unit(session: Session, code: str, name: str, level: str, parent: OrgUnit | None) -> OrgUnit:
    """Add an org unit below ``parent`` and compute its materialised path."""
    if level not in LEVELS:
        raise ValidationFailed('机构层级无效', {'level': [f'可选值：{", ".join(LEVELS)}']})
    unit = OrgUnit(code=code, name=name, level=level, parent=parent, created_dt=now())
    session.add(unit)
    session.flush()
    unit.path = f'{parent.path if parent else "/"}{unit.id}/'
    return unit


def get_group(session: Session, code: str, name: str | None = None) -> Group:
    """Return the group ``code``, creating it when ``name`` is given."""
    group = session.scalars(sa.select(Group).where(Group.code == code)).one_or_none()
    if group is None:
        if name is None:
            raise NotFound(f'角色 {code} 不存在')
        group = Group(code=code, name=name)
        session.add(group)
        session.flush()
    return group


def create_user(session: Session, username: str, display_name: str, password: str, org_unit: OrgUnit, *,
                actor: User | None, enforce_policy: bool = True, email: str | None = None) -> User:
    """Create an account at ``org_unit``.

    :param enforce_policy: check the password policy (the demo loader's known passwords skip it)
    :param email: where reminders are mailed when SMTP is configured (None: in-app only)
    """
    problems = check_password_policy(password) if enforce_policy else []
    if problems:
        raise ValidationFailed('密码不符合要求', {'password': problems})
    if session.scalars(sa.select(User.id).where(User.username == username)).first() is not None:
        raise Conflict(f'用户名 {username} 已存在')
    user = User(username=username, display_name=display_name, password_hash=hash_password(password),
                org_unit=org_unit, org_unit_id=org_unit.id, is_active=True, failed_logins=0, created_dt=now(),
                email=email or None)
    session.add(user)
    session.flush()
    audit.record(session, 'user.created', actor=actor, org_path=org_unit.path,
                 after={'username': username, 'org_unit': org_unit.code, 'email': user.email})
    return user


def add_membership(session: Session, user: User, group: Group, org_unit: OrgUnit, *,
                   actor: User | None) -> Membership:
    """Grant ``group``'s role to ``user`` at ``org_unit``."""
    membership = Membership(user=user, group=group, org_unit=org_unit)
    session.add(membership)
    session.flush()
    audit.record(session, 'membership.added', actor=actor, org_path=org_unit.path,
                 after={'user': user.username, 'group': group.code, 'org_unit': org_unit.code})
    return membership


def authenticate(session: Session, username: str, password: str) -> User:
    """Return the user if the password is right; count failures and lock after MAX_FAILED_LOGINS.

    Raises ``LoginFailed`` with no hint of which part was wrong. Failure counts are written by the
    caller's commit, so the caller must commit even when this raises.
    """
    user = session.scalars(sa.select(User).where(User.username == username)).one_or_none()
    if user is None:
        try:
            _hasher.verify(_dummy_hash, password)
        except VerificationError:
            pass
        raise LoginFailed
    if not user.is_active or (user.locked_until_dt is not None and user.locked_until_dt > now()):
        raise LoginFailed
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until_dt, user.failed_logins = now() + LOCKOUT, 0
            audit.record(session, 'user.locked', actor=None, after={'username': user.username})
        raise LoginFailed from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until_dt, user.last_login_dt = 0, None, now()
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


def issue_token(session: Session, user: User) -> str:
    """Create a bearer token for ``user``; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_digest(token), created_dt=now(),
                         expires_dt=now() + TOKEN_LIFETIME))
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """Return the active user a valid, unexpired token belongs to."""
    row = session.scalars(sa.select(ApiToken).where(ApiToken.token_hash == _token_digest(token))).one_or_none()
    if row is None or row.expires_dt <= now() or not row.user.is_active:
        return None
    return row.user
