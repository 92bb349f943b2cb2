"""Every page works under the CSP (no inline style or script) and labels every input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from engine.models.cases import Case
from engine.models.tasks import HumanTask
from tests.web.conftest import page

PAGES = ['/tasks', '/tasks?view=group', '/tasks?view=escalated', '/tasks/{task}', '/cases', '/cases/{case}',
         '/cases/new', '/cases/new/demo_intake', '/cases/999', '/notifications']


@pytest.mark.parametrize('path', PAGES)
def test_pages_have_no_inline_code_and_label_every_input(client_for: Callable[[str], FlaskClient],
                                                         demo_case: tuple[Case, HumanTask], path: str) -> None:
    case, task = demo_case
    response = client_for('staff').get(path.format(case=case.id, task=task.id))
    assert "default-src 'self'" in response.headers['Content-Security-Policy']
    body = response.get_data(as_text=True)
    assert ' style=' not in body and '<style' not in body
    doc = page(response)
    # scripts only as static files (progressive enhancement), never inline
    assert all(src.startswith('/static/') for src in doc.xpath('//script/@src'))
    assert doc.xpath('//script[not(@src)]') == []
    assert set(doc.xpath('//link[@rel="stylesheet"]/@href')) <= {
        '/static/css/app.css', '/static/dist/diagram-js.css', '/static/dist/bpmn-js.css'}
    for element in doc.xpath('//input[not(@type="hidden")] | //select | //textarea'):
        labelled = doc.xpath(f'//label[@for="{element.get("id")}"]') or element.xpath('ancestor::label')
        assert labelled, f'unlabelled {element.get("name")} on {path}'


def test_login_page_has_no_inline_code(client: FlaskClient) -> None:
    body = client.get('/login').get_data(as_text=True)
    assert '<script' not in body and ' style=' not in body


def test_stylesheet_is_served(client: FlaskClient) -> None:
    response = client.get('/static/css/app.css')
    assert response.status_code == 200 and b'--blue' in response.data
