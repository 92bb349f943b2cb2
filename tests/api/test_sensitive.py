"""Sensitive fields through /api/v1: the case detail masks the ID number unless ``reveal=1`` (audited, the case's
own units only), history values are masked, and attachment downloads are audited."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.models.audit import AuditEvent
from engine.models.cases import Case, CaseAccessGrant
from engine.models.users import User
from tests.api.conftest import REGISTER, START, Api, assert_error, start_demo_case
from tests.fixtures import files
from tests.fixtures.directory import Org

MASKED = '430922********0010'


@pytest.fixture
def case(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> dict[str, Any]:
    """A demo case at the township, opened by staff through the API."""
    return start_demo_case(as_user('staff'))


def _reveals(session: Session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'case.sensitive_viewed')))


def test_the_detail_is_masked_by_default_and_writes_nothing(as_user: Callable[[str | None], Api],
                                                            case: dict[str, Any], session: Session) -> None:
    for flag in ('', '?reveal=0', '?reveal=false'):
        detail = as_user('staff').get(f'/cases/{case["id"]}{flag}')
        assert detail.status_code == 200 and detail.get_json()['id_number'] == MASKED
    assert _reveals(session) == []


@pytest.mark.parametrize('username', ['staff', 'officer', 'chief'])
def test_reveal_gives_the_full_number_and_writes_one_event(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                                           people: dict[str, User], session: Session,
                                                           username: str) -> None:
    detail = as_user(username).get(f'/cases/{case["id"]}?reveal=1')
    assert detail.status_code == 200 and detail.get_json()['id_number'] == START['id_number']
    [event] = _reveals(session)
    assert event.case_id == case['id'] and event.actor_id == people[username].id
    assert event.after == {'fields': ['id_number']}


def test_a_transfer_grant_reader_reads_masked_and_may_not_reveal(as_user: Callable[[str | None], Api],
                                                                 case: dict[str, Any], org: Org,
                                                                 session: Session) -> None:
    row = session.get(Case, case['id'])
    assert row is not None
    session.add(CaseAccessGrant(case_id=row.id, org_path=org.other_township.path, reason='变更执行地',
                                granted_dt=row.created_dt))
    session.commit()
    outsider = as_user('outsider')
    assert outsider.get(f'/cases/{case["id"]}').get_json()['id_number'] == MASKED
    assert_error(outsider.get(f'/cases/{case["id"]}?reveal=1'), 404, 'not_found')
    assert _reveals(session) == []


@pytest.mark.parametrize('username', ['outsider', 'designer'])
def test_outside_the_case_reveal_is_a_404_and_writes_nothing(as_user: Callable[[str | None], Api],
                                                             case: dict[str, Any], session: Session,
                                                             username: str) -> None:
    response = as_user(username).get(f'/cases/{case["id"]}?reveal=1')
    assert_error(response, 404)
    assert START['id_number'] not in response.get_data(as_text=True)
    assert _reveals(session) == []


def test_a_malformed_reveal_flag_is_a_400(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                          session: Session) -> None:
    assert_error(as_user('staff').get(f'/cases/{case["id"]}?reveal=perhaps'), 400, 'invalid')
    assert _reveals(session) == []


def test_the_reveal_flag_is_documented(as_user: Callable[[str | None], Api], people: dict[str, User]) -> None:
    document = as_user('staff').get('/openapi.json').get_json()
    operation = document['paths']['/api/v1/cases/{case_id}']['get']
    [reveal] = [p for p in operation['parameters'] if p['name'] == 'reveal']
    assert reveal['in'] == 'query' and 'case.sensitive_viewed' in reveal['description']


def test_history_values_are_masked(as_user: Callable[[str | None], Api], case: dict[str, Any]) -> None:
    staff = as_user('staff')
    staff.post(f'/tasks/{case["tasks"][0]["id"]}/complete', {'data': REGISTER})
    history = staff.get(f'/cases/{case["id"]}/history')
    assert history.status_code == 200
    assert START['id_number'] not in history.get_data(as_text=True)
    [started] = [e for e in history.get_json()['items'] if e['kind'] == 'case.started']
    assert started['after']['data']['id_number'] == MASKED
    assert started['after']['data']['person_name'] == START['person_name']


def test_an_attachment_download_is_audited(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                           people: dict[str, User], session: Session) -> None:
    upload = as_user('staff').post(f'/cases/{case["id"]}/attachments', content_type='multipart/form-data',
                                   data={'file': (io.BytesIO(files.PDF), '病历.pdf')})
    assert upload.status_code == 201, upload.get_json()
    attachment = upload.get_json()
    download = as_user('chief').get(f'/cases/{case["id"]}/attachments/{attachment["id"]}/content')
    assert download.status_code == 200 and download.data == files.PDF
    session.expire_all()
    [event] = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'attachment.downloaded')).all()
    assert event.case_id == case['id'] and event.actor_id == people['chief'].id
    assert event.after == {'attachment_id': attachment['id'], 'filename': '病历.pdf'}
