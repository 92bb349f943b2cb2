"""批量导入 pages: upload, dry run, import, a batch's progress; CSRF, roles and org-unit scoping."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import set_clock
from engine.models.cases import Case
from engine.models.imports import ImportBatch, ImportRow
from engine.worker import Worker
from tests.engine.import_support import FEMALE_ID, World, build_world, csv_file, frozen_clock, offender
from tests.fixtures.web import csrf_token

Login = Callable[[str], FlaskClient]


@pytest.fixture
def world(app: Any, session: Session, create_member: Any) -> Iterator[World]:
    previous = set_clock(frozen_clock())
    try:
        yield build_world(session, create_member)
    finally:
        set_clock(previous)


def _upload(client: FlaskClient, path: str, content: bytes, *, kind: str = 'offenders',
            token: str | None = None) -> Any:
    data = {'kind': kind, 'file': (io.BytesIO(content), 'rows.csv')}
    if token is not None:
        data['csrf_token'] = token
    return client.post(path, data=data, content_type='multipart/form-data')


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, name
    return found.group(1)


def _count(session: Session, model: Any) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_the_page_offers_the_templates_and_the_stages(world: World, login: Login) -> None:
    client = login('officer')
    page = client.get('/cases/import/').get_data(as_text=True)
    assert '批量导入案件' in page and '矫正执行' in page and '调解' in page
    template = client.get('/cases/import/templates/offenders.csv')
    assert template.status_code == 200 and template.data.startswith('\ufeff姓名,'.encode())
    xlsx = client.get('/cases/import/templates/disputes.xlsx')
    assert xlsx.status_code == 200 and xlsx.data.startswith(b'PK')
    assert client.get('/cases/import/templates/nothing.csv').status_code == 404


def test_roles_without_case_work_may_not_import(world: World, login: Login) -> None:
    assert login('designer').get('/cases/import/').status_code == 403


def test_the_dry_run_shows_each_rows_problems_and_writes_nothing(world: World, login: Login,
                                                                 session: Session) -> None:
    client = login('officer')
    content = csv_file('offenders', [offender(), offender(**{'机构代码': '430181'})])
    response = _upload(client, '/cases/import/check', content, token=csrf_token(client, '/cases/import/'))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '共 2 行，1 行有问题' in page and '机构代码“430181”不存在，或不在您的管辖范围内。' in page
    assert 'name="content"' not in page  # nothing to confirm while a row has a problem
    assert _count(session, ImportBatch) == 0 and _count(session, Case) == 0


def test_a_bad_file_answers_400_with_its_message(world: World, login: Login) -> None:
    client = login('officer')
    response = _upload(client, '/cases/import/check', '甲,乙\r\n1,2\r\n'.encode(),
                       token=csrf_token(client, '/cases/import/'))
    assert response.status_code == 400 and '缺少必需的列' in response.get_data(as_text=True)


def test_posts_without_csrf_are_refused(world: World, login: Login, session: Session) -> None:
    client = login('officer')
    content = csv_file('offenders', [offender()])
    assert _upload(client, '/cases/import/check', content).status_code == 400
    assert _upload(client, '/cases/import/', content).status_code == 400
    assert _count(session, ImportBatch) == 0


def test_import_then_progress_and_results(world: World, login: Login, session: Session,
                                          session_factory: sessionmaker[Session]) -> None:
    client = login('officer')
    content = csv_file('offenders', [offender(), offender(**{'公民身份号码': FEMALE_ID, '姓名': '张某',
                                                             '当前阶段': '交付接收'})])
    checked = _upload(client, '/cases/import/check', content, token=csrf_token(client, '/cases/import/'))
    page = checked.get_data(as_text=True)
    form = {name: _hidden(page, name) for name in ('csrf_token', 'form_nonce', 'kind', 'filename', 'content')}
    started = client.post('/cases/import/', data=form)
    assert started.status_code == 302
    again = client.post('/cases/import/', data=form)  # a double click: the same batch, not a second one
    assert again.status_code == 302 and again.headers['Location'] == started.headers['Location']
    assert _count(session, ImportBatch) == 1 and _count(session, Case) == 0
    batch_page = client.get(started.headers['Location']).get_data(as_text=True)
    assert 'data-import-progress-url' in batch_page and '<progress' in batch_page and '待导入' in batch_page
    worker = Worker(session_factory, name='web-import', batch_size=100, clock=frozen_clock())
    while worker.run_once():
        pass
    progress = client.get(started.headers['Location'] + '/progress').get_json()
    assert progress['done'] is True and progress['imported'] == 2 and progress['pending'] == 0
    assert {row['status'] for row in progress['rows']} == {'imported'}
    assert all(row['case_url'].startswith('/cases/') for row in progress['rows'])
    assert _count(session, Case) == 2


def test_a_batch_is_not_found_for_others_and_its_rows_are_scoped(world: World, login: Login, session: Session,
                                                                 app: Any) -> None:
    client = login('officer')
    content = csv_file('offenders', [offender()])
    checked = _upload(client, '/cases/import/check', content, token=csrf_token(client, '/cases/import/'))
    page = checked.get_data(as_text=True)
    form = {name: _hidden(page, name) for name in ('csrf_token', 'form_nonce', 'kind', 'filename', 'content')}
    location = client.post('/cases/import/', data=form).headers['Location']
    client.post('/logout', data={'csrf_token': csrf_token(client, '/cases/import/')})
    other = login('other_officer')
    assert other.get(location).status_code == 404
    assert other.get(location + '/progress').status_code == 404
    other.post('/logout', data={'csrf_token': csrf_token(other, '/cases/import/')})
    chief = login('chief')  # the supervisor of the importer's county sees it
    assert chief.get(location).status_code == 200
    row = session.scalars(sa.select(ImportRow)).one()
    assert row.org_path == world.township.path
