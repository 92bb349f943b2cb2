"""用户管理 (三员: the system administrator): accounts in the admin's subtree are listed, created, edited,
deactivated, their passwords reset and lockouts lifted, every change audited; the system administrator grants no
role, and nobody else reaches these pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import directory
from engine.models.audit import AuditEvent
from engine.models.users import Membership, User
from tests.fixtures.directory import PASSWORD, Org
from tests.fixtures.web import csrf_token
from tests.web.conftest import page, post_form, text_of

Clients = Callable[[str], FlaskClient]
USERS = '/admin/users'
NEW_PASSWORD = 'Qiao-2025-new'


@pytest.fixture
def sysadmin(org: Org, create_member: Callable[..., User]) -> User:
    """A system administrator of the county (the township below it, not the other county)."""
    return create_member('sysadmin', 'system_admin', org.county, display_name='县局系统管理员')


def _post(client: FlaskClient, path: str, **data: str) -> object:
    return post_form(client, path, data, token_from=USERS)


def _events(session: Session, kind: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def _user(session: Session, username: str) -> User | None:
    session.expire_all()
    return session.scalars(sa.select(User).where(User.username == username)).one_or_none()


def test_the_list_holds_the_subtree_only_and_is_searched(client_for: Clients, session: Session, sysadmin: User,
                                                          people: dict[str, User]) -> None:
    client = client_for('sysadmin')
    names = [text_of(a) for a in page(client.get(USERS)).xpath('//tbody//td[1]/a')]
    assert set(names) == {'sysadmin', 'staff', 'staff2', 'officer'}  # not the other county's, not the province's
    found = page(client.get(f'{USERS}?q=刘晓')).xpath('//tbody//td[1]/a')
    assert [text_of(a) for a in found] == ['staff']
    assert client.get(f'{USERS}/{people["outsider"].id}').status_code == 404
    assert client.get(f'{USERS}/{people["designer"].id}').status_code == 404
    assert client.get(f'{USERS}/999999').status_code == 404
    refused = _events(session, 'access.refused')  # the attempts on existing accounts, at their units
    assert [(e.actor_id, e.after['record'], e.after['id']) for e in refused] == [  # type: ignore[index]
        (sysadmin.id, 'user', people['outsider'].id), (sysadmin.id, 'user', people['designer'].id)]


def test_create_a_user_at_a_unit_of_the_subtree(client_for: Clients, session: Session, org: Org,
                                                sysadmin: User) -> None:
    client = client_for('sysadmin')
    form = page(client.get(f'{USERS}/new'))
    assert set(form.xpath('//select[@name="org_unit"]/option/@value')) == {'', org.county.code, org.township.code}
    response = _post(client, f'{USERS}/new', username='new_staff', display_name='新同事', org_unit=org.township.code,
                     email='new@example.cn', password=NEW_PASSWORD)
    assert response.status_code == 302
    user = _user(session, 'new_staff')
    assert user is not None and user.org_unit_id == org.township.id and user.email == 'new@example.cn'
    assert response.headers['Location'] == f'{USERS}/{user.id}'
    assert session.scalars(sa.select(Membership).where(Membership.user_id == user.id)).all() == []
    [created] = _events(session, 'user.created')[-1:]
    assert created.actor_id == sysadmin.id and created.after['username'] == 'new_staff'
    login = post_form(client.application.test_client(), '/login',
                      {'username': 'new_staff', 'password': NEW_PASSWORD}, token_from='/login')
    assert login.status_code == 302


@pytest.mark.parametrize('data, field, status', [
    ({'username': 'x y', 'display_name': '某', 'password': NEW_PASSWORD}, 'username', 400),
    ({'username': 'weak_one', 'display_name': '某', 'password': 'abc'}, 'password', 400),
    ({'username': 'no_name', 'display_name': '', 'password': NEW_PASSWORD}, 'display_name', 400),
    ({'username': 'bad_mail', 'display_name': '某', 'password': NEW_PASSWORD, 'email': 'nope'}, 'email', 400),
    ({'username': 'staff', 'display_name': '某', 'password': NEW_PASSWORD}, 'username', 409),
])
def test_bad_input_names_its_field_and_writes_nothing(client_for: Clients, session: Session, org: Org,
                                                      sysadmin: User, people: dict[str, User], data: dict[str, str],
                                                      field: str, status: int) -> None:
    before = session.scalar(sa.select(sa.func.count()).select_from(User))
    response = _post(client_for('sysadmin'), f'{USERS}/new', org_unit=org.township.code, **data)
    assert response.status_code == status
    doc = page(response)
    assert doc.xpath(f'//div[contains(@class, "has-error")]//*[@name="{field}"]')
    assert doc.xpath('//input[@name="password"]/@value') in ([''], [])  # a typed password is never sent back
    assert session.scalar(sa.select(sa.func.count()).select_from(User)) == before


def test_a_unit_outside_the_subtree_is_refused(client_for: Clients, session: Session, org: Org,
                                               sysadmin: User, people: dict[str, User]) -> None:
    client = client_for('sysadmin')
    response = _post(client, f'{USERS}/new', username='elsewhere', display_name='某', password=NEW_PASSWORD,
                     org_unit=org.other_township.code)
    assert response.status_code == 400 and _user(session, 'elsewhere') is None
    assert '不在您的管辖范围内' in text_of(page(response))
    response = _post(client, f'{USERS}/{people["staff"].id}', display_name='刘晓燕', org_unit=org.other_county.code)
    assert response.status_code == 400 and _user(session, 'staff').org_unit_id == org.township.id  # type: ignore[union-attr]


def test_edit_details_audits_the_changed_values(client_for: Clients, session: Session, org: Org, sysadmin: User,
                                                people: dict[str, User]) -> None:
    staff = people['staff']
    response = _post(client_for('sysadmin'), f'{USERS}/{staff.id}', display_name='刘晓燕（已调岗）',
                     org_unit=org.county.code, email='liu@example.cn')
    assert response.status_code == 302
    user = _user(session, 'staff')
    assert user is not None and user.display_name == '刘晓燕（已调岗）' and user.org_unit_id == org.county.id
    [event] = _events(session, 'user.updated')
    assert event.actor_id == sysadmin.id and event.org_path == org.county.path
    assert event.before == {'username': 'staff', 'display_name': '刘晓燕', 'email': None, 'org_unit': org.township.code}
    assert event.after == {'username': 'staff', 'display_name': '刘晓燕（已调岗）', 'email': 'liu@example.cn',
                           'org_unit': org.county.code}


def test_deactivate_ends_the_session_and_login_then_reactivate(client_for: Clients, session: Session,
                                                               sysadmin: User, people: dict[str, User]) -> None:
    staff_client = client_for('staff')
    admin = client_for('sysadmin')
    assert _post(admin, f'{USERS}/{people["staff"].id}/deactivate').status_code == 302
    assert staff_client.get('/tasks').status_code == 302  # back to the login page
    refused = post_form(admin.application.test_client(), '/login', {'username': 'staff', 'password': PASSWORD},
                        token_from='/login')
    assert refused.status_code == 200  # the login form again, with the generic message
    assert _post(admin, f'{USERS}/{people["staff"].id}/reactivate').status_code == 302
    client_for('staff')
    assert [e.actor_id for e in _events(session, 'user.deactivated')] == [sysadmin.id]
    assert [e.actor_id for e in _events(session, 'user.reactivated')] == [sysadmin.id]
    assert _post(admin, f'{USERS}/{sysadmin.id}/deactivate').status_code == 302
    assert _user(session, 'sysadmin').is_active  # type: ignore[union-attr]  # never oneself


def test_reset_password_kills_sessions_and_keeps_the_policy(client_for: Clients, session: Session,
                                                            sysadmin: User, people: dict[str, User]) -> None:
    staff_client = client_for('staff')
    admin = client_for('sysadmin')
    weak = _post(admin, f'{USERS}/{people["staff"].id}/password', password='short')
    assert weak.status_code == 400 and '密码至少 8 位。' in text_of(page(weak))
    assert staff_client.get('/tasks').status_code == 200
    assert _post(admin, f'{USERS}/{people["staff"].id}/password', password=NEW_PASSWORD).status_code == 302
    assert staff_client.get('/tasks').status_code == 302
    [event] = _events(session, 'user.password_reset')
    assert event.actor_id == sysadmin.id and NEW_PASSWORD not in str(event.after)
    login = post_form(admin.application.test_client(), '/login', {'username': 'staff', 'password': NEW_PASSWORD},
                      token_from='/login')
    assert login.status_code == 302


def test_unlock_a_locked_account(client_for: Clients, session: Session, sysadmin: User,
                                 people: dict[str, User]) -> None:
    for _ in range(directory.MAX_FAILED_LOGINS):
        with pytest.raises(directory.LoginFailed):
            directory.authenticate(session, 'staff', 'Wrong-pass1')
    session.commit()
    admin = client_for('sysadmin')
    assert '已锁定' in text_of(page(admin.get(f'{USERS}/{people["staff"].id}')))
    assert _post(admin, f'{USERS}/{people["staff"].id}/unlock').status_code == 302
    assert _user(session, 'staff').locked_until_dt is None  # type: ignore[union-attr]
    assert [e.actor_id for e in _events(session, 'user.unlocked')] == [sysadmin.id]
    client_for('staff')


def test_accounts_of_the_other_two_admins_are_out_of_reach(client_for: Clients, session: Session, org: Org,
                                                           sysadmin: User, create_member: Callable[..., User]) -> None:
    auditor = create_member('auditor', 'audit_admin', org.county)
    admin = client_for('sysadmin')
    response = _post(admin, f'{USERS}/{auditor.id}/password', password=NEW_PASSWORD)
    assert response.status_code == 302
    shown = text_of(page(admin.get(response.headers['Location'])))
    assert '安全保密管理员和安全审计员的账号不能由系统管理员修改。' in shown
    assert _post(admin, f'{USERS}/{auditor.id}/deactivate').status_code == 302
    assert _user(session, 'auditor').is_active and _events(session, 'user.password_reset') == []  # type: ignore[union-attr]


def test_the_user_page_shows_roles_but_grants_none(client_for: Clients, sysadmin: User, session: Session,
                                                   people: dict[str, User]) -> None:
    admin = client_for('sysadmin')
    doc = page(admin.get(f'{USERS}/{people["staff"].id}'))
    assert 'township_staff' in text_of(doc) or '司法所工作人员' in text_of(doc)
    assert doc.xpath('//form[contains(@action, "/admin/roles")]') == []
    assert admin.get('/admin/roles').status_code == 403
    token = csrf_token(admin, USERS)
    grant = admin.post(f'/admin/roles/users/{people["staff"].id}', data={'group': 'supervisor', 'org_unit': '430922',
                                                                       'csrf_token': token})
    assert grant.status_code == 403
    assert session.scalar(sa.select(sa.func.count()).select_from(Membership)
                          .where(Membership.user_id == people['staff'].id)) == 1


@pytest.mark.parametrize('role', ['security_admin', 'audit_admin', 'supervisor', 'township_staff', 'designer'])
def test_no_one_else_reaches_the_account_pages_or_the_calendar(client_for: Clients, org: Org, role: str,
                                                               create_member: Callable[..., User],
                                                               people: dict[str, User]) -> None:
    create_member('someone', role, org.province)
    client = client_for('someone')
    for path in (USERS, f'{USERS}/new', f'{USERS}/{people["staff"].id}', '/admin/calendar'):
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, '/tasks')
    for path in (f'{USERS}/new', f'{USERS}/{people["staff"].id}/password', f'{USERS}/{people["staff"].id}/deactivate',
                 '/admin/calendar'):
        response = client.post(path, data={'username': 'x1', 'display_name': 'x', 'org_unit': org.township.code,
                                           'password': NEW_PASSWORD, 'csrf_token': token, 'day': '2025-12-01',
                                           'kind': 'rest', 'note': 'x'})
        assert response.status_code == 403, path


def test_legacy_admin_is_a_system_admin(client_for: Clients, org: Org, create_member: Callable[..., User],
                                        people: dict[str, User]) -> None:
    create_member('admin', 'admin', org.province)
    client = client_for('admin')
    assert client.get(USERS).status_code == 200 and client.get('/admin/calendar').status_code == 200
    assert client.get('/admin/roles').status_code == 403


def test_forms_need_csrf(client_for: Clients, session: Session, org: Org, sysadmin: User,
                         people: dict[str, User]) -> None:
    client = client_for('sysadmin')
    response = client.post(f'{USERS}/new', data={'username': 'nocsrf', 'display_name': '某', 'password': NEW_PASSWORD,
                                                  'org_unit': org.township.code})
    assert response.status_code == 400 and _user(session, 'nocsrf') is None
    assert client.post(f'{USERS}/{people["staff"].id}/deactivate').status_code == 400


@pytest.mark.parametrize('username, links', [
    ('sysadmin', {'/admin/users', '/admin/calendar'}), ('secadmin', {'/admin/roles'}),
    ('auditor', {'/supervision/audit'}), ('staff', set()),
])
def test_navigation_shows_each_admin_their_pages(client_for: Clients, org: Org, sysadmin: User,
                                                 create_member: Callable[..., User], people: dict[str, User],
                                                 username: str, links: set[str]) -> None:
    create_member('secadmin', 'security_admin', org.province)
    create_member('auditor', 'audit_admin', org.province)
    nav = set(page(client_for(username).get('/tasks')).xpath('//nav[@class="main-nav"]//a/@href'))
    assert nav & {'/admin/users', '/admin/calendar', '/admin/roles', '/supervision/audit'} == links
