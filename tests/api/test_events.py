"""POST /api/v1/events with machine-client tokens; the supervisors' 接入事件 page; the 接入方 admin page and the
create-client command."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from engine.clock import FrozenClock
from engine.models.events import InboundEvent, MachineClient
from engine.models.users import User
from tests.api.conftest import Api, assert_error
from tests.engine.events_support import STRANGER_ID, EventWorld, alarm, build_world, dispute_cases, open_tasks, referral
from tests.fixtures.directory import PASSWORD, Org
from tests.fixtures.web import csrf_token


@pytest.fixture
def world(session: Session, org: Org, create_member: Callable[..., User], clock: FrozenClock) -> EventWorld:
    create_member('chief', 'supervisor', org.county)
    create_member('other_chief', 'supervisor', org.other_county)
    create_member('staff', 'township_staff', org.township)
    create_member('sysadmin', 'system_admin', org.city)
    return build_world(session, org, create_member)


def post_event(client: FlaskClient, token: str | None, kind: str, payload: Any, key: str | None = 'k-1',
               **headers: str) -> TestResponse:
    auth = {'Authorization': f'Bearer {token}'} if token else {}
    if key is not None:
        auth['Idempotency-Key'] = key
    return client.post('/api/v1/events', json={'kind': kind, 'payload': payload}, headers={**auth, **headers})


def _logged_in(app: Flask, username: str) -> FlaskClient:
    browser = app.test_client()
    response = browser.post('/login', data={'username': username, 'password': PASSWORD,
                                            'csrf_token': csrf_token(browser)})
    assert response.status_code == 302
    return browser


def _count(session: Session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(InboundEvent)) or 0


def test_alarm_creates_the_verification_task_with_its_deadline(client: FlaskClient, session: Session,
                                                               world: EventWorld) -> None:
    response = post_event(client, world.tokens['tj'], 'alarm', alarm(), key='gps-0001')
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body['status'], body['effect'], body['case']['id'], body['key']) == ('delivered', 'request_started',
                                                                                 world.case.id, 'gps-0001')
    [verify] = open_tasks(session, world.case.id, 'verify')
    assert verify.due_dt == datetime(2025, 10, 10, 4, 15, tzinfo=UTC)


@pytest.mark.parametrize('payload', [alarm(id_number=STRANGER_ID), 'closed'])
def test_unmatched_alarms_are_kept_and_shown_to_the_units_supervisors_only(
        app: Flask, client: FlaskClient, session: Session, world: EventWorld, payload: Any) -> None:
    if payload == 'closed':
        world.case.close(datetime(2025, 10, 1, tzinfo=UTC))
        session.commit()
        payload = alarm()
    response = post_event(client, world.tokens['tj'], 'alarm', payload)
    assert response.status_code == 200 and response.get_json()['status'] == 'unmatched'
    event_id = response.get_json()['id']
    page = _logged_in(app, 'chief').get('/supervision/events')
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'id="event-{event_id}"' in text and 'id="unmatched-count">1<' in text
    assert payload['id_number'] not in text  # masked
    elsewhere = _logged_in(app, 'other_chief').get('/supervision/events').get_data(as_text=True)
    assert f'id="event-{event_id}"' not in elsewhere
    assert _logged_in(app, 'staff').get('/supervision/events').status_code == 403


def test_referral_opens_a_case_then_joins_it(client: FlaskClient, session: Session, world: EventWorld) -> None:
    first = post_event(client, world.tokens['tj'], 'referral', referral(), key='ref-1')
    again = post_event(client, world.tokens['tj'], 'referral', referral(source='诉源'), key='ref-2')
    assert first.status_code == 201 and first.get_json()['effect'] == 'case_started'
    assert again.status_code == 200 and again.get_json()['effect'] == 'case_attached'
    [case] = dispute_cases(session)
    assert first.get_json()['case']['id'] == again.get_json()['case']['id'] == case.id
    assert case.dispute_source == '警源'


def test_the_same_event_twice_has_one_effect(client: FlaskClient, session: Session, world: EventWorld) -> None:
    first = post_event(client, world.tokens['tj'], 'alarm', alarm(), key='twice')
    second = post_event(client, world.tokens['tj'], 'alarm', alarm(), key='twice')
    assert first.status_code == second.status_code == 201
    assert second.headers.get('Idempotent-Replayed') == 'true' and 'Idempotent-Replayed' not in first.headers
    assert first.get_json() == second.get_json()
    assert len(open_tasks(session, world.case.id, 'verify')) == 1 and _count(session) == 1


def test_the_key_may_come_in_the_body(client: FlaskClient, session: Session, world: EventWorld) -> None:
    headers = {'Authorization': f'Bearer {world.tokens["tj"]}'}
    body = {'kind': 'referral', 'key': 'body-key', 'payload': referral()}
    assert client.post('/api/v1/events', json=body, headers=headers).status_code == 201
    assert client.post('/api/v1/events', json=body, headers=headers).headers.get('Idempotent-Replayed') == 'true'
    assert len(dispute_cases(session)) == 1


def test_a_different_event_under_the_same_key_is_a_conflict(client: FlaskClient, session: Session,
                                                           world: EventWorld) -> None:
    assert post_event(client, world.tokens['tj'], 'alarm', alarm(), key='dup').status_code == 201
    assert_error(post_event(client, world.tokens['tj'], 'alarm', alarm(alarm_type='关机'), key='dup'), 409,
                 'conflict')
    assert len(open_tasks(session, world.case.id, 'verify')) == 1 and _count(session) == 1


@pytest.mark.parametrize(('kind', 'payload', 'key', 'field'), [
    ('alarm', alarm(id_number='1234'), 'k', 'payload.id_number'),
    ('alarm', alarm(alarm_type='掉线'), 'k', 'payload.alarm_type'),
    ('referral', referral(source='当事人申请'), 'k', 'payload.source'),
    ('fax', alarm(), 'k', 'kind'),
    ('alarm', alarm(), None, 'key'),
    ('alarm', alarm(), 'no spaces allowed', 'Idempotency-Key'),
])
def test_bad_events_are_400_and_record_nothing(client: FlaskClient, session: Session, world: EventWorld, kind: str,
                                               payload: Any, key: str | None, field: str) -> None:
    body = assert_error(post_event(client, world.tokens['tj'], kind, payload, key=key), 400, 'invalid')
    assert field in body['fields'] and _count(session) == 0 and not dispute_cases(session)


def test_staff_tokens_and_sessions_are_refused(app: Flask, client: FlaskClient, session: Session,
                                               world: EventWorld, api_token: Callable[[str], dict[str, str]]) -> None:
    staff = api_token('chief')['Authorization'].removeprefix('Bearer ')
    assert_error(post_event(client, staff, 'alarm', alarm()), 403, 'forbidden')
    browser = _logged_in(app, 'chief')
    assert_error(post_event(browser, None, 'alarm', alarm()), 403, 'forbidden')
    assert_error(post_event(client, None, 'alarm', alarm()), 401, 'unauthorized')
    assert_error(post_event(client, 'not-a-token', 'alarm', alarm()), 401, 'unauthorized')
    assert _count(session) == 0


def test_machine_tokens_open_no_other_endpoint(client: FlaskClient, world: EventWorld) -> None:
    machine = Api(client, {'Authorization': f'Bearer {world.tokens["tj"]}'})
    for path in ('/cases', '/tasks?view=all', f'/cases/{world.case.id}', '/definitions'):
        assert_error(machine.get(path), 401, 'unauthorized')
    assert_error(machine.post('/cases', {'process_key': 'dispute_mediation', 'data': referral()}), 401)


def test_a_deactivated_client_is_refused(client: FlaskClient, session: Session, world: EventWorld) -> None:
    client_row = session.get(MachineClient, world.client.id)
    assert client_row is not None
    client_row.is_active = False
    session.commit()
    assert_error(post_event(client, world.tokens['tj'], 'alarm', alarm()), 401)


def test_a_client_without_the_kind_is_refused(client: FlaskClient, session: Session, world: EventWorld,
                                              org: Org) -> None:
    from engine.events import create_client
    _alarms_only, token = create_client(session, '仅报警', org.county, ['alarm'], actor=None)
    session.commit()
    assert_error(post_event(client, token, 'referral', referral()), 403, 'forbidden')
    assert _count(session) == 0


def test_a_client_of_another_county_cannot_correlate_outside_its_subtree(client: FlaskClient, session: Session,
                                                                         world: EventWorld) -> None:
    response = post_event(client, world.tokens['hs'], 'alarm', alarm())
    assert response.status_code == 200
    assert (response.get_json()['status'], response.get_json()['case']) == ('unmatched', None)
    assert not open_tasks(session, world.case.id, 'verify')


def test_the_document_describes_the_endpoint(client: FlaskClient) -> None:
    operation = client.get('/api/v1/openapi.json').get_json()['paths']['/api/v1/events']['post']
    assert {'200', '201', '400', '401', '403', '409'} <= operation['responses'].keys()
    payload = operation['requestBody']['content']['application/json']['schema']
    assert payload  # a $ref to the request schema; the payload's oneOf is checked below
    document = client.get('/api/v1/openapi.json').get_json()
    schema = document['components']['schemas']['EventRequest']['properties']['payload']
    assert [set(option['required']) >= {'alarm_type'} or 'source' in option['required']
            for option in schema['oneOf']] == [True, True]


# -- the 接入方 admin page and the command line ----------------------------------------------------------

def test_system_admin_creates_a_client_and_sees_its_token_once(app: Flask, client: FlaskClient,
                                                              session: Session, world: EventWorld,
                                                              org: Org) -> None:
    admin = _logged_in(app, 'sysadmin')
    page = admin.get('/admin/clients')
    assert page.status_code == 200 and '桃江县电子定位平台' in page.get_data(as_text=True)
    form = {'name': '桃江县网格平台', 'org_unit': org.township.code, 'kinds': ['referral'],
            'csrf_token': csrf_token(admin, '/admin/clients')}
    created = admin.post('/admin/clients', data=form)
    assert created.status_code == 201 and created.headers['Cache-Control'] == 'no-store'
    token = re.search(r'<code>([^<]+)</code>', created.get_data(as_text=True))
    assert token is not None
    response = post_event(client, token.group(1), 'referral', referral())
    assert response.status_code == 201
    assert token.group(1) not in admin.get('/admin/clients').get_data(as_text=True)


def test_client_form_refuses_bad_input_and_writes_nothing(app: Flask, session: Session, world: EventWorld,
                                                          org: Org) -> None:
    admin = _logged_in(app, 'sysadmin')
    token = csrf_token(admin, '/admin/clients')
    for data in ({'name': '', 'org_unit': org.county.code, 'kinds': ['alarm']},
                 {'name': '外省', 'org_unit': '999999', 'kinds': ['alarm']},
                 {'name': '无类型', 'org_unit': org.county.code}):
        assert admin.post('/admin/clients', data={**data, 'csrf_token': token}).status_code == 400
    assert admin.post('/admin/clients', data={'name': '无令牌', 'org_unit': org.county.code,
                                              'kinds': ['alarm']}).status_code == 400
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(MachineClient)) == 2


def test_deactivating_a_client_stops_its_token(app: Flask, client: FlaskClient, world: EventWorld) -> None:
    admin = _logged_in(app, 'sysadmin')
    token = csrf_token(admin, '/admin/clients')
    response = admin.post(f'/admin/clients/{world.client.id}/deactivate', data={'csrf_token': token})
    assert response.status_code == 302
    assert_error(post_event(client, world.tokens['tj'], 'alarm', alarm()), 401)
    admin.post(f'/admin/clients/{world.client.id}/activate', data={'csrf_token': token})
    assert post_event(client, world.tokens['tj'], 'alarm', alarm()).status_code == 201


def test_only_system_admins_of_the_unit_manage_clients(app: Flask, session: Session, world: EventWorld,
                                                       org: Org, create_member: Callable[..., User]) -> None:
    assert _logged_in(app, 'chief').get('/admin/clients').status_code == 403
    create_member('county_admin', 'system_admin', org.other_county)
    other = _logged_in(app, 'county_admin')
    assert '桃江县电子定位平台' not in other.get('/admin/clients').get_data(as_text=True)
    token = csrf_token(other, '/admin/clients')
    assert other.post(f'/admin/clients/{world.client.id}/deactivate', data={'csrf_token': token}).status_code == 404


def test_create_client_command_prints_the_token_once(app: Flask, client: FlaskClient, world: EventWorld,
                                                     org: Org) -> None:
    result = app.test_cli_runner().invoke(args=['create-client', '桃江县信访平台', '--org-unit', org.county.code,
                                                '--kinds', 'referral'])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert post_event(client, token, 'referral', referral()).status_code == 201
    refused = app.test_cli_runner().invoke(args=['create-client', 'x', '--org-unit', org.county.code,
                                                 '--kinds', 'fax'])
    assert refused.exit_code != 0 and 'kinds' in refused.output
