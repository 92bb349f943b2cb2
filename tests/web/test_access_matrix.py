"""Every endpoint of the application × every role × a record inside and outside the caller's reach.

The outside record is a case (with its task, instance, attachment, jobs) in another province, started by
township staff there, plus another user's saved filter and notification, and a unit the caller does not
supervise. For each role and each endpoint that names such a record:

* the outside record is a 404 (a role without the function at all may be refused first with a 403, which
  says nothing about the record), nothing is written, and the attempt is an ``access.refused`` audit event
  at the record's unit;
* the inside record is never a 5xx, and the pages that show a case or a task answer 200 exactly to those the
  engine's access rules let see it, and 404 with the attempt logged to everyone else.

Endpoints that name no record (lists, dashboards of one's own unit, designer and administration pages whose
records belong to the whole installation) are called by every role too: never a 5xx, and nothing of the
outside case (its number, the person's name) appears in what they answer. A last test checks that this
table names every endpoint the application serves, so a new endpoint cannot be left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from lxml import html
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import NON_CASE_ROLES, can_view_case, load_scope
from engine.attachments import AttachmentSettings, store_attachment
from engine.clock import now
from engine.directory import create_org_unit
from engine.filters import save_filter
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Attachment, Comment
from engine.models.filters import SavedFilter
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.notifications import Notification
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import PASSWORD, Org
from tests.fixtures.web import csrf_token

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '本县案件',
         'id_number': '430922198001010010'}
OUTSIDE_START = {'person_name': '欧阳外县', 'received_on': '2025-09-26', 'summary': '外市案件',
                 'id_number': '431381198503120015'}
PDF = b'%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n'

#: username → (group, where): every role the application knows, each at the unit it works at
ROLES: dict[str, tuple[str, str]] = {
    'staff': ('township_staff', 'township'),
    'officer': ('county_officer', 'county'),
    'mediator': ('mediator', 'county'),
    'senior': ('senior_mediator', 'county'),
    'counsellor': ('counsellor', 'county'),
    'expert': ('expert', 'county'),
    'health': ('health_bureau', 'county'),
    'hospital': ('hospital_liaison', 'county'),
    'village': ('village_mediator', 'township'),
    'township_mediator': ('township_mediator', 'township'),
    'chief': ('supervisor', 'county'),
    'city_chief': ('supervisor', 'city'),
    'designer': ('designer', 'province'),
    'admin': ('admin', 'province'),
    'sysadmin': ('system_admin', 'province'),
    'secadmin': ('security_admin', 'province'),
    'auditadmin': ('audit_admin', 'province'),
}
#: the roles that keep accounts (``admin`` is the legacy name of ``system_admin``)
ACCOUNT_KEEPERS = frozenset({'system_admin', 'admin'})
#: record kinds whose endpoints are refused by function before the record is looked at (supervisors only)
SUPERVISOR_KINDS = frozenset({'unit', 'instance', 'job'})


@dataclass(frozen=True)
class Call:
    """One endpoint: its method, its path (``{name}`` filled from the world's ids) and the record it names.

    ``kind`` is ``case``/``task``/``attachment`` (a case's record), ``unit`` (a supervised unit),
    ``instance``/``job`` (supervisors' incident records), ``own`` (the caller's own filter or notification),
    ``start_unit`` (a case started at a unit given in the body), ``none`` (no record, or one that belongs to
    the whole installation) or ``public``.
    """

    method: str
    path: str
    kind: str
    body: dict[str, Any] | None = None
    #: a GET that shows the record: 200 for those who may see it
    shows: bool = False
    #: a bulk action: 200 with each task's outcome, a refused task among them
    bulk: bool = False


def _api(method: str, path: str, kind: str, body: dict[str, Any] | None = None, *, shows: bool = False,
         bulk: bool = False) -> Call:
    return Call(method, '/api/v1' + path, kind, body, shows, bulk)


CALLS: dict[str, Call] = {
    # -- the REST API
    'api.add_attachment': _api('POST', '/cases/{case}/attachments', 'case'),
    'api.add_comment': _api('POST', '/cases/{case}/comments', 'case', {'body': '看一看'}),
    'api.assign_task': _api('POST', '/tasks/{task}/assign', 'task', {'assignee': '{me}'}),
    'api.bulk_assign_tasks': _api('POST', '/tasks/bulk/assign', 'task', {'tasks': ['{task}'], 'assignee': '{me}'},
                                  bulk=True),
    'api.bulk_claim_tasks': _api('POST', '/tasks/bulk/claim', 'task', {'tasks': ['{task}']}, bulk=True),
    'api.claim_task': _api('POST', '/tasks/{task}/claim', 'task'),
    'api.complete_task': _api('POST', '/tasks/{task}/complete', 'task', {'data': {}}),
    'api.count_tasks': _api('GET', '/tasks/counts', 'none'),
    'api.create_token': _api('POST', '/auth/token', 'public'),
    'api.delegate_task': _api('POST', '/tasks/{task}/delegate', 'task', {'delegate': '{me}'}),
    'api.delete_filter': _api('DELETE', '/filters/{filter}', 'own'),
    'api.deploy_definition': _api('POST', '/definitions', 'none', {'source': '<x/>'}),
    'api.get_attachment_content': _api('GET', '/cases/{case}/attachments/{attachment}/content', 'attachment',
                                       shows=True),
    'api.get_case': _api('GET', '/cases/{case}', 'case', shows=True),
    'api.get_casefile': _api('GET', '/cases/{case}/casefile', 'case', shows=True),
    'api.get_openapi': _api('GET', '/openapi.json', 'public'),
    'api.get_task': _api('GET', '/tasks/{task}', 'task', shows=True),
    'api.list_attachments': _api('GET', '/cases/{case}/attachments', 'case', shows=True),
    'api.list_case_history': _api('GET', '/cases/{case}/history', 'case', shows=True),
    'api.list_cases': _api('GET', '/cases', 'none'),
    'api.list_comments': _api('GET', '/cases/{case}/comments', 'case', shows=True),
    'api.list_definitions': _api('GET', '/definitions', 'none'),
    'api.list_filters': _api('GET', '/filters', 'none'),
    'api.list_tasks': _api('GET', '/tasks?view=all', 'none'),
    # a machine clients' endpoint: every staff token and session is refused (403), anonymous is a 401
    'api.receive_event': _api('POST', '/events', 'none', {'kind': 'alarm', 'payload': {}}),
    'api.resolve_task': _api('POST', '/tasks/{task}/resolve', 'task', {'data': {}}),
    'api.save_filter': _api('POST', '/filters', 'none', {'name': '矩阵', 'view': 'all', 'criteria': {}}),
    'api.start_case': _api('POST', '/cases', 'start_unit', {'process_key': 'demo_intake', 'data': START,
                                                            'org_unit': '{unit}'}),
    'api.unclaim_task': _api('POST', '/tasks/{task}/unclaim', 'task'),
    'api.validate_definition': _api('POST', '/definitions/validate', 'none', {'source': '<x/>'}),
    # -- sign-in, health
    'auth.login': Call('GET', '/login', 'public'),
    'auth.logout': Call('POST', '/logout', 'public'),
    'auth.totp': Call('GET', '/account/totp', 'none'),
    'auth.verify_login': Call('GET', '/login/verify', 'public'),
    'health.healthz': Call('GET', '/healthz', 'public'),
    'health.readyz': Call('GET', '/readyz', 'public'),
    # -- 一案一码: the parties' page answers any code alike; issuing a PIN is an act on the case
    'public.issue_pin': Call('POST', '/cases/{case}/public-pin', 'case', {}),
    'public.show_case': Call('GET', '/c/NoSuchCode000000', 'public'),
    'public.show_qr': Call('GET', '/c/NoSuchCode000000/qr.svg', 'public'),
    'public.show_document': Call('GET', '/c/NoSuchCode000000/documents/{document}', 'public'),
    'public.verify_case': Call('POST', '/c/NoSuchCode000000', 'public', {'secret': '123456'}),
    'static': Call('GET', '/static/dist/diagram.js', 'public'),
    # -- cases, documents, comments, attachments, diagrams
    'cases.list_cases': Call('GET', '/cases', 'none'),
    'cases.new_case': Call('GET', '/cases/new', 'none'),
    'cases.search_cases': Call('POST', '/cases', 'none', {'q': '谢某某'}),
    'cases.export_casefile': Call('POST', '/cases/{case}/casefile', 'case', {}),
    'cases.reveal_case': Call('POST', '/cases/{case}/sensitive', 'case', {}),
    'cases.show_case': Call('GET', '/cases/{case}', 'case', shows=True),
    'cases.show_case_qr': Call('GET', '/cases/{case}/qr.svg', 'case', shows=True),
    'cases.show_casefile': Call('GET', '/cases/{case}/casefile', 'case', shows=True),
    'cases.show_document': Call('GET', '/cases/{case}/documents/{document}', 'case'),
    'cases.show_request_form': Call('GET', '/cases/{case}/requests/demo_intake', 'case'),
    'cases.show_start_form': Call('GET', '/cases/new/demo_intake', 'none'),
    'cases.start_case': Call('POST', '/cases/new/demo_intake', 'none', {'person_name': ''}),
    'cases.start_request': Call('POST', '/cases/{case}/requests/demo_intake', 'case', {}),
    'comments.add_attachment': Call('POST', '/cases/{case}/attachments', 'case', {}),
    'comments.add_comment': Call('POST', '/cases/{case}/comments', 'case', {'body': '看一看'}),
    'comments.download_attachment': Call('GET', '/cases/{case}/attachments/{attachment}', 'attachment',
                                         shows=True),
    'diagrams.show_diagram_data': Call('GET', '/cases/{case}/instances/{instance}/diagram.json', 'case',
                                       shows=True),
    # -- the to-do list and tasks
    'tasks.act_on_tasks': Call('POST', '/tasks/bulk', 'task', {'action': 'claim', 'task': '{task}'}, bulk=True),
    'tasks.assign_task': Call('POST', '/tasks/{task}/assign', 'task', {'assignee': '{me}'}),
    'tasks.cancel_reminder': Call('POST', '/tasks/{task}/reminders/{job}/cancel', 'task', {}),
    'tasks.claim_task': Call('POST', '/tasks/{task}/claim', 'task', {}),
    'tasks.complete_task': Call('POST', '/tasks/{task}', 'task', {}),
    'tasks.delegate_task': Call('POST', '/tasks/{task}/delegate', 'task', {'delegate': '{me}', 'note': '请办理'}),
    'tasks.delete_filter': Call('POST', '/tasks/filters/{filter}/delete', 'own', {}),
    'tasks.list_tasks': Call('GET', '/tasks?view=all', 'none'),
    'tasks.search_tasks': Call('POST', '/tasks', 'none', {'view': 'all', 'text': '谢某某'}),
    'tasks.resolve_task': Call('POST', '/tasks/{task}/resolve', 'task', {}),
    'tasks.save_filter': Call('POST', '/tasks/filters', 'none', {'name': '矩阵', 'view': 'all'}),
    'tasks.show_home': Call('GET', '/', 'none'),
    'tasks.show_task': Call('GET', '/tasks/{task}', 'task', shows=True),
    'tasks.snooze_reminder': Call('POST', '/tasks/{task}/reminders/{job}/snooze', 'task', {'days': '1'}),
    'tasks.unclaim_task': Call('POST', '/tasks/{task}/unclaim', 'task', {}),
    # -- notifications
    'notifications.list_notifications': Call('GET', '/notifications', 'none'),
    'notifications.mark_all_read': Call('POST', '/notifications/read-all', 'none', {}),
    'notifications.open_notification': Call('POST', '/notifications/{notification}/read', 'own', {}),
    # -- supervisors
    'dashboard.edit_weights': Call('GET', '/ranking/{unit}/weights', 'unit'),
    'dashboard.export_ranking': Call('GET', '/ranking/{unit}/export.csv', 'unit'),
    'dashboard.publish_ranking': Call('POST', '/ranking/{unit}/publish', 'unit', {'month': '2026-10'}),
    'dashboard.show_own': Call('GET', '/dashboard', 'none'),
    'dashboard.show_own_ranking': Call('GET', '/ranking', 'none'),
    'dashboard.show_ranking': Call('GET', '/ranking/{unit}', 'unit'),
    'dashboard.show_unit': Call('GET', '/dashboard/{unit}', 'unit'),
    'supervision.cancel_instance': Call('POST', '/supervision/incidents/instances/{instance}/cancel', 'instance',
                                        {'reason': '矩阵测试'}),
    'supervision.cancel_job': Call('POST', '/supervision/jobs/{job}/cancel', 'job', {'reason': '矩阵测试'}),
    'supervision.export_audit': Call('POST', '/supervision/audit/export', 'none', {'format': 'csv'}),
    'supervision.list_audit': Call('GET', '/supervision/audit', 'none'),
    'supervision.list_events': Call('GET', '/supervision/events', 'none'),
    'supervision.list_incidents': Call('GET', '/supervision/incidents', 'none'),
    'supervision.retry_instance': Call('POST', '/supervision/incidents/instances/{instance}/retry', 'instance',
                                       {'reason': '矩阵测试'}),
    'supervision.retry_job': Call('POST', '/supervision/jobs/{job}/retry', 'job', {'reason': '矩阵测试'}),
    'supervision.search_instances': Call('GET', '/supervision/instances', 'none'),
    'supervision.show_verify': Call('GET', '/supervision/audit/verify', 'none'),
    'supervision.verify_audit': Call('POST', '/supervision/audit/verify', 'none', {}),
    # -- 三员: accounts (system admins) and roles (security admins), each of a user below the admin's unit
    'admin.create_user': Call('POST', '/admin/users/new', 'none', {'username': 'matrix'}),
    'admin.deactivate_user': Call('POST', '/admin/users/{user}/deactivate', 'account', {}),
    'admin.list_users': Call('GET', '/admin/users', 'none'),
    'admin.new_user': Call('GET', '/admin/users/new', 'none'),
    'admin.reactivate_user': Call('POST', '/admin/users/{user}/reactivate', 'account', {}),
    'admin.reset_password': Call('POST', '/admin/users/{user}/password', 'account', {'password': 'x'}),
    'admin.show_user': Call('GET', '/admin/users/{user}', 'account'),
    'admin.unlock_user': Call('POST', '/admin/users/{user}/unlock', 'account', {}),
    'admin.update_user': Call('POST', '/admin/users/{user}', 'account', {'display_name': ''}),
    'admin.grant_role': Call('POST', '/admin/roles/users/{user}', 'grant', {'group': 'township_staff'}),
    'admin.list_roles': Call('GET', '/admin/roles', 'none'),
    'admin.reset_totp': Call('POST', '/admin/roles/users/{user}/totp/reset', 'grant', {}),
    'admin.revoke_role': Call('POST', '/admin/roles/memberships/{membership}/revoke', 'membership', {}),
    'admin.show_user_roles': Call('GET', '/admin/roles/users/{user}', 'grant'),
    # -- machine clients (接入方) of the system admin's subtrees; one that does not exist (or lies elsewhere) is a 404
    'admin.activate_client': Call('POST', '/admin/clients/999999/activate', 'none', {}),
    'admin.create_client': Call('POST', '/admin/clients', 'none', {'name': ''}),
    'admin.deactivate_client': Call('POST', '/admin/clients/999999/deactivate', 'none', {}),
    'admin.list_clients': Call('GET', '/admin/clients', 'none'),
    # -- the working calendar (the whole installation's)
    'admin.add_override': Call('POST', '/admin/calendar', 'none', {'day': '2026-12-31', 'kind': 'holiday'}),
    'admin.remove_override': Call('POST', '/admin/calendar/overrides/999999/remove', 'none', {}),
    'admin.show_calendar': Call('GET', '/admin/calendar', 'none'),
    # -- designers (definitions, drafts and migrations belong to the whole installation)
    'designer.create_draft': Call('POST', '/designer/drafts', 'none', {'key': 'matrix', 'kind': 'bpmn'}),
    'designer.delete_draft': Call('POST', '/designer/drafts/999999/delete', 'none', {}),
    'designer.deploy_draft': Call('POST', '/designer/drafts/999999/deploy', 'none', {}),
    'designer.draft_data': Call('GET', '/designer/drafts/999999/data', 'none'),
    'designer.draft_from_version': Call('POST', '/designer/versions/{definition}/draft', 'none', {}),
    'designer.edit_draft': Call('GET', '/designer/drafts/999999', 'none'),
    'designer.export_draft': Call('GET', '/designer/drafts/999999/source', 'none'),
    'designer.export_version': Call('GET', '/designer/versions/{definition}/source', 'none'),
    'designer.import_draft': Call('POST', '/designer/drafts/import', 'none', {}),
    'designer.list_definitions': Call('GET', '/designer/', 'none'),
    'designer.list_drafts': Call('GET', '/designer/drafts', 'none'),
    'designer.save_draft': Call('POST', '/designer/drafts/999999/save', 'none', {}),
    'designer.show_definition': Call('GET', '/designer/definitions/demo_intake', 'none'),
    'designer.show_diff': Call('GET', '/designer/diff', 'none'),
    'designer.show_version': Call('GET', '/designer/versions/{definition}', 'none'),
    'designer.validate_draft': Call('POST', '/designer/drafts/999999/validate', 'none', {}),
    # -- bulk import (a batch is the importer's own; 999999 names none)
    'imports.batch_progress': Call('GET', '/cases/import/batches/999999/progress', 'none'),
    'imports.check_import': Call('POST', '/cases/import/check', 'none', {'kind': 'offenders'}),
    'imports.download_template': Call('GET', '/cases/import/templates/offenders.csv', 'none'),
    'imports.new_import': Call('GET', '/cases/import/', 'none'),
    'imports.show_batch': Call('GET', '/cases/import/batches/999999', 'none'),
    'imports.start_import': Call('POST', '/cases/import/', 'none', {'kind': 'offenders'}),
    'migrations.batch_progress': Call('GET', '/designer/migrations/batches/999999/progress', 'none'),
    'migrations.list_batches': Call('GET', '/designer/migrations/', 'none'),
    'migrations.migrate_instance': Call('POST', '/designer/migrations/instances/{instance}', 'none', {}),
    'migrations.new_migration': Call('GET', '/designer/migrations/new/demo_intake', 'none'),
    'migrations.show_batch': Call('GET', '/designer/migrations/batches/999999', 'none'),
    'migrations.start_batch': Call('POST', '/designer/migrations/new/demo_intake', 'none', {}),
}
def _refused_by_role(call: Call, group: str) -> bool:
    """Whether ``group`` lacks the endpoint's function altogether: supervisors' pages for anyone else, starting
    a case for roles that do no case work (三员, designers)."""
    if call.kind in SUPERVISOR_KINDS:
        return group != 'supervisor'
    if call.kind == 'account':
        return group not in ACCOUNT_KEEPERS
    if call.kind in ('grant', 'membership'):
        return group != 'security_admin'
    return call.kind == 'start_unit' and group in NON_CASE_ROLES


SCOPED_KINDS = frozenset({'case', 'task', 'attachment', 'unit', 'instance', 'job', 'own', 'start_unit', 'account',
                          'grant', 'membership'})


@dataclass
class World:
    """The ids of both sides: ``inside`` the callers' county, ``outside`` in another province."""

    inside: dict[str, Any]
    outside: dict[str, Any]
    definition: int
    inside_case: Case
    inside_task: HumanTask
    outside_case: Case


def _side(session: Session, case: Case, task: HumanTask, uploader: User, unit: OrgUnit,
          member: User) -> dict[str, Any]:
    """The ids one side's calls name; ``member`` is the account the administration pages act on."""
    attachment = store_attachment(session, case, 'scan.pdf', PDF, actor=uploader,
                                  scope=load_scope(session, uploader), settings=AttachmentSettings())
    job = session.scalars(sa.select(Job).where(Job.human_task_id == task.id).order_by(Job.id)).first()
    session.flush()
    return {'case': case.id, 'task': task.id, 'instance': task.instance_id, 'attachment': attachment.id,
            'document': 999999, 'job': job.id if job else 999999, 'unit': unit.code, 'user': member.id,
            'membership': member.memberships[0].id}


def _own_records(session: Session, user: User) -> dict[str, int]:
    """A saved filter and a notification of ``user``'s."""
    saved = save_filter(session, f'{user.username} 的筛选', 'all', {}, actor=user, scope=load_scope(session, user))
    note = Notification(user_id=user.id, kind='reminder', title='提醒', body='', created_dt=now())
    session.add(note)
    session.flush()
    return {'filter': saved.id, 'notification': note.id}


@pytest.fixture
def world(session: Session, org: Org, create_member: Callable[..., User],
          deploy_file: Callable[[str], Any]) -> World:
    """A case in the callers' township and one in another province, each waiting at its first task."""
    for username, (group, where) in ROLES.items():
        create_member(username, group, getattr(org, where))
    other_province = create_org_unit(session, '440000', '广东省司法厅', 'province', None)
    other_city = create_org_unit(session, '440100', '广州市司法局', 'city', other_province)
    other_county = create_org_unit(session, '440105', '海珠区司法局', 'county', other_city)
    other_township = create_org_unit(session, '440105001', '赤岗街道司法所', 'township', other_county)
    session.commit()
    stranger = create_member('stranger', 'township_staff', other_township)
    definition = deploy_file(DEMO)
    staff = session.scalars(sa.select(User).where(User.username == 'staff')).one()
    case, [task] = runtime.start_case(session, 'demo_intake', START, actor=staff, org_unit=org.township)
    far_case, [far_task] = runtime.start_case(session, 'demo_intake', OUTSIDE_START, actor=stranger,
                                              org_unit=other_township)
    clerk = create_member('clerk', 'township_staff', org.township)
    inside = _side(session, case, task, staff, org.county, clerk)
    outside = _side(session, far_case, far_task, stranger, other_city, stranger)
    outside.update(_own_records(session, stranger))
    session.commit()
    return World(inside, outside, definition.id, case, task, far_case)


def _client(app: Flask, username: str | None) -> tuple[FlaskClient, dict[str, str], str]:
    """A browser session and API headers for ``username`` (None: anonymous), and its CSRF token."""
    client = app.test_client()
    if username is None:
        return client, {}, ''
    response = client.post('/login', data={'username': username, 'password': PASSWORD,
                                            'csrf_token': csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    api = app.test_client()
    token = api.post('/api/v1/auth/token', json={'username': username, 'password': PASSWORD})
    assert token.status_code == 200, token.get_data(as_text=True)
    return client, {'Authorization': f'Bearer {token.get_json()["token"]}'}, csrf_token(client, '/notifications')


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = re.fullmatch(r'\{(\w+)\}', value)
        if whole and value.strip('{}') in ids:
            return ids[whole.group(1)]
        return re.sub(r'\{(\w+)\}', lambda m: str(ids[m.group(1)]), value)
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


def _call(client: FlaskClient, headers: dict[str, str], token: str, call: Call, ids: dict[str, Any]) -> Any:
    path = _fill(call.path, ids)
    if path.startswith('/api/'):
        api = client.application.test_client()
        return api.open(path, method=call.method, headers=headers,
                        json=_fill(call.body, ids) if call.method != 'GET' else None)
    data = {**_fill(call.body or {}, ids), 'csrf_token': token} if call.method == 'POST' else None
    return client.open(path, method=call.method, data=data)


def _fingerprint(session: Session) -> tuple[Any, ...]:
    """What a refused command must not change: every write it could make, except the refusal's own event."""
    session.rollback()  # a new snapshot: the app wrote in its own transactions
    count = lambda model, *where: session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))  # noqa: E731
    tasks = tuple(session.execute(sa.select(HumanTask.id, HumanTask.status, HumanTask.assignee_id,
                                            HumanTask.delegation_state).order_by(HumanTask.id)))
    instances = tuple(session.execute(sa.select(ProcessInstance.id, ProcessInstance.revision,
                                                ProcessInstance.status).order_by(ProcessInstance.id)))
    return (count(AuditEvent, AuditEvent.kind != 'access.refused'), count(Case), count(Comment),
            count(Attachment), count(SavedFilter), count(Notification, Notification.read_dt.is_(None)),
            count(Job), tasks, instances)


def _refusals(session: Session, user: User) -> list[dict[str, Any]]:
    session.rollback()  # a new snapshot: the app wrote in its own transactions
    events = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'access.refused',
                                                         AuditEvent.actor_id == user.id).order_by(AuditEvent.id))
    return [event.after or {} for event in events]


