"""Every page works under the CSP (no inline style or script) and labels every input."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from engine.models.cases import Case
from engine.models.tasks import HumanTask
from tests.web.conftest import page
from web.core.pages import id_urls

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


@pytest.mark.parametrize('base_url', ['http://localhost/', 'http://localhost/fengqiao/'])
def test_id_urls_are_the_routed_urls(app: Flask, base_url: str) -> None:
    with app.test_request_context(base_url=base_url):
        task_url = id_urls('tasks.claim_task', 'task_id')
        assert [task_url(i) for i in (1, 42, 10**12)] == [url_for('tasks.claim_task', task_id=i)
                                                           for i in (1, 42, 10**12)]
        assert task_url(42).endswith('/tasks/42/claim')


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The cyclic collector off: what a request leaves in reference cycles stays until the test collects it."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_rendered_template_frees_its_context(app: Flask, no_collector: None) -> None:
    class Row:
        pass

    row = Row()
    alive = weakref.ref(row)
    # the macro reads ``row`` from the context: it closes over the context, which holds the macro
    template = app.jinja_env.from_string('{% macro cell() %}<td>{{ row.__class__.__name__ }}</td>{% endmacro %}'
                                         '{{ cell() }}')
    with app.test_request_context():
        assert template.render(row=row) == '<td>Row</td>'
    del row
    assert alive() is None


def test_to_do_page_leaves_its_tasks_to_reference_counting(client_for: Callable[[str], FlaskClient],
                                                         demo_case: tuple[Case, HumanTask], no_collector: None) -> None:
    client = client_for('staff')
    assert 'row-select' in client.get('/tasks?view=all').get_data(as_text=True)
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, HumanTask | Case)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


def test_login_page_has_no_inline_code(client: FlaskClient) -> None:
    body = client.get('/login').get_data(as_text=True)
    assert '<script' not in body and ' style=' not in body


def test_stylesheet_is_served(client: FlaskClient) -> None:
    response = client.get('/static/css/app.css')
    assert response.status_code == 200 and b'--blue' in response.data
