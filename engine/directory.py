"""Org units, users, groups, memberships, passwords, lockout, the TOTP second factor and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from engine import audit
from engine.access import AUDIT_ADMIN, SECURITY_ADMIN, SYSTEM_ADMIN_ROLES, THREE_ROLES, Scope, load_scope, refuse
from engine.clock import now
from engine.db import starts_with
from engine.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.org_units import LEVELS, OrgUnit
from engine.models.users import ApiToken, Group, Membership, User

#: failed logins before the account locks (the default of ``AccountPolicy``)
MAX_FAILED_LOGINS = 5
#: how long a locked account stays locked (the default of ``AccountPolicy``)
LOCKOUT = timedelta(minutes=15)
TOKEN_LIFETIME = timedelta(hours=12)
#: shortest acceptable password
PASSWORD_MIN_LENGTH = 8
#: longest accepted password (hashing a megabyte would be a cheap denial of service)
PASSWORD_MAX_LENGTH = 256
#: production argon2id parameters, RFC 9106 §4 second recommendation (64 MiB, t=3, p=4); written out so a
#: library upgrade that changes its defaults cannot silently change ours
ARGON2_PARAMETERS = {'time_cost': 3, 'memory_cost': 64 * 1024, 'parallelism': 4, 'hash_len': 32, 'salt_len': 16}
#: passwords refused whatever their length and character classes (compared lower-cased)
COMMON_PASSWORDS = frozenset({
    'password', 'password1', 'password123', 'passw0rd', 'p@ssw0rd', 'p@ssword', 'qwerty123', 'qwe123!@#',
    '1qaz2wsx', '1qaz@wsx', '1q2w3e4r', '1q2w3e4r5t', 'abc12345', 'abcd1234', 'aa123456', 'a1234567',
    'admin123', 'admin@123', 'admin888', 'root1234', 'test1234', 'welcome1', 'iloveyou1', 'zxcvbnm1',
    'woaini1314', 'woaini520', 'changeme1', 'letmein1', 'demo1234', 'sifaju123', 'fengqiao1', 'huawei@123',
})
_hasher = PasswordHasher(time_cost=ARGON2_PARAMETERS['time_cost'], memory_cost=ARGON2_PARAMETERS['memory_cost'],
                         parallelism=ARGON2_PARAMETERS['parallelism'], hash_len=ARGON2_PARAMETERS['hash_len'],
                         salt_len=ARGON2_PARAMETERS['salt_len'], type=Type.ID)
# Verifying against this when the user does not exist costs the same time as a real check.
_dummy_hash = _hasher.hash('fengqiao-timing-equaliser')


@dataclass(frozen=True)
class AccountPolicy:
    """Lockout and second-factor settings (``configure_accounts``; the web app sets them from its config)."""

    #: failed logins (wrong password or wrong TOTP code) before the account locks
    max_failed_logins: int = MAX_FAILED_LOGINS
    #: how long a locked account stays locked before it unlocks by itself
    lockout: timedelta = LOCKOUT
    #: holders of these group codes must enrol a TOTP second factor
    totp_required_roles: frozenset[str] = frozenset()


_policy = AccountPolicy()

MSG_TWO_ROLES = N_('三员分立：同一人不能兼任系统管理员、安全保密管理员、安全审计员中的两个角色。')
MSG_SELF = N_('不能给自己授予、撤销角色或重置双因素认证，请由另一位安全保密管理员办理。')
MSG_NOT_SECURITY_ADMIN = N_('只有安全保密管理员可以授予、撤销角色或重置双因素认证。')
MSG_NOT_SYSTEM_ADMIN = N_('只有系统管理员可以管理用户账号。')
MSG_OUTSIDE = N_('机构或用户不存在，或不在您的管辖范围内。')
MSG_PROTECTED = N_('安全保密管理员和安全审计员的账号不能由系统管理员修改。')
MSG_SELF_DEACTIVATE = N_('不能停用自己的账号。')
MSG_NO_USER = N_('用户不存在')
MSG_NO_MEMBERSHIP = N_('该角色授权不存在')
#: the most users one page of the account list shows
USER_LIST_MAX = 200


class LoginFailed(Exception):
    """Wrong username or password, or a locked account: one generic message for all."""


class SecondFactorRequired(LoginFailed):
    """The password was right but the account has a TOTP second factor: ask for the code.

    A subclass of ``LoginFailed`` on purpose: a caller that knows nothing of second factors (the token
    endpoint) refuses the login rather than letting the password alone through.
    """

    def __init__(self, user: User) -> None:
        super().__init__(user.username)
        self.user = user


def configure_accounts(policy: AccountPolicy) -> None:
    """Install the lockout and second-factor settings."""
    global _policy
    _policy = policy


def account_policy() -> AccountPolicy:
    """The lockout and second-factor settings in force."""
    return _policy


def configure_hashing(*, time_cost: int, memory_cost: int, parallelism: int = 1) -> None:
    """Replace the argon2id parameters (the test suite uses cheap ones; production keeps the default).

    Existing hashes keep verifying; they are re-hashed with the new parameters at the next login.
    """
    global _hasher, _dummy_hash
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
                             hash_len=ARGON2_PARAMETERS['hash_len'], salt_len=ARGON2_PARAMETERS['salt_len'],
                             type=Type.ID)
    _dummy_hash = _hasher.hash('fengqiao-timing-equaliser')


def hash_password(password: str) -> str:
    """Return an argon2id hash of ``password``."""
    return _hasher.hash(password)


def check_password_policy(password: str, username: str | None = None) -> list[str]:
    """Return what is wrong with ``password`` (empty when acceptable).

    At least ``PASSWORD_MIN_LENGTH`` characters from three of four classes (lower case, upper case, digits,
    symbols), not containing the username, not a well-known password.
    """
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(N_('密码至少 8 位。'))
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(N_('密码不能超过 256 位。'))
    if _character_classes(password) < 3:
        problems.append(N_('密码需包含大写字母、小写字母、数字、符号中的至少三类。'))
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append(N_('密码不能包含用户名。'))
    if password.lower() in COMMON_PASSWORDS:
        problems.append(N_('密码过于常见，请换一个。'))
    return problems


def _character_classes(password: str) -> int:
    classes = (any(c.islower() for c in password), any(c.isupper() for c in password),
               any(c.isdigit() for c in password), any(not c.isalnum() or c in string.punctuation for c in password))
    return sum(classes)


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

    :param actor: the 系统管理员 creating it (their subtree must hold ``org_unit``), or None for the command
        line and the loaders
    :param enforce_policy: check the password policy (the demo loader's known passwords skip it)
    :param email: where reminders are mailed when SMTP is configured (None: in-app only)
    """
    if actor is not None:
        _require_reach(session, actor, SYSTEM_ADMIN_ROLES, org_unit.path, MSG_NOT_SYSTEM_ADMIN)
    problems = check_password_policy(password, username) if enforce_policy else []
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
    """Grant ``group``'s role to ``user`` at ``org_unit`` (audited as ``membership.added``).

    Whoever calls, a person never holds two of the 三员 roles (see :func:`check_separation`). A grant made by
    a person (not the command line or the demo loader) must come from a 安全保密管理员 whose subtree holds
    both ``org_unit`` and the user's own unit, and never to themselves.

    :param actor: the security administrator, or None for the command line and the loaders
    :raises ValidationFailed: the grant would join two of the 三员 roles in one person
    :raises AccessDenied: the actor is not a security administrator, or grants to themselves
    :raises NotFound: the unit or the user lies outside the actor's subtree
    :raises Conflict: the user already holds that role at that unit
    """
    if actor is not None:
        _require_grantor(session, actor, user, user.org_unit.path, org_unit.path)
    check_separation(session, user, group.code)
    if session.scalar(sa.select(Membership.id).where(Membership.user_id == user.id, Membership.group_id == group.id,
                                                     Membership.org_unit_id == org_unit.id)) is not None:
        raise Conflict(N_('该用户在该机构已有此角色。'))
    membership = Membership(user=user, group=group, org_unit=org_unit)
    session.add(membership)
    session.flush()
    audit.record(session, 'membership.added', actor=actor, org_path=org_unit.path,
                 after={'user': user.username, 'group': group.code, 'org_unit': org_unit.code})
    return membership