def _user(session: Session, username: str) -> User:
    return session.scalars(sa.select(User).where(User.username == username)).one()


def _expected_records(call: Call, ids: dict[str, Any]) -> list[dict[str, Any]]:
    """The records an outside call may be refused on, as the audit event names them (a case's attachment
    is refused on the attachment, or on its case when the route loads the case first)."""
    if call.kind == 'own':
        record = 'filter' if '{filter}' in call.path else 'notification'
        return [{'record': record, 'id': ids[record]}]
    if call.kind in ('unit', 'start_unit'):
        return [{'record': 'org_unit', 'id': ids['unit']}]
    if call.kind == 'attachment':
        return [{'record': 'attachment', 'id': ids['attachment']}, {'record': 'case', 'id': ids['case']}]
    if call.kind in ('account', 'grant'):
        return [{'record': 'user', 'id': ids['user']}]
    return [{'record': call.kind, 'id': ids[call.kind]}]


@pytest.mark.parametrize('username', sorted(ROLES))
def test_outside_records_are_404_unchanged_and_logged(app: Flask, session: Session, world: World,
                                                     username: str) -> None:
    client, headers, token = _client(app, username)
    user = _user(session, username)
    outside = {**world.outside, 'me': user.id}
    before = _fingerprint(session)
    for name, call in CALLS.items():
        if call.kind not in SCOPED_KINDS:
            continue
        seen = len(_refusals(session, user))
        response = _call(client, headers, token, call, outside)
        group = ROLES[username][0]
        if response.status_code in (302, 403) and _refused_by_role(call, group):
            continue  # refused for the role (a button flashes why and goes back), before any record is read
        assert response.status_code == (200 if call.bulk else 404), (name, username, response.status_code,
                                             response.get_data(as_text=True)[:300])
        assert '欧阳外县' not in response.get_data(as_text=True), name
        logged = _refusals(session, user)[seen:]
        named = [{'record': e['record'], 'id': e['id']} for e in logged]
        assert any(record in named for record in _expected_records(call, outside)), (name, username, logged)
        assert all(e['endpoint'] == name for e in logged), (name, logged)
    assert _fingerprint(session) == before, username


