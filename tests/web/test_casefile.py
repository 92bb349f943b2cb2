"""The case file (卷宗) pages and API: the preview in the standard order with a contents page that matches it, the
export as a download audited with its actor, and who may not: outsiders (404, logged), readers who may not
reveal the sensitive data (403), and a post without its CSRF token."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.models.audit import AuditEvent
from engine.models.cases import Case, CaseAccessGrant
from tests.engine.test_casefile import dispute_to_closure
from tests.fixtures.web import csrf_token
from tests.web.conftest import page, text_of
from tests.workflows.corrections import conftest as corrections_fixtures
from tests.workflows.corrections.conftest import Corrections, reception_data
from tests.workflows.disputes import conftest as disputes_fixtures
from tests.workflows.disputes.conftest import PATIENT_ID, Driver, valid_id

# The lifecycles' drivers, as the workflow tests use them (pytest finds fixtures by their module-level names).
corrections = corrections_fixtures.corrections
deployed, driver, taojiang, worker = (disputes_fixtures.deployed, disputes_fixtures.driver, disputes_fixtures.taojiang,
                                      disputes_fixtures.worker)

Clients = Callable[[str], FlaskClient]


@pytest.fixture
def closed(driver: Driver) -> Case:
    """A dispute run through agreement, court confirmation and 回访 to closure, with five attachments."""
    case, _ = dispute_to_closure(driver)
    return case


def _events(session: Session, kind: str) -> list[AuditEvent]:
    session.rollback()  # a new snapshot: the app wrote in its own transactions
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def _export(client: FlaskClient, case: Case, **data: str) -> Any:
    return client.post(f'/cases/{case.id}/casefile', data=data)


def test_preview_shows_the_sections_in_order_with_contents_to_match(client_for: Clients, driver: Driver,
                                                                     closed: Case) -> None:
    response = client_for('mediator').get(f'/cases/{closed.id}/casefile')
    assert response.status_code == 200
    assert response.headers['Cache-Control'] == 'private, no-store'
    doc = page(response)
    sections = doc.xpath('//section[contains(@class, "cf-section")]')
    keys = [section.get('data-section') for section in sections]
    assert keys == ['cover', 'contents', 'application', 'notices', 'evidence', 'sessions', 'agreement', 'performance',
                    'followup', 'confirmation', 'summary', 'back_cover']
    # the contents list every section after itself, in the same order, each item linking into its own section
    groups = doc.xpath('//tbody[contains(@class, "cf-contents-group")]')
    assert [group.get('data-section') for group in groups] == keys[2:]
    for group in groups:
        section = doc.get_element_by_id(f'section-{group.get("data-section")}')
        assert section.get('data-section') == group.get('data-section')
        targets = [link.get('href').lstrip('#') for link in group.xpath('.//tr[not(@class)]//a')]
        assert targets == [item.get('id') for item in section.xpath('.//article[contains(@class, "cf-item")]')]
        heading = text_of(group.xpath('.//tr[@class="cf-contents-section"]//a')[0])
        assert heading == text_of(section.xpath('.//h2')[0])
    numbers = [int(text_of(cell)) for cell in doc.xpath('//article//span[@class="cf-number"]')]
    assert numbers == list(range(1, len(numbers) + 1))
    body = text_of(doc.xpath('//div[@class="casefile"]')[0])
    # the record itself: the ID number in full, the court's case number, the history with the closure
    assert PATIENT_ID in body and '（2025）湘0922民特12号' in body and '卷宗齐全，同意结案。' in body
    assert '人民调解协议书' in body and '结案' in body
    [event] = _events(driver.session, 'case.file_previewed')
    assert event.actor_id == driver.user('mediator').id and event.case_id == closed.id


def test_export_downloads_one_standalone_file_and_audits_who_took_it(client_for: Clients, driver: Driver,
                                                                     closed: Case) -> None:
    client = client_for('mediator')
    response = _export(client, closed, csrf_token=csrf_token(client, f'/cases/{closed.id}/casefile'))
    assert response.status_code == 200 and response.mimetype == 'text/html'
    filename = f'卷宗-{closed.number}.html'
    assert response.headers['Content-Disposition'].endswith(f"filename*=UTF-8''{quote(filename, safe='')}")
    assert "sandbox" in response.headers['Content-Security-Policy']
    content = response.get_data()
    text = content.decode('utf-8')
    assert text.startswith('<!doctype html>') and '<style>' in text and '@page' in text and '<script' not in text
    assert 'href="/static' not in text and PATIENT_ID in text
    [event] = _events(driver.session, 'case.file_exported')
    assert (event.actor_id, event.case_id, event.org_path) == (driver.user('mediator').id, closed.id, closed.org_path)
    assert event.after['sha256'] == hashlib.sha256(content).hexdigest() and event.after['size'] == len(content)
    assert event.after['filename'] == filename and event.after['channel'] == 'web'
    assert len(event.after['attachments']) == 5


def test_export_needs_the_csrf_token(client_for: Clients, driver: Driver, closed: Case) -> None:
    response = _export(client_for('mediator'), closed)
    assert response.status_code == 400
    assert PATIENT_ID not in response.get_data(as_text=True)
    assert _events(driver.session, 'case.file_exported') == []


def test_an_outsider_gets_404_and_the_attempt_is_logged(client_for: Clients, driver: Driver,
                                                        closed: Case) -> None:
    client = client_for('other_mediator')
    token = csrf_token(client, '/tasks')
    assert client.get(f'/cases/{closed.id}/casefile').status_code == 404
    assert _export(client, closed, csrf_token=token).status_code == 404
    refusals = [e.after for e in _events(driver.session, 'access.refused')]
    assert [(r['record'], r['id'], r['endpoint']) for r in refusals] == [
        ('case', closed.id, 'cases.show_casefile'), ('case', closed.id, 'cases.export_casefile')]
    assert _events(driver.session, 'case.file_exported') == _events(driver.session, 'case.file_previewed') == []


def test_a_reader_who_may_not_reveal_gets_403(client_for: Clients, api_token: Callable[[str], dict[str, str]],
                                              session: Session, driver: Driver, closed: Case) -> None:
    # the county the case was moved from keeps reading it, masked: it may not take the full file
    session.add(CaseAccessGrant(case_id=closed.id, org_path=driver.org.other_county.path, reason='移交',
                                granted_dt=closed.created_dt))
    session.commit()
    client = client_for('other_mediator')
    case_page = client.get(f'/cases/{closed.id}')
    assert case_page.status_code == 200 and '/casefile' not in case_page.get_data(as_text=True)
    shown = client.get(f'/cases/{closed.id}/casefile')
    assert shown.status_code == 403 and PATIENT_ID not in shown.get_data(as_text=True)
    assert _export(client, closed, csrf_token=csrf_token(client, f'/cases/{closed.id}')).status_code == 403
    api = client.application.test_client().get(f'/api/v1/cases/{closed.id}/casefile',
                                               headers=api_token('other_mediator'))
    assert api.status_code == 403 and api.get_json()['error'] == 'forbidden'
    assert _events(driver.session, 'case.file_exported') == _events(driver.session, 'case.file_previewed') == []


def test_the_case_page_links_the_file_for_its_own_units(client_for: Clients, closed: Case) -> None:
    doc = page(client_for('mediator').get(f'/cases/{closed.id}'))
    assert doc.xpath(f'//a[@href="/cases/{closed.id}/casefile"]')


def test_the_api_returns_the_file_and_audits_it(client: FlaskClient, api_token: Callable[[str], dict[str, str]],
                                                driver: Driver, closed: Case) -> None:
    response = client.get(f'/api/v1/cases/{closed.id}/casefile', headers=api_token('mediator'))
    assert response.status_code == 200 and response.mimetype == 'text/html'
    assert f'卷宗-{closed.number}' in response.headers['Content-Disposition'] or 'filename*' in response.headers[
        'Content-Disposition']
    [event] = _events(driver.session, 'case.file_exported')
    assert event.after['channel'] == 'api' and event.actor_id == driver.user('mediator').id
    assert event.after['sha256'] == hashlib.sha256(response.get_data()).hexdigest()
    assert client.get(f'/api/v1/cases/{closed.id}/casefile').status_code == 401
    operation = client.get('/api/v1/openapi.json').get_json()['paths']['/api/v1/cases/{case_id}/casefile']['get']
    assert 'text/html' in operation['responses']['200']['content']
    assert {'403', '404'} <= set(operation['responses'])


def test_a_minors_file_is_not_shown_to_the_city(client_for: Clients, session: Session,
                                                corrections: Corrections) -> None:
    """社区矫正法 §54: the city's supervisors do not see a minor's case, its file included."""
    minor = corrections.start('corrections_reception', reception_data(id_number=valid_id('43138120100101001')))
    assert minor.is_minor
    assert client_for('ld_chief').get(f'/cases/{minor.id}/casefile').status_code == 404
    refused = [e.after for e in _events(session, 'access.refused')]
    assert refused and refused[-1]['record'] == 'case' and refused[-1]['id'] == minor.id
    assert client_for('lsj_officer').get(f'/cases/{minor.id}/casefile').status_code == 200
