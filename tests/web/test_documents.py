"""Documents (文书): listed on the case page, shown as issued with a print stylesheet, reachable only in the subtree."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import runtime
from engine.models.cases import Case, Document
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import START, page, text_of
from workflows.shared.documents import generate_document

Clients = Callable[[str], FlaskClient]


@pytest.fixture
def summary(session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> Document:
    """A 案件情况摘要 generated for the demo case, with markup in its data that must stay text."""
    case, _ = demo_case
    document = generate_document(session, case, None, 'shared/case_summary', '案件情况摘要',
                                 {'findings': '走访属实<script>alert(1)</script>'}, actor=people['staff'])
    session.commit()
    return document


def _url(document: Document, case_id: int | None = None) -> str:
    return f'/cases/{case_id or document.case_id}/documents/{document.id}'


def test_case_page_lists_the_documents(client_for: Clients, summary: Document) -> None:
    doc = page(client_for('staff').get(f'/cases/{summary.case_id}'))
    [row] = doc.xpath('//table[@aria-labelledby="documents-title"]/tbody/tr')
    cells = [text_of(td) for td in row.xpath('td')]
    assert cells[0] == '案件情况摘要' and cells[1] == summary.number and cells[2].endswith('日')
    assert row.xpath('.//a/@href') == [_url(summary)]


def test_case_without_documents_says_so(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    assert '暂无文书。' in text_of(page(client_for('staff').get(f'/cases/{case.id}')))


def test_document_page_shows_the_stored_html_with_print_support(client_for: Clients, summary: Document,
                                                                org: Org) -> None:
    response = client_for('staff').get(_url(summary))
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    doc = page(response)
    sheet = doc.xpath('//div[@class="sheet"]')[0]
    assert sheet.xpath('./article[@class="document"]')
    assert text_of(sheet.xpath('.//h1[@class="document-title"]')[0]) == '案件情况摘要'
    assert text_of(sheet.xpath('.//p[@class="document-number"]')[0]) == summary.number
    assert text_of(sheet.xpath('.//p[@class="document-issuer"]')[0]) == org.township.name
    assert sheet.xpath('.//p[@class="document-date"]')
    # escaped when generated, shown as issued: the markup in the data is text, never a script
    assert '走访属实<script>alert(1)</script>' in text_of(sheet)
    assert '<script>alert' not in body and '&lt;script&gt;alert(1)&lt;/script&gt;' in body
    assert doc.xpath('//link[@rel="stylesheet"]/@href') == ['/static/css/app.css', '/static/css/print.css']
    assert doc.xpath('//script/@src') == ['/static/js/print.js']
    assert all(script.text is None or not script.text.strip() for script in doc.xpath('//script'))
    assert ' style=' not in body and '<style' not in body
    assert doc.xpath('//button[@data-print]/text()') == ['打印']


def test_print_assets_are_served(client: FlaskClient) -> None:
    css = client.get('/static/css/print.css').get_data(as_text=True)
    assert '@media print' in css and '@page' in css and 'size: A4' in css
    for selector in ('.document-title', '.document-number', '.document-fields', '.document-foot',
                     '.document-seal', '.document-date', '.document-head', '.document-body'):
        assert selector in css, selector
    assert 'FangSong' in css and 'SimSun' in css
    assert 'window.print()' in client.get('/static/js/print.js').get_data(as_text=True)


def test_documents_outside_the_subtree_are_404(client_for: Clients, summary: Document) -> None:
    assert client_for('outsider').get(_url(summary)).status_code == 404
    assert client_for('officer').get(_url(summary)).status_code == 200  # the county sees its townships' cases


def test_a_document_of_another_case_is_404(client_for: Clients, session: Session, summary: Document, org: Org,
                                           people: dict[str, User]) -> None:
    other, _ = runtime.start_case(session, 'demo_intake', {**START, 'person_name': '李某某'},
                                  actor=people['staff'], org_unit=org.township)
    session.commit()
    staff = client_for('staff')
    assert staff.get(_url(summary, case_id=other.id)).status_code == 404
    assert staff.get(f'/cases/{summary.case_id}/documents/999').status_code == 404
    assert staff.get(f'/cases/999/documents/{summary.id}').status_code == 404


def test_document_page_in_english_keeps_the_document_chinese(client_for: Clients, summary: Document) -> None:
    staff = client_for('staff')
    doc = page(staff.get(f'{_url(summary)}?lang=en'))
    assert doc.xpath('//button[@data-print]/text()') == ['Print']
    assert doc.xpath('//article/@lang') == ['zh-CN']