@pytest.mark.parametrize('username', sorted(ROLES))
def test_inside_records_follow_the_access_rules_on_every_endpoint(app: Flask, session: Session, world: World,
                                                                  username: str) -> None:
    client, headers, token = _client(app, username)
    user = _user(session, username)
    inside = {**world.inside, 'me': user.id}
    inside.update(_own_records(session, user))
    session.commit()
    scope = load_scope(session, user)
    sees_case = can_view_case(session, scope, world.inside_case)
    sees_task = scope.can_view_task(world.inside_task)
    # the reading endpoints first, while the task is still where the world left it
    for name, call in sorted(CALLS.items(), key=lambda item: item[1].method != 'GET'):
        if call.kind in ('none', 'public'):
            continue
        seen = len(_refusals(session, user))
        response = _call(client, headers, token, call, inside)
        assert response.status_code < 500, (name, username, response.get_data(as_text=True)[:300])
        if not call.shows:
            continue
        visible = sees_task if call.kind == 'task' else sees_case
        if visible:
            assert response.status_code == 200, (name, username, response.status_code)
        else:
            assert response.status_code == 404, (name, username, response.status_code)
            assert _refusals(session, user)[seen:], (name, username)


@pytest.mark.parametrize('username', [None, *sorted(ROLES)])
def test_endpoints_without_a_record_never_fail_or_leak(app: Flask, session: Session, world: World,
                                                       username: str | None) -> None:
    client, headers, token = _client(app, username)
    for name, call in CALLS.items():
        if call.kind not in ('none', 'public') or name == 'auth.logout':
            continue
        response = _call(client, headers, token, call, {'definition': world.definition, **world.inside})
        body = response.get_data(as_text=True)
        assert response.status_code < 500, (name, username, body[:300])
        if username is None and call.kind == 'none':
            # a form posted without a session has no valid CSRF token either
            assert response.status_code in ((302, 400, 401) if call.method == 'POST' else (302, 401)), name
        assert world.outside_case.number not in body and '欧阳外县' not in body, (name, username)