def remove_membership(session: Session, membership: Membership, *, actor: User | None) -> None:
    """Revoke one membership (audited as ``membership.removed`` at its unit).

    The user's next request already runs without the role: grants are read afresh for every request.

    :param actor: the security administrator, or None for the command line
    :raises AccessDenied: the actor is not a security administrator, or revokes their own role
    :raises NotFound: the membership's unit lies outside the actor's subtree
    """
    user, group, unit = membership.user, membership.group, membership.org_unit
    if actor is not None:
        _require_grantor(session, actor, user, unit.path)
    session.delete(membership)
    session.flush()
    audit.record(session, 'membership.removed', actor=actor, org_path=unit.path,
                 before={'user': user.username, 'group': group.code, 'org_unit': unit.code})


def authenticate(session: Session, username: str, password: str) -> User:
    """Return the user if the password is right; count failures and lock after ``max_failed_logins``.

    Raises ``LoginFailed`` with no hint of which part was wrong, and ``SecondFactorRequired`` when the
    password was right but the account has (or must enrol) a TOTP second factor. Failure counts are
    written by the caller's commit, so the caller must commit even when this raises.
    """
    user = session.scalars(sa.select(User).where(User.username == username)).one_or_none()
    if user is None or not user.is_active or is_locked(user):
        # Unknown, disabled and locked accounts cost one hash too: timing tells nothing.
        _verify_dummy(password)
        raise LoginFailed
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        _count_failure(session, user)
        raise LoginFailed from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if user.totp_secret is not None or totp_required(session, user):
        raise SecondFactorRequired(user)
    _succeed(user)
    return user


