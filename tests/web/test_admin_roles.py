"""角色权限 (三员: the security administrator) and the separation itself: roles granted and revoked in the
admin's subtree, never to oneself, never two of the 三员 to one person, second factors reset, all audited and
read by the audit administrator; and none of the three (nor the legacy ``admin``) changes case data."""

from __future__ import annotations

import io
from collections.abc import Callable

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.directory import enrol_totp, new_totp_secret
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Attachment, Comment
from engine.models.tasks import HumanTask
from engine.models.users import Group, Membership, User
from tests.fixtures.directory import Org
from tests.fixtures.web import csrf_token
from tests.web.conftest import START, page, post_form, text_of

Clients = Callable[[str], FlaskClient]
ROLES = '/admin/roles'


@pytest.fixture
def secadmin(session: Session, org: Org, create_member: Callable[..., User]) -> User:
    """The county's security administrator (the township below it, not the other county); the ``supervisor``
    group exists to be granted."""
    _ensure_group(session, 'supervisor')
    return create_member('secadmin', 'security_admin', org.county, display_name='县局安全保密管理员')


def _post(client: FlaskClient, path: str, **data: str) -> object:
    return post_form(client, path, data, token_from=ROLES)


def _roles(session: Session, user: User) -> set[tuple[str, str]]:
    session.expire_all()
    rows = session.execute(sa.select(Group.code, Membership.org_unit_id).join(Membership)
                           .where(Membership.user_id == user.id)).all()
    return {(code, str(unit_id)) for code, unit_id in rows}


def _ensure_group(session: Session, code: str) -> None:
    """The group ``code`` exists (the migration inserts the 三员 groups; PostgreSQL runs truncate them)."""
    if session.scalars(sa.select(Group).where(Group.code == code)).one_or_none() is None:
        session.add(Group(code=code, name=code))
        session.commit()