def test_anonymous_callers_get_nothing_from_a_record_endpoint(app: Flask, session: Session, world: World) -> None:
    client = app.test_client()
    before = _fingerprint(session)
    for name, call in CALLS.items():
        if call.kind not in SCOPED_KINDS:
            continue
        response = _call(client, {}, '', call, {**world.outside, 'me': 1})
        assert response.status_code in (302, 400, 401), (name, response.status_code)
        if response.status_code == 302:
            assert '/login' in response.headers['Location'], name
    assert _fingerprint(session) == before


def test_the_matrix_names_every_endpoint(app: Flask) -> None:
    served = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert served == set(CALLS), {'not in the matrix': sorted(served - set(CALLS)),
                                  'no longer served': sorted(set(CALLS) - served)}


def test_a_refused_attempt_is_read_by_the_supervisors_of_the_record_not_of_the_caller(
        app: Flask, session: Session, world: World, create_member: Callable[..., User]) -> None:
    far_county = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == '440105')).one()
    create_member('far_chief', 'supervisor', far_county)
    client, _, _ = _client(app, 'staff')
    assert client.get(f'/cases/{world.outside["case"]}').status_code == 404
    far_chief, _, _ = _client(app, 'far_chief')
    assert len(_audit_rows(far_chief)) == 1
    own_chief, _, _ = _client(app, 'chief')
    assert _audit_rows(own_chief) == []


def _audit_rows(client: FlaskClient) -> list[str]:
    """The refused attempts the audit log lists to ``client``."""
    response = client.get('/supervision/audit?kind=access.refused')
    assert response.status_code == 200
    doc = html.fromstring(response.get_data(as_text=True))
    return [' '.join(row.text_content().split()) for row in doc.xpath('//tr[starts-with(@id, "audit-")]')]
