"""Org units, users, groups, memberships, passwords, lockout, the TOTP second factor and API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import now
from engine.errors import Conflict, NotFound, ValidationFailed
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

    :param enforce_policy: check the password policy (the demo loader's known passwords skip it)
    :param email: where reminders are mailed when SMTP is configured (None: in-app only)
    """
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
    """Grant ``group``'s role to ``user`` at ``org_unit``."""
    membership = Membership(user=user, group=group, org_unit=org_unit)
    session.add(membership)
    session.flush()
    audit.record(session, 'membership.added', actor=actor, org_path=org_unit.path,
                 after={'user': user.username, 'group': group.code, 'org_unit': org_unit.code})
    return membership


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
    :param actor: the administrator, or None for the command line
    """
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
        raise NotFound(N_('用户不存在'))
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
    """Turn the second factor off (a lost phone: an administrator re-enables enrolment)."""
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


def user_for_token(session: Session, token: str) -> User | None:
    """Return the active user a valid, unexpired token belongs to."""
    row = session.scalars(sa.select(ApiToken).where(ApiToken.token_hash == _token_digest(token))).one_or_none()
    if row is None or row.expires_dt <= now() or not row.user.is_active:
        return None
    return row.user