def complete_enrolment_login(user: User) -> User:
    """Let a user whose role needs a second factor but who has none yet in, to enrol it and nothing else.

    The web layer restricts such a session to the enrolment page; the token endpoint never calls this.
    """
    if user.totp_secret is not None:
        raise LoginFailed
    _succeed(user)
    return user


def _verify_dummy(password: str) -> None:
    try:
        _hasher.verify(_dummy_hash, password)
    except VerificationError:
        pass


def is_locked(user: User) -> bool:
    """Whether ``user`` is inside a lockout period."""
    return user.locked_until_dt is not None and user.locked_until_dt > now()


def _count_failure(session: Session, user: User) -> None:
    user.failed_logins += 1
    if user.failed_logins >= _policy.max_failed_logins:
        user.locked_until_dt, user.failed_logins = now() + _policy.lockout, 0
        audit.record(session, 'user.locked', actor=None, org_path=user.org_unit.path,
                     after={'username': user.username, 'locked_until': user.locked_until_dt.isoformat()})


def _succeed(user: User) -> None:
    user.failed_logins, user.locked_until_dt, user.last_login_dt = 0, None, now()


def unlock_user(session: Session, user: User, *, actor: User | None) -> User:
    """Lift a lockout and reset the failure count (an administrator's decision, audited as ``user.unlocked``).

    :param user: the locked (or not) account
    :param actor: a 系统管理员 whose subtree holds the user's unit, or None for the command line
    """
    if actor is not None:
        _require_reach(session, actor, SYSTEM_ADMIN_ROLES, user.org_unit.path, MSG_NOT_SYSTEM_ADMIN)
    before = {'failed_logins': user.failed_logins,
              'locked_until': user.locked_until_dt.isoformat() if user.locked_until_dt else None}
    user.failed_logins, user.locked_until_dt = 0, None
    audit.record(session, 'user.unlocked', actor=actor, org_path=user.org_unit.path,
                 before=before, after={'username': user.username})
    return user


