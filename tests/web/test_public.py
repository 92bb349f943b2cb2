"""一案一码: the parties' page ``/c/<code>`` behind a PIN or the phone's last digits, through the real app,
engine and database, on a medical dispute taken through acceptance by the shipped diagram."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from engine import public_access
from engine.access import load_scope
from engine.clock import FrozenClock
from engine.comments import add_comment
from engine.models.audit import AuditEvent
from engine.models.cases import Case, Document
from engine.models.public_access import PublicAccess
from engine.models.users import User
from engine.worker import Worker
from tests.fixtures.directory import PASSWORD
from tests.fixtures.web import csrf_token, form_tokens
from tests.web.conftest import DEMO, page, text_of
from tests.workflows.disputes import conftest as disputes
from tests.workflows.disputes.conftest import HOSPITAL, PATIENT_ID, Driver, Taojiang
from web.public.util import masked_document

PHONE = '13912345678'
COMMENT = '家属情绪激动，下次调解前先电话沟通'
REVIEW_NOTE = '材料齐全，内部评估赔付可能较高'
PIN_ON_PAGE = re.compile(r'id="public-pin">(\d{6})<')

# The dispute lifecycle's fixtures, by name (this module is not under tests/workflows/disputes).
taojiang, deployed, worker = disputes.taojiang, disputes.deployed, disputes.worker


@pytest.fixture
def dispute(session: Session, taojiang: Taojiang, deployed: None, clock: FrozenClock, worker: Worker) -> Driver:
    """Runs disputes at 桃江县 through the real engine (see tests/workflows/disputes/conftest.py)."""
    return Driver(session, taojiang, clock, worker)


def _accepted(dispute: Driver) -> Case:
    """A dispute accepted at the county (its rights notice issued to the parties), with an internal comment."""
    case = dispute.start(applicant_phone=PHONE)
    dispute.accept(case, review_note=REVIEW_NOTE)
    mediator = dispute.user('mediator')
    add_comment(dispute.session, case, COMMENT, actor=mediator, scope=load_scope(dispute.session, mediator))
    dispute.session.commit()
    return case


def _staff(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    response = client.post('/login', data={'username': username, 'password': PASSWORD,
                                            'csrf_token': csrf_token(client)})
    assert response.status_code == 302
    return client


def _issue_pin(app: Flask, case: Case, username: str = 'mediator') -> str:
    """签发查询密码 from the case page, as staff do; the PIN read off the page that shows it once."""
    staff = _staff(app, username)
    response = staff.post(f'/cases/{case.id}/public-pin', data=form_tokens(staff, f'/cases/{case.id}'))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    match = PIN_ON_PAGE.search(response.get_data(as_text=True))
    assert match
    return match.group(1)


def _attempt(client: FlaskClient, code: str, secret: str) -> TestResponse:
    token = csrf_token(client, f'/c/{code}')
    return client.post(f'/c/{code}', data={'secret': secret, 'csrf_token': token})


def _events(session: Session, kind: str) -> list[AuditEvent]:
    session.rollback()  # a new snapshot: the app wrote in its own transactions
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def test_the_pin_opens_the_progress_page_and_nothing_personal(app: Flask, dispute: Driver) -> None:
    case = _accepted(dispute)
    pin = _issue_pin(app, case)
    party = app.test_client()
    response = _attempt(party, case.public_code, pin)
    assert response.status_code == 303 and response.headers['Location'].endswith(f'/c/{case.public_code}')
    shown = party.get(f'/c/{case.public_code}')
    assert shown.status_code == 200
    doc = page(shown)
    done = [text_of(li) for li in doc.xpath('//ol[@id="done-stages"]/li')]
    current = [text_of(li) for li in doc.xpath('//ol[@id="current-stages"]/li')]
    assert done == ['受理审查 完成于 2025-09-26']
    assert current and all('办理期限：' in line for line in current)
    assert text_of(doc.get_element_by_id('mediator')) == 'mediator（测试）'
    assert '人民调解当事人权利义务告知书' in text_of(doc.get_element_by_id('party-documents'))
    body = shown.get_data(as_text=True)
    # No ID number, no other party (the hospital), no names, phone, amounts, comments or internal notes.
    for secret in (PATIENT_ID, HOSPITAL, '王哲', '王某某', PHONE, '30000', COMMENT, REVIEW_NOTE, '用药不当',
                   '人民调解受理登记表', pin):
        assert secret not in body, secret


def test_the_party_opens_the_documents_addressed_to_them_only(app: Flask, dispute: Driver,
                                                              session: Session) -> None:
    case = _accepted(dispute)
    code = case.public_code
    documents = {d.title: d for d in session.scalars(sa.select(Document).where(Document.case_id == case.id))}
    notice, internal = documents['人民调解当事人权利义务告知书'], documents['人民调解受理登记表']
    stranger = app.test_client()  # not verified: sent to the verify form, nothing shown
    refused = stranger.get(f'/c/{code}/documents/{notice.id}')
    assert refused.status_code == 303 and refused.headers['Location'].endswith(f'/c/{code}')
    party = app.test_client()
    assert _attempt(party, code, _issue_pin(app, case)).status_code == 303
    links = page(party.get(f'/c/{code}')).xpath('//ul[@id="party-documents"]//a/@href')
    assert links == [f'/c/{code}/documents/{notice.id}']
    shown = party.get(links[0])
    assert shown.status_code == 200 and '权利' in text_of(page(shown))
    assert PATIENT_ID not in shown.get_data(as_text=True)
    assert party.get(f'/c/{code}/documents/{internal.id}').status_code == 404
    assert [e.after['document'] for e in _events(session, 'public.document_viewed')] == [notice.id]


def test_the_phone_last_four_digits_open_the_page(app: Flask, dispute: Driver) -> None:
    case = _accepted(dispute)
    party = app.test_client()
    assert _attempt(party, case.public_code, PHONE[-4:]).status_code == 303
    assert party.get(f'/c/{case.public_code}').get_data(as_text=True).count('受理审查') == 1
    assert _attempt(app.test_client(), case.public_code, PHONE[-5:-1]).status_code == 200  # other digits: no


def _shape(body: str, code: str) -> str:
    """The page with the code it echoes (and the per-session CSRF token) taken out."""
    body = body.replace(code, '<code>')
    return re.sub(r'name="csrf_token" value="[^"]+"', '', body)


def test_a_wrong_pin_a_wrong_code_and_an_unknown_code_answer_alike(app: Flask, dispute: Driver) -> None:
    case = _accepted(dispute)
    _issue_pin(app, case)
    unknown = 'x' * len(case.public_code)
    wrong_pin = _attempt(app.test_client(), case.public_code, '000000')
    no_code = _attempt(app.test_client(), unknown, '000000')
    phone_on_no_code = _attempt(app.test_client(), unknown, PHONE[-4:])
    assert wrong_pin.status_code == no_code.status_code == phone_on_no_code.status_code == 200
    expected = _shape(wrong_pin.get_data(as_text=True), case.public_code)
    assert _shape(no_code.get_data(as_text=True), unknown) == expected
    assert _shape(phone_on_no_code.get_data(as_text=True), unknown) == expected
    # Before any attempt the pages are alike too, and neither names the case.
    first, other = app.test_client().get(f'/c/{case.public_code}'), app.test_client().get(f'/c/{unknown}')
    assert first.status_code == other.status_code == 200
    assert _shape(first.get_data(as_text=True), case.public_code) == _shape(other.get_data(as_text=True), unknown)
    assert case.number not in first.get_data(as_text=True)


def test_five_failures_lock_the_code_for_fifteen_minutes(app: Flask, dispute: Driver, session: Session) -> None:
    case = _accepted(dispute)
    pin = _issue_pin(app, case)
    locked_page = None
    for _ in range(5):
        locked_page = _attempt(app.test_client(), case.public_code, '111111')
    party = app.test_client()
    refused = _attempt(party, case.public_code, pin)
    assert refused.status_code == 200 and locked_page is not None
    assert refused.get_data(as_text=True).count('查询码或验证信息不正确') == 1
    assert party.get(f'/c/{case.public_code}').get_data(as_text=True).count('id="done-stages"') == 0
    assert [e.case_id for e in _events(session, 'public.locked')] == [case.id]
    dispute.clock.advance(timedelta(minutes=16))
    assert _attempt(party, case.public_code, pin).status_code == 303
    assert 'id="done-stages"' in party.get(f'/c/{case.public_code}').get_data(as_text=True)


def test_every_view_and_every_refusal_is_audited_at_the_case_unit(app: Flask, dispute: Driver,
                                                                  session: Session) -> None:
    case = _accepted(dispute)
    pin = _issue_pin(app, case)
    _attempt(app.test_client(), case.public_code, '222222')
    _attempt(app.test_client(), 'NoSuchCode000000', '222222')
    party = app.test_client()
    _attempt(party, case.public_code, pin)
    party.get(f'/c/{case.public_code}')
    party.get(f'/c/{case.public_code}')
    refused = _events(session, 'public.refused')
    assert [(e.case_id, e.org_path, (e.after or {})['reason']) for e in refused] == [
        (case.id, case.org_path, 'wrong_secret'), (None, None, 'unknown_code')]
    viewed = _events(session, 'public.viewed')
    assert [(e.case_id, e.org_path, (e.after or {})['method']) for e in viewed] == [
        (case.id, case.org_path, 'pin'), (case.id, case.org_path, 'pin')]
    issued = _events(session, 'public.pin_issued')
    assert len(issued) == 1 and pin not in str(issued[0].after) and issued[0].actor_name == 'mediator（测试）'


def test_attempts_from_one_address_are_rate_limited(app: Flask, dispute: Driver) -> None:
    case = _accepted(dispute)
    app.config['PUBLIC_RATE_LIMIT'] = 3
    statuses = [_attempt(app.test_client(), case.public_code, '333333').status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = _attempt(app.test_client(), case.public_code, PHONE[-4:])
    assert limited.status_code == 429 and int(limited.headers['Retry-After']) >= 1


def test_the_pin_is_kept_only_as_a_hash_and_reissuing_voids_the_old_one(app: Flask, dispute: Driver,
                                                                         session: Session) -> None:
    case = _accepted(dispute)
    first = _issue_pin(app, case)
    second = _issue_pin(app, case)
    session.rollback()
    row = session.scalars(sa.select(PublicAccess).where(PublicAccess.case_id == case.id)).one()
    assert row.pin_hash is not None and row.pin_hash.startswith('$argon2id$') and second not in row.pin_hash
    assert first == second or _attempt(app.test_client(), case.public_code, first).status_code == 200
    assert _attempt(app.test_client(), case.public_code, second).status_code == 303


def test_the_other_party_and_other_counties_cannot_issue_a_pin(app: Flask, dispute: Driver) -> None:
    case = _accepted(dispute)
    for username in ('hospital', 'other_mediator'):
        staff = _staff(app, username)
        response = staff.post(f'/cases/{case.id}/public-pin', data={'csrf_token': csrf_token(staff, '/tasks')})
        assert response.status_code == 404, username


def test_a_verification_lasts_thirty_minutes_for_that_one_code(app: Flask, dispute: Driver) -> None:
    case = _accepted(dispute)
    other = dispute.start(applicant_phone='13700001111')
    wall = [1_000_000.0]
    app.extensions['fengqiao.session_clock'] = lambda: wall[0]
    party = app.test_client()
    assert _attempt(party, case.public_code, PHONE[-4:]).status_code == 303
    assert 'id="done-stages"' in party.get(f'/c/{case.public_code}').get_data(as_text=True)
    assert 'name="secret"' in party.get(f'/c/{other.public_code}').get_data(as_text=True)
    wall[0] += 29 * 60
    assert 'id="done-stages"' in party.get(f'/c/{case.public_code}').get_data(as_text=True)
    wall[0] += 2 * 60
    assert 'name="secret"' in party.get(f'/c/{case.public_code}').get_data(as_text=True)


def test_the_rights_notice_carries_the_qr_code_and_how_to_use_it_but_no_pin(app: Flask, dispute: Driver) -> None:
    case = _accepted(dispute)
    pin = _issue_pin(app, case)
    [notice] = [d for d in dispute.documents(case) if d.kind == 'rights_notice']
    assert f'src="/c/{case.public_code}/qr.svg"' in notice.body_html
    assert '6 位查询密码' in notice.body_html and '手机号码后 4 位' in notice.body_html
    assert pin not in notice.body_html
    qr = app.test_client().get(f'/c/{case.public_code}/qr.svg')
    assert qr.status_code == 200 and qr.mimetype == 'image/svg+xml' and b'<svg' in qr.data
    assert app.test_client().get('/c/bad%20code!/qr.svg').status_code == 404


def test_starting_a_case_flashes_its_pin_once(app: Flask, session: Session, people: dict[str, User],
                                              deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    staff = _staff(app, 'staff')
    form = {'person_name': '赵某某', 'received_on': '2025-10-09', **form_tokens(staff, '/cases/new/demo_intake')}
    response = staff.post('/cases/new/demo_intake', data=form, follow_redirects=True)
    match = re.search(r'一案一码查询密码：(\d{6})', response.get_data(as_text=True))
    assert match
    session.rollback()
    case = session.scalars(sa.select(Case).order_by(Case.id.desc())).first()
    assert case is not None and public_access.has_pin(session, case)
    assert '一案一码查询密码' not in staff.get(f'/cases/{case.id}').get_data(as_text=True)
    assert _attempt(app.test_client(), case.public_code, match.group(1)).status_code == 303


@pytest.mark.parametrize('code', ['', 'a' * 33, '../etc'])
def test_codes_of_the_wrong_shape_are_looked_up_nowhere(session: Session, code: str) -> None:
    assert public_access.find_case(session, code) is None


def test_id_numbers_in_a_party_document_are_masked_and_nothing_else_changes() -> None:
    body = '<p>申请人 王某某，公民身份号码 430922198001010010；电话 13912345678；案号 YT-2025-000001。</p>'
    assert masked_document(body) == ('<p>申请人 王某某，公民身份号码 430922********0010；电话 13912345678；'
                                     '案号 YT-2025-000001。</p>')
