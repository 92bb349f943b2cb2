"""Accounts: argon2id hashing and rehash, password policy, lockout and unlock, no user enumeration, the TOTP
second factor, session voiding; the 三员 separation of who grants roles and who keeps accounts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import directory
from engine.access import Scope, load_scope
from engine.clock import FrozenClock, now
from engine.directory import (
    AccountPolicy,
    LoginFailed,
    SecondFactorRequired,
    add_membership,
    authenticate,
    change_password,
    check_password_policy,
    check_role_codes,
    configure_accounts,
    configure_hashing,
    create_user,
    enrol_totp,
    get_group,
    new_totp_secret,
    remove_membership,
    remove_totp,
    reset_password,
    set_user_active,
    unlock_user,
    update_user,
    verify_second_factor,
)
from engine.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.users import Group, Membership, User
from tests.conftest import executed_statements
from tests.fixtures.directory import PASSWORD, Org


@pytest.fixture
def policy() -> Iterator[Callable[..., None]]:
    """Install an account policy for one test and restore the default afterwards."""
    def install(**settings: object) -> None:
        configure_accounts(AccountPolicy(**settings))  # type: ignore[arg-type]
    yield install
    configure_accounts(AccountPolicy())


@pytest.fixture
def staff(people: dict[str, User]) -> User:
    return people['staff']


def _kinds(session: Session) -> list[str]:
    return list(session.scalars(sa.select(AuditEvent.kind).order_by(AuditEvent.id)))


def _fail(session: Session, username: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(LoginFailed):
            authenticate(session, username, 'Wrong-pass1')
    session.commit()


# -- hashing --------------------------------------------------------------------------------------------

def test_hashes_are_argon2id_with_the_configured_parameters(session: Session, staff: User) -> None:
    assert staff.password_hash.startswith('$argon2id$v=19$m=1024,t=1,p=1$')
    assert directory.ARGON2_PARAMETERS == {'time_cost': 3, 'memory_cost': 65536, 'parallelism': 4,
                                           'hash_len': 32, 'salt_len': 16}


def test_login_rehashes_when_the_parameters_change(session: Session, staff: User) -> None:
    old = staff.password_hash
    configure_hashing(time_cost=2, memory_cost=2048)
    try:
        authenticate(session, 'staff', PASSWORD)
        session.commit()
    finally:
        configure_hashing(time_cost=1, memory_cost=1024)
    assert staff.password_hash != old and staff.password_hash.startswith('$argon2id$v=19$m=2048,t=2,p=1$')
    assert authenticate(session, 'staff', PASSWORD) is staff  # the new hash verifies under the old settings


# -- password policy ------------------------------------------------------------------------------------

@pytest.mark.parametrize(('password', 'problem'), [
    ('Ab1!', '密码至少 8 位。'),
    ('abcdefgh1', '密码需包含大写字母、小写字母、数字、符号中的至少三类。'),
    ('12345678!', '密码需包含大写字母、小写字母、数字、符号中的至少三类。'),
    ('Liuxy-2025', '密码不能包含用户名。'),
    ('P@ssw0rd', '密码过于常见，请换一个。'),
    ('Admin@123', '密码过于常见，请换一个。'),
    ('Aa1!' * 65, '密码不能超过 256 位。'),
])
def test_password_policy_refuses(password: str, problem: str) -> None:
    assert problem in check_password_policy(password, 'liuxy')


@pytest.mark.parametrize('password', ['Tj-2025-Sifa!', 'qiao feng 2025', 'Yiyang#county7', PASSWORD])
def test_password_policy_accepts(password: str) -> None:
    assert check_password_policy(password, 'liuxy') == []


def test_change_password_checks_the_policy_and_voids_sessions(session: Session, staff: User) -> None:
    version = staff.session_version
    with pytest.raises(ValidationFailed) as refused:
        change_password(session, staff, 'staff-Pass1', actor=staff)
    assert refused.value.fields == {'password': ['密码不能包含用户名。']}
    assert staff.session_version == version
    change_password(session, staff, 'Neues-Passw0rt', actor=staff)
    session.commit()
    assert staff.session_version == version + 1
    assert authenticate(session, 'staff', 'Neues-Passw0rt') is staff
    assert 'user.password_changed' in _kinds(session)


# -- lockout ----------------------------------------------------------------------------------------------

def test_lockout_after_the_configured_failures_then_unlocks_after_the_delay(
        session: Session, staff: User, clock: FrozenClock, policy: Callable[..., None]) -> None:
    policy(max_failed_logins=3, lockout=timedelta(minutes=10))
    _fail(session, 'staff', 2)
    assert staff.failed_logins == 2 and staff.locked_until_dt is None
    _fail(session, 'staff', 1)
    assert staff.locked_until_dt == now() + timedelta(minutes=10)
    with pytest.raises(LoginFailed):
        authenticate(session, 'staff', PASSWORD)  # locked: the right password does not help
    clock.advance(timedelta(minutes=9, seconds=59))
    with pytest.raises(LoginFailed):
        authenticate(session, 'staff', PASSWORD)
    clock.advance(timedelta(seconds=2))
    assert authenticate(session, 'staff', PASSWORD) is staff
    assert staff.locked_until_dt is None and staff.failed_logins == 0
    session.commit()
    locked = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'user.locked')).one()
    assert locked.after is not None and locked.after['username'] == 'staff'


def test_admin_unlock_lifts_the_lockout_and_is_audited(session: Session, staff: User, clock: FrozenClock,
                                                      org: Org, create_member: Callable[..., User]) -> None:
    sysadmin = create_member('sysadmin', 'system_admin', org.province)
    _fail(session, 'staff', directory.MAX_FAILED_LOGINS)
    assert staff.locked_until_dt is not None
    unlock_user(session, staff, actor=sysadmin)
    session.commit()
    assert authenticate(session, 'staff', PASSWORD) is staff
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'user.unlocked')).one()
    assert event.actor_id == sysadmin.id and event.before is not None
    assert event.before['locked_until'] is not None and event.after == {'username': 'staff'}


def _seconds(session: Session, username: str) -> float:
    started = time.perf_counter()
    try:
        authenticate(session, username, 'Wrong-pass1')
    except LoginFailed:
        pass
    return time.perf_counter() - started


def test_unknown_and_locked_accounts_cost_one_hash_like_a_wrong_password(
        session: Session, staff: User, people: dict[str, User], policy: Callable[..., None]) -> None:
    policy(max_failed_logins=1000)
    # Costly enough that the hash dominates a login; an unknown name must not answer measurably faster.
    configure_hashing(time_cost=2, memory_cost=16 * 1024)
    try:
        change_password(session, staff, 'Neues-Passw0rt', actor=None)
        people['staff2'].locked_until_dt = now() + timedelta(hours=1)
        session.commit()
        samples: dict[str, list[float]] = {'wrong': [], 'unknown': [], 'locked': []}
        for _ in range(9):  # interleaved, and the fastest of each kept: load on a shared machine only adds
            for kind, username in (('wrong', 'staff'), ('unknown', 'nobody'), ('locked', 'staff2')):
                samples[kind].append(_seconds(session, username))
    finally:
        configure_hashing(time_cost=1, memory_cost=1024)
    wrong, unknown, locked = (min(samples[k]) for k in ('wrong', 'unknown', 'locked'))
    assert 0.5 < unknown / wrong < 2 and 0.5 < locked / wrong < 2, (wrong, unknown, locked)


# -- TOTP --------------------------------------------------------------------------------------------------

def _enrolled(session: Session, user: User) -> pyotp.TOTP:
    secret = new_totp_secret()
    enrol_totp(session, user, secret, pyotp.TOTP(secret).at(now()))
    session.commit()
    return pyotp.TOTP(secret)


def test_enrolment_needs_a_matching_code(session: Session, staff: User, clock: FrozenClock) -> None:
    secret = new_totp_secret()
    with pytest.raises(ValidationFailed):
        enrol_totp(session, staff, secret, '000000' if pyotp.TOTP(secret).at(now()) != '000000' else '111111')
    assert staff.totp_secret is None
    enrol_totp(session, staff, secret, pyotp.TOTP(secret).at(now()))
    session.commit()
    assert staff.totp_secret == secret and 'user.totp_enrolled' in _kinds(session)


def test_password_alone_does_not_log_in_an_enrolled_user(session: Session, staff: User, clock: FrozenClock) -> None:
    totp = _enrolled(session, staff)
    with pytest.raises(SecondFactorRequired) as step:
        authenticate(session, 'staff', PASSWORD)
    assert step.value.user is staff
    clock.advance(timedelta(seconds=30))
    assert verify_second_factor(session, staff, totp.at(now())) is staff
    assert staff.last_login_dt == now()


def test_a_code_is_accepted_once_and_wrong_codes_count_towards_lockout(
        session: Session, staff: User, clock: FrozenClock, policy: Callable[..., None]) -> None:
    policy(max_failed_logins=2)
    totp = _enrolled(session, staff)
    clock.advance(timedelta(seconds=60))
    code = totp.at(now())
    verify_second_factor(session, staff, code)
    with pytest.raises(LoginFailed):
        verify_second_factor(session, staff, code)  # replayed
    assert staff.failed_logins == 1
    with pytest.raises(LoginFailed):
        verify_second_factor(session, staff, 'abcdef')
    assert staff.locked_until_dt is not None
    clock.advance(timedelta(seconds=30))
    with pytest.raises(LoginFailed):
        verify_second_factor(session, staff, totp.at(now()))  # locked now


def test_codes_from_the_neighbouring_time_steps_only(session: Session, staff: User, clock: FrozenClock) -> None:
    totp = _enrolled(session, staff)
    clock.advance(timedelta(minutes=5))
    with pytest.raises(LoginFailed):
        verify_second_factor(session, staff, totp.at(now() - timedelta(seconds=90)))
    assert verify_second_factor(session, staff, totp.at(now() - timedelta(seconds=30))) is staff


def test_required_roles_need_a_second_factor_even_before_enrolment(
        session: Session, people: dict[str, User], policy: Callable[..., None]) -> None:
    policy(totp_required_roles=frozenset({'supervisor'}))
    with pytest.raises(SecondFactorRequired):
        authenticate(session, 'chief', PASSWORD)
    assert authenticate(session, 'staff', PASSWORD) is people['staff']


# -- 三员 ----------------------------------------------------------------------------------------------------------

@pytest.fixture
def three(session: Session, org: Org, create_member: Callable[..., User]) -> dict[str, User]:
    """A system, a security and an audit administrator of the county."""
    return {'system': create_member('sysadmin', 'system_admin', org.county),
            'security': create_member('secadmin', 'security_admin', org.county),
            'audit': create_member('auditor', 'audit_admin', org.county)}


def _codes(session: Session, user: User) -> set[str]:
    return set(session.scalars(sa.select(Group.code).join(Membership).where(Membership.user_id == user.id)))


@pytest.mark.parametrize('held, wanted', [('system_admin', 'security_admin'), ('security_admin', 'audit_admin'),
                                          ('audit_admin', 'system_admin'), ('admin', 'audit_admin'),
                                          ('audit_admin', 'admin')])
def test_no_caller_joins_two_of_the_three_roles_in_one_person(session: Session, org: Org,
                                                              create_member: Callable[..., User], held: str,
                                                              wanted: str) -> None:
    user = create_member('someone', held, org.province)
    with pytest.raises(ValidationFailed) as refused:  # the command line and the loaders too (actor None)
        add_membership(session, user, get_group(session, wanted, wanted), org.province, actor=None)
    assert refused.value.fields == {'group': [directory.MSG_TWO_ROLES]}
    assert _codes(session, user) == {held}
    # any other role goes with it, and the same role at another unit too
    add_membership(session, user, get_group(session, 'designer', 'designer'), org.province, actor=None)
    add_membership(session, user, get_group(session, held, held), org.county, actor=None)
    assert _codes(session, user) == {held, 'designer'}


def test_check_role_codes_accepts_one_of_the_three() -> None:
    check_role_codes(['system_admin', 'admin', 'designer'])  # admin is system_admin by another name
    with pytest.raises(ValidationFailed):
        check_role_codes(['security_admin', 'audit_admin'])


def test_only_a_security_admin_grants_in_their_subtree_and_never_to_themselves(
        session: Session, org: Org, people: dict[str, User], three: dict[str, User]) -> None:
    supervisor = get_group(session, 'supervisor', 'supervisor')
    staff, security = people['staff'], three['security']
    for actor in (three['system'], three['audit'], people['chief']):
        with pytest.raises(AccessDenied):
            add_membership(session, staff, supervisor, org.township, actor=actor)
    with pytest.raises(NotFound):  # a unit above the county
        add_membership(session, staff, supervisor, org.city, actor=security)
    with pytest.raises(NotFound):  # a person of the other county
        add_membership(session, people['outsider'], supervisor, org.township, actor=security)
    with pytest.raises(AccessDenied):
        add_membership(session, security, supervisor, org.county, actor=security)
    with pytest.raises(Conflict):
        add_membership(session, staff, get_group(session, 'township_staff'), org.township, actor=security)
    assert _codes(session, staff) == {'township_staff'} and _codes(session, security) == {'security_admin'}
    add_membership(session, staff, supervisor, org.township, actor=security)
    session.commit()
    assert _codes(session, staff) == {'township_staff', 'supervisor'}
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'membership.added')
                            .order_by(AuditEvent.id.desc())).first()
    assert event is not None and event.actor_id == security.id and event.org_path == org.township.path


def test_remove_membership_is_audited_and_refused_to_oneself(session: Session, org: Org, people: dict[str, User],
                                                             three: dict[str, User]) -> None:
    security = three['security']
    own = session.scalars(sa.select(Membership).where(Membership.user_id == security.id)).one()
    with pytest.raises(AccessDenied):
        remove_membership(session, own, actor=security)
    theirs = session.scalars(sa.select(Membership).where(Membership.user_id == people['outsider'].id)).one()
    with pytest.raises(NotFound):
        remove_membership(session, theirs, actor=security)
    with pytest.raises(AccessDenied):
        remove_membership(session, own, actor=three['system'])
    staff_role = session.scalars(sa.select(Membership).where(Membership.user_id == people['staff'].id)).one()
    remove_membership(session, staff_role, actor=security)
    session.commit()
    assert _codes(session, people['staff']) == set() and _codes(session, security) == {'security_admin'}
    [event] = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'membership.removed')).all()
    assert event.actor_id == security.id and event.org_path == org.township.path
    assert event.before == {'user': 'staff', 'group': 'township_staff', 'org_unit': org.township.code}


def test_accounts_are_created_and_changed_by_a_system_admin_of_their_unit(
        session: Session, org: Org, people: dict[str, User], three: dict[str, User]) -> None:
    system = three['system']
    for actor in (three['security'], three['audit']):
        with pytest.raises(AccessDenied):
            create_user(session, 'new_one', '新人', 'Qiao-2025-new', org.township, actor=actor)
    with pytest.raises(NotFound):
        create_user(session, 'new_one', '新人', 'Qiao-2025-new', org.other_township, actor=system)
    user = create_user(session, 'new_one', '新人', 'Qiao-2025-new', org.township, actor=system)
    version = user.session_version
    update_user(session, user, display_name='新人甲', email='a@example.cn', org_unit=org.county, actor=system)
    with pytest.raises(NotFound):
        update_user(session, user, display_name='新人甲', email=None, org_unit=org.other_county, actor=system)
    set_user_active(session, user, False, actor=system)
    assert not user.is_active and user.session_version == version + 1
    set_user_active(session, user, True, actor=system)
    with pytest.raises(ValidationFailed):
        reset_password(session, user, 'short', actor=system)
    reset_password(session, user, 'Another-pass9', actor=system)
    assert user.session_version == version + 2
    session.commit()
    assert authenticate(session, 'new_one', 'Another-pass9') is user
    kinds = [kind for kind in _kinds(session) if kind.startswith('user.') and kind != 'user.created']
    assert kinds == ['user.updated', 'user.deactivated', 'user.reactivated', 'user.password_reset']


def test_a_system_admin_cannot_take_over_the_other_two(session: Session, three: dict[str, User]) -> None:
    system = three['system']
    for target in (three['security'], three['audit']):
        with pytest.raises(AccessDenied):
            reset_password(session, target, 'Another-pass9', actor=system)
        with pytest.raises(AccessDenied):
            set_user_active(session, target, False, actor=system)
    with pytest.raises(AccessDenied):
        set_user_active(session, system, False, actor=system)
    assert all(user.is_active for user in three.values())


def test_a_security_admin_resets_someone_elses_second_factor(session: Session, people: dict[str, User],
                                                             three: dict[str, User]) -> None:
    staff, security = people['staff'], three['security']
    _enrolled(session, staff)
    with pytest.raises(AccessDenied):
        remove_totp(session, staff, actor=three['system'])
    with pytest.raises(AccessDenied):
        remove_totp(session, security, actor=security)
    with pytest.raises(NotFound):
        remove_totp(session, people['outsider'], actor=security)
    remove_totp(session, staff, actor=security)
    assert staff.totp_secret is None


# -- login sessions ---------------------------------------------------------------------------------------

def test_a_login_session_reads_its_user_and_grants_in_one_statement(session: Session, people: dict[str, User],
                                                                     org: Org) -> None:
    staff = people['staff']
    staff_id, expected = staff.id, load_scope(session, staff).grants
    session.expire_all()
    with executed_statements(session) as statements:
        holder = directory.session_holder(session, staff_id)
    assert len(statements) == 1
    assert holder is not None and holder[0] is staff and holder[1].user_id == staff.id
    assert expected and sorted(holder[1].grants) == sorted(expected)
    loner = create_user(session, 'loner', '无组用户', PASSWORD, org.township, actor=None, enforce_policy=False)
    assert directory.session_holder(session, loner.id) == (loner, Scope(loner.id, ()))
    loner.is_active = False
    assert directory.session_holder(session, loner.id) is None
    assert directory.session_holder(session, 2**31 - 1) is None


# -- bearer tokens ----------------------------------------------------------------------------------------

def test_a_token_names_its_user_with_the_grants_load_scope_reads(session: Session, people: dict[str, User]) -> None:
    staff = people['staff']
    token = directory.issue_token(session, staff)
    session.commit()
    holder = directory.token_holder(session, token)
    assert holder is not None
    user, scope = holder
    assert user is staff and scope.user_id == staff.id
    expected = load_scope(session, staff).grants
    assert expected and sorted(scope.grants) == sorted(expected)


def test_a_user_without_memberships_holds_a_token_with_no_grants(session: Session, org: Org) -> None:
    loner = create_user(session, 'loner', '无组用户', PASSWORD, org.township, actor=None, enforce_policy=False)
    holder = directory.token_holder(session, directory.issue_token(session, loner))
    assert holder is not None and holder[0] is loner and holder[1].grants == ()


def test_unknown_expired_and_deactivated_holders_tokens_name_nobody(session: Session, staff: User,
                                                                    clock: FrozenClock) -> None:
    token = directory.issue_token(session, staff)
    assert directory.token_holder(session, token) is not None
    assert directory.token_holder(session, 'not-a-token-we-issued') is None
    staff.is_active = False
    assert directory.token_holder(session, token) is None
    staff.is_active = True
    clock.advance(directory.TOKEN_LIFETIME)
    assert directory.token_holder(session, token) is None