def _events(session: Session, kind: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def test_roles_page_counts_members_in_the_subtree(client_for: Clients, secadmin: User,
                                                  people: dict[str, User]) -> None:
    doc = page(client_for('secadmin').get(ROLES))
    counts = {text_of(row.xpath('td')[1]): text_of(row.xpath('td')[2])
              for row in doc.xpath('//section[@aria-labelledby="groups-title"]//tbody/tr')}
    # township staff: staff and staff2 (the other county's outsider is not counted); the designer is at the province
    assert counts['township_staff'] == '2' and counts['county_officer'] == '1' and counts['designer'] == '0'
    assert counts['security_admin'] == '1'
    listed = {text_of(a) for a in doc.xpath('//tbody//td[1]/a')}
    assert listed == {'secadmin', 'staff', 'staff2', 'officer'}


def test_grant_and_revoke_are_audited_and_take_effect_at_once(client_for: Clients, session: Session, org: Org,
                                                              secadmin: User, people: dict[str, User]) -> None:
    officer = people['officer']
    officer_client = client_for('officer')
    assert officer_client.get('/supervision/instances').status_code == 403
    admin = client_for('secadmin')
    response = _post(admin, f'{ROLES}/users/{officer.id}', group='supervisor', org_unit=org.county.code)
    assert response.status_code == 302
    assert ('supervisor', str(org.county.id)) in _roles(session, officer)
    assert officer_client.get('/supervision/instances').status_code == 200
    [added] = _events(session, 'membership.added')[-1:]
    assert added.actor_id == secadmin.id and added.org_path == org.county.path
    assert added.after == {'user': 'officer', 'group': 'supervisor', 'org_unit': org.county.code}

    membership = session.scalars(sa.select(Membership).join(Group).where(
        Membership.user_id == officer.id, Group.code == 'supervisor')).one()
    assert _post(admin, f'{ROLES}/memberships/{membership.id}/revoke').status_code == 302
    assert ('supervisor', str(org.county.id)) not in _roles(session, officer)
    assert officer_client.get('/supervision/instances').status_code == 403
    [removed] = _events(session, 'membership.removed')
    assert removed.actor_id == secadmin.id and removed.before == added.after


def test_a_duplicate_grant_is_a_conflict(client_for: Clients, session: Session, org: Org, secadmin: User,
                                         people: dict[str, User]) -> None:
    response = _post(client_for('secadmin'), f'{ROLES}/users/{people["staff"].id}', group='township_staff',
                     org_unit=org.township.code)
    assert response.status_code == 409 and '该用户在该机构已有此角色。' in text_of(page(response))


def test_nobody_grants_themselves_anything(client_for: Clients, session: Session, org: Org, secadmin: User) -> None:
    admin = client_for('secadmin')
    assert '请由另一位安全保密管理员办理' in text_of(page(admin.get(f'{ROLES}/users/{secadmin.id}')))
    before = _roles(session, secadmin)
    response = _post(admin, f'{ROLES}/users/{secadmin.id}', group='supervisor', org_unit=org.county.code)
    assert response.status_code == 403 and _roles(session, secadmin) == before
    own = session.scalars(sa.select(Membership).where(Membership.user_id == secadmin.id)).one()
    assert _post(admin, f'{ROLES}/memberships/{own.id}/revoke').status_code == 302
    assert _roles(session, secadmin) == before and _events(session, 'membership.removed') == []


@pytest.mark.parametrize('held, wanted', [('system_admin', 'security_admin'), ('audit_admin', 'security_admin'),
                                          ('admin', 'audit_admin'), ('security_admin', 'system_admin')])
def test_no_person_holds_two_of_the_three_roles(client_for: Clients, session: Session, org: Org, secadmin: User,
                                                create_member: Callable[..., User], held: str, wanted: str) -> None:
    other = create_member('other', held, org.township)
    _ensure_group(session, wanted)
    response = _post(client_for('secadmin'), f'{ROLES}/users/{other.id}', group=wanted, org_unit=org.township.code)
    assert response.status_code == 400
    assert '三员分立：同一人不能兼任系统管理员、安全保密管理员、安全审计员中的两个角色。' in text_of(page(response))
    assert _roles(session, other) == {(held, str(org.township.id))}


def test_outside_the_subtree_is_not_found_or_refused(client_for: Clients, session: Session, org: Org,
                                                     secadmin: User, people: dict[str, User]) -> None:
    admin = client_for('secadmin')
    assert admin.get(f'{ROLES}/users/{people["outsider"].id}').status_code == 404
    assert _post(admin, f'{ROLES}/users/{people["outsider"].id}', group='supervisor',
                 org_unit=org.other_county.code).status_code == 404
    response = _post(admin, f'{ROLES}/users/{people["staff"].id}', group='supervisor', org_unit=org.city.code)
    assert response.status_code == 400 and '不在您的管辖范围内' in text_of(page(response))
    outsider_role = session.scalars(sa.select(Membership).where(Membership.user_id == people['outsider'].id)).one()
    assert _post(admin, f'{ROLES}/memberships/{outsider_role.id}/revoke').status_code == 404
    assert _roles(session, people['staff']) == {('township_staff', str(org.township.id))}
    unknown = _post(admin, f'{ROLES}/users/{people["staff"].id}', group='no_such_role', org_unit=org.township.code)
    assert unknown.status_code == 400 and '没有这个角色。' in text_of(page(unknown))


def test_reset_totp_removes_the_second_factor_and_ends_sessions(client_for: Clients, session: Session,
                                                                 secadmin: User, people: dict[str, User]) -> None:
    staff_client = client_for('staff')
    secret = new_totp_secret()
    enrol_totp(session, people['staff'], secret, pyotp.TOTP(secret).now())
    session.commit()
    admin = client_for('secadmin')
    assert _post(admin, f'{ROLES}/users/{people["staff"].id}/totp/reset').status_code == 302
    session.expire_all()
    assert session.get(User, people['staff'].id).totp_secret is None  # type: ignore[union-attr]
    assert staff_client.get('/tasks').status_code == 302
    [event] = _events(session, 'user.totp_removed')
    assert event.actor_id == secadmin.id


@pytest.mark.parametrize('role', ['system_admin', 'audit_admin', 'supervisor', 'township_staff'])
def test_only_the_security_admin_reaches_the_role_pages(client_for: Clients, session: Session, org: Org, role: str,
                                                        create_member: Callable[..., User],
                                                        people: dict[str, User]) -> None:
    create_member('someone', role, org.province)
    client = client_for('someone')
    assert client.get(ROLES).status_code == 403
    assert client.get(f'{ROLES}/users/{people["staff"].id}').status_code == 403
    token = csrf_token(client, '/tasks')
    grant = client.post(f'{ROLES}/users/{people["staff"].id}', data={'group': 'supervisor', 'csrf_token': token,
                                                                   'org_unit': org.province.code})
    assert grant.status_code == 403 and _roles(session, people['staff']) == {('township_staff', str(org.township.id))}
    assert client.post(f'{ROLES}/users/{people["staff"].id}/totp/reset', data={'csrf_token': token}).status_code == 403


def test_the_security_admin_creates_no_user_and_keeps_no_calendar(client_for: Clients, org: Org,
                                                                  secadmin: User) -> None:
    client = client_for('secadmin')
    assert client.get('/admin/users').status_code == 403 and client.get('/admin/calendar').status_code == 403
    token = csrf_token(client, ROLES)
    response = client.post('/admin/users/new', data={'username': 'sneaky', 'display_name': '某', 'csrf_token': token,
                                                     'org_unit': org.township.code, 'password': 'Qiao-2025-new'})
    assert response.status_code == 403


def test_the_audit_admin_reads_what_the_other_two_did(client_for: Clients, session: Session, org: Org,
                                                      secadmin: User, create_member: Callable[..., User]) -> None:
    create_member('sysadmin', 'system_admin', org.county, display_name='县局系统管理员')
    create_member('auditor', 'audit_admin', org.county)
    _ensure_group(session, 'township_staff')
    created = post_form(client_for('sysadmin'), '/admin/users/new',
                        {'username': 'newbie', 'display_name': '新同事', 'org_unit': org.township.code,
                         'password': 'Qiao-2025-new'}, token_from='/admin/users')
    assert created.status_code == 302
    newbie = session.scalars(sa.select(User).where(User.username == 'newbie')).one()
    granted = _post(client_for('secadmin'), f'{ROLES}/users/{newbie.id}', group='township_staff',
                    org_unit=org.township.code)
    assert granted.status_code == 302
    auditor = client_for('auditor')
    rows = [text_of(row) for row in page(auditor.get('/supervision/audit?kind=membership.added')).xpath('//tbody/tr')]
    assert any('县局安全保密管理员' in row and 'newbie' in row for row in rows)
    rows = [text_of(row) for row in page(auditor.get('/supervision/audit?kind=user.created')).xpath('//tbody/tr')]
    assert any('县局系统管理员' in row and 'newbie' in row for row in rows)
    token = csrf_token(auditor, '/supervision/audit')
    assert auditor.post('/supervision/audit/export', data={'format': 'csv', 'csrf_token': token}).status_code == 200
    [exported] = _events(session, 'audit.exported')
    assert exported.org_path == org.county.path and exported.after is not None and exported.after['rows'] > 0


# -- none of the administrators changes case data ---------------------------------------------------------------

ADMIN_ROLES = ['admin', 'system_admin', 'security_admin', 'audit_admin']
#: every case or task mutating endpoint: (method, path, kind of body)
MUTATIONS = [
    ('POST', '/cases/new/demo_intake', 'start'), ('POST', '/cases/{case}/requests/demo_intake', 'start'),
    ('POST', '/tasks/{task}/claim', 'form'), ('POST', '/tasks/{task}', 'complete'),
    ('POST', '/tasks/{task}/unclaim', 'form'),
    ('POST', '/tasks/{task}/assign', 'assign'), ('POST', '/tasks/{task}/delegate', 'assign'),
    ('POST', '/tasks/{task}/resolve', 'form'), ('POST', '/cases/{case}/comments', 'comment'),
    ('POST', '/cases/{case}/attachments', 'file'),
    ('API', '/api/v1/cases', 'api_start'), ('API', '/api/v1/tasks/{task}/claim', 'api'),
    ('API', '/api/v1/tasks/{task}/complete', 'api_complete'), ('API', '/api/v1/tasks/{task}/assign', 'api_assign'),
    ('API', '/api/v1/tasks/{task}/unclaim', 'api'), ('API', '/api/v1/cases/{case}/comments', 'api_comment'),
    ('API', '/api/v1/cases/{case}/attachments', 'api_file'),
]


def _case_state(session: Session) -> tuple[object, ...]:
    """Everything a case mutation changes: cases, tasks and their assignees, comments, attachments, case events."""
    session.expire_all()
    tasks = session.execute(sa.select(HumanTask.id, HumanTask.status, HumanTask.assignee_id, HumanTask.owner_id)
                            .order_by(HumanTask.id)).all()
    events = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                            .where(AuditEvent.kind != 'access.refused'))
    return (session.scalar(sa.select(sa.func.count()).select_from(Case)), tuple(tasks),
            session.scalar(sa.select(sa.func.count()).select_from(Comment)),
            session.scalar(sa.select(sa.func.count()).select_from(Attachment)), events)