def find_user(session: Session, username: str) -> User:
    """Return the account named ``username`` or raise NotFound."""
    user = session.scalars(sa.select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise NotFound(MSG_NO_USER)
    return user


def change_password(session: Session, user: User, password: str, *, actor: User | None) -> User:
    """Set a new password (policy checked) and end every browser session of ``user``.

    :param actor: who changed it (the user, an administrator, or None for the command line)
    """
    problems = check_password_policy(password, user.username)
    if problems:
        raise ValidationFailed(N_('密码不符合要求'), {'password': problems})
    user.password_hash = hash_password(password)
    user.session_version += 1
    audit.record(session, 'user.password_changed', actor=actor, org_path=user.org_unit.path,
                 after={'username': user.username})
    return user


def end_sessions(user: User) -> None:
    """Void every browser session of ``user`` (logout; the cookie itself lives in the browser)."""
    user.session_version += 1


# -- TOTP second factor ---------------------------------------------------------------------------------

TOTP_ISSUER = '枫桥'


def totp_required(session: Session, user: User) -> bool:
    """Whether ``user`` holds a role that must use a TOTP second factor."""
    roles = _policy.totp_required_roles
    if not roles:
        return False
    held = session.scalars(sa.select(Group.code).join(Membership).where(Membership.user_id == user.id))
    return any(code in roles for code in held)


def new_totp_secret() -> str:
    """A fresh random base32 secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(length=32)


def totp_uri(user: User, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step (30 s) ``code`` is valid for, one step of clock drift either way; never an old one."""
    code = code.strip().replace(' ', '')
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now())
    for step in (current, current - 1, current + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_second_factor(session: Session, user: User, code: str) -> User:
    """Finish a login whose password was right: check the TOTP ``code``.

    A wrong code counts as a failed login (towards the lockout); a code is accepted once only.
    Raises ``LoginFailed``; the caller must commit either way.
    """
    if user.totp_secret is None or not user.is_active or is_locked(user):
        raise LoginFailed
    step = _matching_step(user.totp_secret, code, user.totp_last_step)
    if step is None:
        _count_failure(session, user)
        raise LoginFailed
    user.totp_last_step = step
    _succeed(user)
    return user


def enrol_totp(session: Session, user: User, secret: str, code: str) -> User:
    """Turn the second factor on with ``secret`` once the user proves their app shows ``code``.

    :raises ValidationFailed: the code does not match (nothing is stored)
    """
    step = _matching_step(secret, code, None)
    if step is None:
        raise ValidationFailed(N_('验证码不正确，请核对手机时间后重试。'), {'code': [N_('验证码不正确')]})
    user.totp_secret, user.totp_last_step = secret, step
    audit.record(session, 'user.totp_enrolled', actor=user, org_path=user.org_unit.path,
                 after={'username': user.username})
    return user


def remove_totp(session: Session, user: User, *, actor: User | None) -> User:
    """Turn the second factor off (a lost phone: an administrator re-enables enrolment).

    :param actor: a 安全保密管理员 whose subtree holds the user's unit (not the user), or None for the
        command line
    """
    if actor is not None:
        _require_grantor(session, actor, user, user.org_unit.path)
    user.totp_secret, user.totp_last_step = None, None
    user.session_version += 1
    audit.record(session, 'user.totp_removed', actor=actor, org_path=user.org_unit.path,
                 after={'username': user.username})
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


def issue_token(session: Session, user: User) -> str:
    """Create a bearer token for ``user``; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_digest(token), created_dt=now(),
                         expires_dt=now() + TOKEN_LIFETIME))
    return token


def _with_grants(query: sa.Select[Any]) -> sa.Select[Any]:
    """``query`` (of a user) joined to the user's memberships, their groups and units: one row per grant."""
    return (query.outerjoin(Membership, Membership.user_id == User.id)
            .outerjoin(Group, Group.id == Membership.group_id)
            .outerjoin(OrgUnit, OrgUnit.id == Membership.org_unit_id))


def _holder_scope(user_id: int, rows: Sequence[sa.Row[Any]]) -> Scope:
    """The grants of rows whose last two columns are a group code and a unit path (none for no membership)."""
    return Scope(user_id, tuple((row[-2], row[-1]) for row in rows if row[-2] is not None))


#: a token's user and their grants; built once: every API request runs it first, and building the statement
#: and its cache key each time cost as much as running it
_TOKEN_HOLDER = _with_grants(sa.select(User, ApiToken.expires_dt, Group.code, OrgUnit.path)
                             .join(ApiToken, ApiToken.user_id == User.id)).where(
    ApiToken.token_hash == sa.bindparam('digest'))
#: a browser session's user and their grants, as ``_TOKEN_HOLDER`` for a token: every page runs it first
_SESSION_HOLDER = _with_grants(sa.select(User, Group.code, OrgUnit.path)).where(User.id == sa.bindparam('user_id'))


def token_holder(session: Session, token: str) -> tuple[User, Scope] | None:
    """The active user a valid, unexpired token belongs to, with their grants (what ``load_scope`` reads).

    One round trip for what every API request needs first: the token, its user and their memberships.
    """
    rows = session.execute(_TOKEN_HOLDER, {'digest': _token_digest(token)}).all()
    if not rows:
        return None
    user, expires_dt = rows[0][0], rows[0][1]
    if expires_dt <= now() or not user.is_active:
        return None
    return user, _holder_scope(user.id, rows)


def session_holder(session: Session, user_id: int) -> tuple[User, Scope] | None:
    """The active user a login session names, with their grants, in one round trip (as :func:`token_holder`)."""
    rows = session.execute(_SESSION_HOLDER, {'user_id': user_id}).all()
    if not rows or not rows[0][0].is_active:
        return None
    return rows[0][0], _holder_scope(user_id, rows)


# -- 三员: who administers whom ----------------------------------------------------------------------------------

def _three_role(code: str) -> str | None:
    """Which of the 三员 the group ``code`` makes its holder (``admin`` counts as ``system_admin``)."""
    return next((role for role, codes in THREE_ROLES.items() if code in codes), None)


def check_role_codes(codes: Iterable[str]) -> None:
    """Refuse a set of group codes that holds two of the 三员 roles (the command line checks it up front).

    :raises ValidationFailed: naming the ``group`` field
    """
    if len({role for code in codes if (role := _three_role(code))}) > 1:
        raise ValidationFailed(MSG_TWO_ROLES, {'group': [MSG_TWO_ROLES]})


def check_separation(session: Session, user: User, code: str) -> None:
    """Refuse to give ``user`` the group ``code`` when it would make them two of the 三员.

    :raises ValidationFailed: naming the ``group`` field
    """
    if _three_role(code) is None:
        return
    held = session.scalars(sa.select(Group.code).join(Membership).where(Membership.user_id == user.id))
    check_role_codes({code, *held})


def _require_reach(session: Session, actor: User, roles: frozenset[str], path: str, message: str) -> None:
    """Check ``actor`` holds one of ``roles`` at or above ``path``.

    :raises AccessDenied: ``message``, when the actor holds none of ``roles`` anywhere
    :raises NotFound: the actor holds them, but not over ``path`` (outside their subtree, as if absent)
    """
    paths = load_scope(session, actor).paths_of(roles)
    if not paths:
        raise AccessDenied(message)
    if not any(path.startswith(p) for p in paths):
        raise NotFound(MSG_OUTSIDE)


def _require_grantor(session: Session, actor: User, user: User, *paths: str) -> None:
    """A 安全保密管理员 over every one of ``paths``, acting on someone else than themselves."""
    for path in paths:
        _require_reach(session, actor, frozenset({SECURITY_ADMIN}), path, MSG_NOT_SECURITY_ADMIN)
    if actor.id == user.id:
        raise AccessDenied(MSG_SELF)


def _require_account_admin(session: Session, actor: User, user: User) -> None:
    """A 系统管理员 over ``user``'s unit; the accounts of the other two 三员 are out of their reach.

    A system administrator who could set the password of a security administrator could log in as one and
    grant roles, which is what the separation forbids: those accounts are changed on the command line.
    """
    _require_reach(session, actor, SYSTEM_ADMIN_ROLES, user.org_unit.path, MSG_NOT_SYSTEM_ADMIN)
    held = set(session.scalars(sa.select(Group.code).join(Membership).where(Membership.user_id == user.id)))
    if actor.id != user.id and {_three_role(code) for code in held} & {SECURITY_ADMIN, AUDIT_ADMIN}:
        raise AccessDenied(MSG_PROTECTED)


def update_user(session: Session, user: User, *, display_name: str, email: str | None, org_unit: OrgUnit,
                actor: User | None) -> User:
    """Change an account's display name, e-mail and unit (audited as ``user.updated``, changed values only).

    :param actor: a 系统管理员 whose subtree holds the old and the new unit, or None for the command line
    """
    if actor is not None:
        _require_account_admin(session, actor, user)
        _require_reach(session, actor, SYSTEM_ADMIN_ROLES, org_unit.path, MSG_NOT_SYSTEM_ADMIN)
    old = {'display_name': user.display_name, 'email': user.email, 'org_unit': user.org_unit.code}
    new = {'display_name': display_name, 'email': email or None, 'org_unit': org_unit.code}
    changed = [key for key in old if old[key] != new[key]]
    if not changed:
        return user
    user.display_name, user.email, user.org_unit, user.org_unit_id = display_name, email or None, org_unit, org_unit.id
    audit.record(session, 'user.updated', actor=actor, org_path=org_unit.path,
                 before={'username': user.username, **{key: old[key] for key in changed}},
                 after={'username': user.username, **{key: new[key] for key in changed}})
    return user


def set_user_active(session: Session, user: User, active: bool, *, actor: User | None) -> User:
    """Deactivate an account (it can no longer log in; its sessions and API tokens stop working) or
    reactivate it; audited as ``user.deactivated`` or ``user.reactivated``.

    :param actor: a 系统管理员 whose subtree holds the user's unit (not the user), or None for the command line
    """
    if actor is not None:
        _require_account_admin(session, actor, user)
        if actor.id == user.id and not active:
            raise AccessDenied(MSG_SELF_DEACTIVATE)
    if user.is_active == active:
        return user
    user.is_active = active
    if not active:
        user.session_version += 1
    audit.record(session, 'user.reactivated' if active else 'user.deactivated', actor=actor,
                 org_path=user.org_unit.path, after={'username': user.username})
    return user


def reset_password(session: Session, user: User, password: str, *, actor: User | None) -> User:
    """Set a new password chosen by an administrator (policy checked) and end the user's browser sessions.

    Audited as ``user.password_reset``; the password itself is never recorded.

    :param actor: a 系统管理员 whose subtree holds the user's unit, or None for the command line
    :raises ValidationFailed: the password breaks the policy (field ``password``)
    """
    if actor is not None:
        _require_account_admin(session, actor, user)
    problems = check_password_policy(password, user.username)
    if problems:
        raise ValidationFailed(N_('密码不符合要求'), {'password': problems})
    user.password_hash = hash_password(password)
    user.session_version += 1
    audit.record(session, 'user.password_reset', actor=actor, org_path=user.org_unit.path,
                 after={'username': user.username})
    return user


# -- the administrators' lists -----------------------------------------------------------------------------------

def units_within(session: Session, paths: Iterable[str]) -> list[OrgUnit]:
    """The units in the subtrees at ``paths``, in tree order."""
    paths = tuple(paths)
    if not paths:
        return []
    return list(session.scalars(sa.select(OrgUnit).where(sa.or_(*(starts_with(OrgUnit.path, p) for p in paths)))
                                .order_by(OrgUnit.path)))


def unit_within(session: Session, paths: Iterable[str], code: str) -> OrgUnit:
    """The unit ``code`` if it lies in one of the subtrees at ``paths``.

    :raises NotFound: no such unit, or outside the subtrees (the same answer)
    """
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    if unit is None or not any(unit.path.startswith(p) for p in paths):
        raise NotFound(MSG_OUTSIDE)
    return unit


def list_users(session: Session, paths: Iterable[str], *, text: str | None = None,
               limit: int = USER_LIST_MAX) -> list[User]:
    """The accounts whose unit lies in the subtrees at ``paths``, by unit then username.

    :param text: a part of the username or the display name
    :param limit: at most this many (the caller asks for one more to know whether the list was cut)
    """
    paths = tuple(paths)
    if not paths:
        return []
    query = (sa.select(User).join(OrgUnit, OrgUnit.id == User.org_unit_id)
             .where(sa.or_(*(starts_with(OrgUnit.path, p) for p in paths)))
             .order_by(OrgUnit.path, User.username).limit(limit))
    if text:
        query = query.where(sa.or_(User.username.contains(text, autoescape=True),
                                   User.display_name.contains(text, autoescape=True)))
    return list(session.scalars(query))


def user_within(session: Session, scope: Scope, roles: frozenset[str], user_id: int) -> User:
    """The account ``user_id`` if its unit lies where ``scope`` holds one of ``roles``.

    :raises NotFound: no such account, or outside those subtrees (the same answer; the attempt on an existing
        account is noted, see ``engine.access.refuse``)
    """
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(MSG_NO_USER)
    if not any(user.org_unit.path.startswith(p) for p in scope.paths_of(roles)):
        raise refuse(session, scope.user_id, 'user', user_id, user.org_unit.path, MSG_NO_USER)
    return user


def membership_within(session: Session, scope: Scope, roles: frozenset[str], membership_id: int) -> Membership:
    """The membership ``membership_id`` if its unit lies where ``scope`` holds one of ``roles``.

    :raises NotFound: no such membership, or outside those subtrees (the attempt noted, as for an account)
    """
    membership = session.get(Membership, membership_id)
    if membership is None:
        raise NotFound(MSG_NO_MEMBERSHIP)
    if not any(membership.org_unit.path.startswith(p) for p in scope.paths_of(roles)):
        raise refuse(session, scope.user_id, 'membership', membership_id, membership.org_unit.path, MSG_NO_MEMBERSHIP)
    return membership


def memberships_of(session: Session, user: User) -> list[Membership]:
    """Every role ``user`` holds, with its unit, by unit then group code."""
    return list(session.scalars(sa.select(Membership).join(OrgUnit, OrgUnit.id == Membership.org_unit_id)
                                .join(Group, Group.id == Membership.group_id).where(Membership.user_id == user.id)
                                .order_by(OrgUnit.path, Group.code)))


def group_counts(session: Session, paths: Iterable[str]) -> list[tuple[Group, int]]:
    """Every group with how many memberships it has at units in the subtrees at ``paths``, by code."""
    paths = tuple(paths)
    within = sa.or_(*(starts_with(OrgUnit.path, p) for p in paths)) if paths else sa.false()
    counted = (sa.select(Membership.group_id, sa.func.count().label('members'))
               .join(OrgUnit, OrgUnit.id == Membership.org_unit_id).where(within)
               .group_by(Membership.group_id).subquery())
    rows = session.execute(sa.select(Group, sa.func.coalesce(counted.c.members, 0))
                           .outerjoin(counted, counted.c.group_id == Group.id).order_by(Group.code)).tuples()
    return [(group, int(count)) for group, count in rows]
