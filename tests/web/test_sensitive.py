"""Sensitive fields: masked on every list and page, shown in full only through the audited 查看完整信息 POST, to the
case's own units; downloads and document views audited; no ID number ever in a GET address the pages produce."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.attachments import AttachmentSettings, store_attachment
from engine.clock import now
from engine.models.audit import AuditEvent
from engine.models.cases import Case, CaseAccessGrant, Document
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures import files
from tests.fixtures.directory import Org
from tests.web.conftest import page, post_form, text_of

Clients = Callable[[str], FlaskClient]
DIAGRAM = 'tests/web/bpmn/sensitive_intake.bpmn'
ID_NUMBER = '431381198503120015'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'id_number': ID_NUMBER, 'phone': '13812345678',
         'residence_address': '湖南省益阳市桃江县桃花江镇资江路12号', 'illness': '高血压病史十年'}
REGISTER = {'visit_count': '1', 'risk_level': 'low', 'findings': '走访属实，情况清楚',
            'hospital_statement': '患者入院诊断为急性阑尾炎', 'location': '28.5312,112.1423'}
#: every value that must never appear in full outside the 查看完整信息 page
FULL = (ID_NUMBER, '13812345678', '资江路12号', '高血压病史十年', '急性阑尾炎', '28.5312,112.1423')
#: what the masked values read
MASKED = ('431381********0015', '138****5678', '湖南省益阳市桃江县****', '（敏感信息，已隐藏）')
ID_SHAPE = re.compile(r'[0-9]{17}[0-9Xx]')


@pytest.fixture
def case(session: Session, org: Org, people: dict[str, User], create_member: Callable[..., User],
         deploy_file: Callable[[str], object]) -> Case:
    """A case at the township with every kind of sensitive value, its ``register`` done, waiting at ``review``."""
    create_member('chief', 'supervisor', org.county)
    deploy_file(DIAGRAM)
    opened, [register] = runtime.start_case(session, 'sensitive_intake', START, actor=people['staff'],
                                            org_unit=org.township)
    runtime.complete_task(session, register.id, REGISTER, actor=people['staff'],
                          scope=load_scope(session, people['staff']))
    session.commit()
    return opened


def _review(session: Session, case: Case) -> HumanTask:
    return session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case.id,
                                                      HumanTask.status == 'open')).one()


def _events(session: Session, kind: str) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind)))


def _reveal(client: FlaskClient, case: Case, token_from: str = '/tasks') -> object:
    return post_form(client, f'/cases/{case.id}/sensitive', {}, token_from=token_from)


def _assert_masked(body: str) -> None:
    leaked = [value for value in FULL if value in body]
    assert not leaked, leaked


def _addresses(body: str) -> list[str]:
    """Every address the page links to, loads or sends a GET form to."""
    doc = page_of(body)
    found = doc.xpath('//a/@href | //img/@src | //script/@src | //link/@href')
    found += doc.xpath('//form[not(@method) or translate(@method, "GET", "get")="get"]/@action')
    return [str(address) for address in found]


def page_of(body: str) -> object:
    from lxml import html
    return html.fromstring(body)


# -- masked by default ------------------------------------------------------------------------------------

def test_the_case_page_masks_every_kind_and_offers_the_reveal_button(client_for: Clients, case: Case) -> None:
    response = client_for('staff').get(f'/cases/{case.id}')
    body = response.get_data(as_text=True)
    _assert_masked(body)
    assert all(masked in body for masked in MASKED)
    doc = page(response)
    [form] = doc.xpath(f'//form[@action="/cases/{case.id}/sensitive"]')
    assert form.get('method') == 'post' and form.xpath('.//input[@name="csrf_token"]/@value')
    assert text_of(form.xpath('.//button')[0]) == '查看完整信息'


def test_the_task_page_masks_every_kind_and_offers_the_reveal_button(client_for: Clients, session: Session,
                                                                     case: Case) -> None:
    task = _review(session, case)
    response = client_for('officer').get(f'/tasks/{task.id}')
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    _assert_masked(body)
    assert '431381********0015' in body and '（敏感信息，已隐藏）' in body
    assert page(response).xpath(f'//form[@action="/cases/{case.id}/sensitive"]')


@pytest.mark.parametrize(('username', 'path'), [
    ('staff', '/cases'), ('officer', '/tasks?view=all'), ('officer', '/tasks?view=group'),
    ('chief', '/supervision/instances'), ('chief', '/tasks?view=all')])
def test_lists_never_show_a_full_value(client_for: Clients, case: Case, username: str, path: str) -> None:
    response = client_for(username).get(path)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert case.number in body
    _assert_masked(body)


# -- revealing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('username', ['staff', 'officer', 'chief'])
def test_a_permitted_role_sees_every_value_in_full_and_one_event_is_written(
        client_for: Clients, session: Session, people: dict[str, User], case: Case, username: str) -> None:
    response = _reveal(client_for(username), case)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.headers['Cache-Control'] == 'no-store'  # type: ignore[attr-defined]
    body = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert all(value in body for value in FULL)
    [event] = _events(session, 'case.sensitive_viewed')
    user = session.scalars(sa.select(User).where(User.username == username)).one()
    assert event.case_id == case.id and event.actor_id == user.id and event.org_path == case.org_path
    assert event.after == {'fields': sorted(['id_number', 'phone', 'residence_address', 'illness',
                                             'hospital_statement', 'location'])}


def test_the_reveal_shows_in_the_case_history(client_for: Clients, session: Session, case: Case) -> None:
    staff = client_for('staff')
    _reveal(staff, case)
    history = text_of(page(staff.get(f'/cases/{case.id}')).xpath('//*[@id="history"]')[0])
    assert '查看完整敏感信息' in history and '公民身份号码' in history


def test_a_transfer_grant_reader_sees_masked_values_and_cannot_reveal(client_for: Clients, session: Session,
                                                                     org: Org, case: Case) -> None:
    session.add(CaseAccessGrant(case_id=case.id, org_path=org.other_township.path, reason='变更执行地',
                                granted_dt=case.created_dt))
    session.commit()
    outsider = client_for('outsider')
    shown = outsider.get(f'/cases/{case.id}')
    assert shown.status_code == 200
    body = shown.get_data(as_text=True)
    _assert_masked(body)
    assert '431381********0015' in body and '/sensitive' not in body
    assert _reveal(outsider, case, token_from=f'/cases/{case.id}').status_code == 404  # type: ignore[attr-defined]
    assert _events(session, 'case.sensitive_viewed') == []


@pytest.mark.parametrize('username', ['outsider', 'designer'])
def test_a_user_outside_the_case_gets_404_and_no_event(client_for: Clients, session: Session, case: Case,
                                                       username: str) -> None:
    client = client_for(username)
    response = _reveal(client, case, token_from='/account' if username == 'designer' else '/tasks')
    assert response.status_code == 404  # type: ignore[attr-defined]
    _assert_masked(response.get_data(as_text=True))  # type: ignore[attr-defined]
    assert _events(session, 'case.sensitive_viewed') == []


def test_the_reveal_needs_the_csrf_token(client_for: Clients, session: Session, case: Case) -> None:
    response = client_for('staff').post(f'/cases/{case.id}/sensitive')
    assert response.status_code == 400
    _assert_masked(response.get_data(as_text=True))
    assert _events(session, 'case.sensitive_viewed') == []


def test_a_get_reveals_nothing(client_for: Clients, case: Case) -> None:
    assert client_for('staff').get(f'/cases/{case.id}/sensitive').status_code == 405


# -- downloads and documents ---------------------------------------------------------------------------------

def test_an_attachment_download_is_audited(client_for: Clients, session: Session, people: dict[str, User],
                                           case: Case) -> None:
    attachment = store_attachment(session, case, '病历.pdf', files.PDF, actor=people['staff'],
                                  scope=load_scope(session, people['staff']), task=None,
                                  settings=AttachmentSettings())
    session.commit()
    response = client_for('officer').get(f'/cases/{case.id}/attachments/{attachment.id}')
    assert response.status_code == 200 and response.data == files.PDF
    [event] = _events(session, 'attachment.downloaded')
    assert event.case_id == case.id and event.actor_id == people['officer'].id
    assert event.after == {'attachment_id': attachment.id, 'filename': '病历.pdf'}


def test_a_refused_download_is_not_audited_as_one(client_for: Clients, session: Session,
                                                  people: dict[str, User], case: Case) -> None:
    attachment = store_attachment(session, case, '病历.pdf', files.PDF, actor=people['staff'],
                                  scope=load_scope(session, people['staff']), task=None,
                                  settings=AttachmentSettings())
    session.commit()
    assert client_for('outsider').get(f'/cases/{case.id}/attachments/{attachment.id}').status_code == 404
    assert _events(session, 'attachment.downloaded') == []


def test_a_document_view_is_audited(client_for: Clients, session: Session, people: dict[str, User],
                                    case: Case) -> None:
    document = Document(case_id=case.id, kind='notice', title='告知书', number='桃司矫〔2025〕1号',
                        body_html='<p>告知书</p>', created_dt=now())
    session.add(document)
    session.commit()
    assert client_for('staff').get(f'/cases/{case.id}/documents/{document.id}').status_code == 200
    [event] = _events(session, 'document.viewed')
    assert event.case_id == case.id and event.actor_id == people['staff'].id
    assert event.after == {'document_id': document.id, 'number': '桃司矫〔2025〕1号'}


# -- no ID number in a GET address ---------------------------------------------------------------------------

@pytest.mark.parametrize(('username', 'path'), [
    ('staff', f'/tasks?text={ID_NUMBER}'), ('staff', f'/tasks?view=all&text={ID_NUMBER.lower()}'),
    ('staff', f'/cases?q={ID_NUMBER}'), ('staff', f'/cases?id_number={ID_NUMBER}'),
    ('chief', f'/supervision/instances?text={ID_NUMBER}')])
def test_an_id_number_in_the_address_is_refused_with_a_pointer_to_the_search_box(
        client_for: Clients, case: Case, username: str, path: str) -> None:
    response = client_for(username).get(path)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert '公民身份号码不能放在网址中' in body and ID_NUMBER not in body.upper()
    assert case.number not in body  # refused, not answered


def test_the_search_forms_post(client_for: Clients, case: Case) -> None:
    for username, path, action in (('staff', '/tasks', '/tasks'), ('staff', '/cases', '/cases'),
                                   ('chief', '/supervision/instances', '/supervision/instances')):
        doc = page(client_for(username).get(path))
        [form] = doc.xpath('//form[@role="search"]')
        assert form.get('method') == 'post' and form.get('action') == action
        assert form.xpath('.//input[@name="csrf_token"]/@value')


def test_an_id_number_task_search_is_answered_directly_and_its_links_carry_no_id_number(
        client_for: Clients, case: Case) -> None:
    response = post_form(client_for('officer'), '/tasks', {'view': 'all', 'text': ID_NUMBER})
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert case.number in body
    assert not [address for address in _addresses(body) if ID_SHAPE.search(address)]


def test_any_other_task_search_is_redirected_to_a_bookmarkable_address(client_for: Clients, case: Case) -> None:
    response = post_form(client_for('staff'), '/tasks', {'view': 'all', 'text': '谢某'})
    assert response.status_code == 303  # type: ignore[attr-defined]
    location = response.headers['Location']  # type: ignore[attr-defined]
    assert location.startswith('/tasks?') and 'csrf_token' not in location and 'text=' in location


def test_an_id_number_instance_search_is_answered_directly(client_for: Clients, case: Case) -> None:
    response = post_form(client_for('chief'), '/supervision/instances', {'text': ID_NUMBER})
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert case.number in body
    assert not [address for address in _addresses(body) if ID_SHAPE.search(address)]
    other = post_form(client_for('chief'), '/supervision/instances', {'text': '谢某'})
    assert other.status_code == 303 and other.headers['Location'].startswith('/supervision/instances?')  # type: ignore[attr-defined]


@pytest.mark.parametrize(('username', 'path'), [
    ('officer', '/tasks?view=all'), ('staff', '/cases'), ('staff', '/cases/{case}'), ('officer', '/tasks/{task}'),
    ('chief', '/supervision/instances'), ('staff', '/')])
def test_no_page_links_to_an_address_holding_an_id_number(client_for: Clients, session: Session, case: Case,
                                                          username: str, path: str) -> None:
    client = client_for(username)
    response = client.get(path.format(case=case.id, task=_review(session, case).id), follow_redirects=True)
    assert response.status_code == 200
    assert not [address for address in _addresses(response.get_data(as_text=True)) if ID_SHAPE.search(address)]