def _send(app: Flask, client: FlaskClient, headers: dict[str, str], method: str, path: str, body: str,
          people: dict[str, User]) -> object:
    if method == 'API':
        client = app.test_client()  # the bearer token alone, as other systems call (no session, no CSRF)
        json_bodies = {'api_start': {'process_key': 'demo_intake', 'data': START, 'org_unit': '430922101'},
                       'api_complete': {'data': {'visit_count': 2, 'risk_level': 'high', 'findings': '走访属实'}},
                       'api_assign': {'assignee': people['staff'].id}, 'api_comment': {'body': '意见'}}
        if body == 'api_file':
            return client.post(path, headers=headers, data={'file': (io.BytesIO(b'%PDF-1.4 x'), 'a.pdf')},
                               content_type='multipart/form-data')
        return client.post(path, headers=headers, json=json_bodies.get(body, {}))
    data: dict[str, object] = {'csrf_token': csrf_token(client, '/tasks')}
    data.update({'start': START, 'complete': {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实'},
                 'assign': {'assignee': str(people['staff'].id)}, 'comment': {'body': '意见'},
                 'file': {'file': (io.BytesIO(b'%PDF-1.4 x'), 'a.pdf')}}.get(body, {}))
    return client.post(path, data=data, content_type='multipart/form-data' if body == 'file' else None)


@pytest.mark.parametrize('role', ADMIN_ROLES)
def test_no_administrator_changes_case_data(app: Flask, client_for: Clients, api_token: Callable[[str], dict[str, str]],
                                            session: Session, org: Org, people: dict[str, User],
                                            demo_case: tuple[Case, HumanTask], create_member: Callable[..., User],
                                            role: str) -> None:
    case, task = demo_case
    create_member('administrator', role, org.province)
    client, headers = client_for('administrator'), api_token('administrator')
    assert client.get('/tasks').status_code == 200
    assert client.get(f'/cases/{case.id}').status_code == 404
    assert client.get(f'/tasks/{task.id}').status_code == 404
    assert client.get('/supervision/instances').status_code == 403
    assert client.get('/supervision/incidents').status_code == 403
    assert client.get(f'/api/v1/cases/{case.id}', headers=headers).status_code == 404
    assert client.get('/api/v1/tasks?view=group', headers=headers).get_json()['items'] == []
    before = _case_state(session)
    for method, template, body in MUTATIONS:
        path = template.format(case=case.id, task=task.id)
        response = _send(app, client, headers, method, path, body, people)
        assert response.status_code in (403, 404), (path, response.status_code)  # type: ignore[attr-defined]
        assert _case_state(session) == before, path


@pytest.mark.parametrize('username', ['chief', 'staff'])
def test_case_workers_get_403_on_every_admin_page(client_for: Clients, org: Org, create_member: Callable[..., User],
                                                  people: dict[str, User], username: str) -> None:
    if username == 'chief':
        create_member('chief', 'supervisor', org.county)
    client = client_for(username)
    staff = people['staff'].id
    for path in ('/admin/calendar', '/admin/users', '/admin/users/new', f'/admin/users/{staff}', ROLES,
                 f'{ROLES}/users/{staff}'):
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, '/tasks')
    for path in ('/admin/calendar', '/admin/users/new', f'/admin/users/{staff}', f'/admin/users/{staff}/password',
                 f'/admin/users/{staff}/deactivate', f'/admin/users/{staff}/unlock', f'{ROLES}/users/{staff}',
                 f'{ROLES}/users/{staff}/totp/reset'):
        assert client.post(path, data={'csrf_token': token}).status_code == 403, path


# -- the command line --------------------------------------------------------------------------------------------

def test_create_user_refuses_two_of_the_three_roles(app: Flask, session: Session, org: Org) -> None:
    for code in ('system_admin', 'audit_admin'):
        _ensure_group(session, code)
    runner = app.test_cli_runner()
    with app.app_context():  # as `flask --app wsgi create-user` runs it
        refused = runner.invoke(args=['create-user', 'both', '--name', '两者', '--org-unit', org.province.code,
                                      '--group', 'system_admin', '--group', 'audit_admin',
                                      '--password', 'Qiao-2025-new'])
        ok = runner.invoke(args=['create-user', 'auditor1', '--name', '审计员', '--org-unit', org.province.code,
                                 '--group', 'audit_admin', '--password', 'Qiao-2025-new'])
    assert refused.exit_code != 0 and '三员分立' in refused.output
    assert session.scalars(sa.select(User).where(User.username == 'both')).first() is None
    assert ok.exit_code == 0, ok.output
    session.expire_all()
    auditor = session.scalars(sa.select(User).where(User.username == 'auditor1')).one()
    assert _roles(session, auditor) == {('audit_admin', str(org.province.id))}
