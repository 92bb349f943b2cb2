"""流程设计 pages (web/designer) through the Flask test client: definitions and versions, drafts CRUD,
optimistic locking (409), CSRF, validation and deployment (errors refused, warnings accepted), exports,
diffs, and 403 for everyone but designers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import definitions, drafts
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import AcceptedWarning, DefinitionDraft
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.engine.test_drafts import process_xml
from tests.fixtures.web import csrf_token
from tests.web.conftest import page, post_form, text_of

Clients = Callable[[str], FlaskClient]
ROOT = Path(__file__).resolve().parents[2]
MIWG = ROOT / 'tests' / 'fixtures' / 'miwg'
DRAFTS = '/designer/drafts'


@pytest.fixture
def designer_client(client_for: Clients, people: dict[str, User]) -> FlaskClient:
    return client_for('designer')


@pytest.fixture
def draft(session: Session, people: dict[str, User]) -> DefinitionDraft:
    """A clean draft of ``draft_demo`` at revision 1."""
    made = drafts.create_draft(session, process_xml(), actor=people['designer'])
    session.commit()
    return made


def _json(client: FlaskClient, path: str, body: dict[str, Any], *, token: bool = True) -> Any:
    headers = {'X-CSRFToken': csrf_token(client, DRAFTS)} if token else {}
    return client.post(path, json=body, headers=headers)


def _count(session: Session, model: type) -> int:
    session.expire_all()
    return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


# -- access --------------------------------------------------------------------------------------------

PAGES = ['/designer/', DRAFTS, '/designer/definitions/demo_intake', '/designer/drafts/{draft}',
         '/designer/drafts/{draft}/data', '/designer/drafts/{draft}/source', '/designer/versions/{version}',
         '/designer/versions/{version}/source', '/designer/diff?key=demo_intake']


@pytest.mark.parametrize('path', PAGES)
def test_pages_are_for_designers_only(client_for: Clients, demo_case: tuple[Case, HumanTask],
                                      draft: DefinitionDraft, session: Session, path: str) -> None:
    version = session.scalars(sa.select(ProcessDefinition.id)).first()
    url = path.format(draft=draft.id, version=version)
    for username in ('staff', 'officer'):
        assert client_for(username).get(url).status_code == 403
    assert client_for('designer').get(url).status_code == 200


@pytest.mark.parametrize('action', ['save', 'validate', 'deploy'])
def test_editor_calls_are_for_designers_only(client_for: Clients, draft: DefinitionDraft, session: Session,
                                             action: str) -> None:
    staff = client_for('staff')
    response = staff.post(f'/designer/drafts/{draft.id}/{action}', json={'revision': 1, 'xml': process_xml('x')},
                          headers={'X-CSRFToken': csrf_token(staff, '/tasks')})
    assert response.status_code == 403 and response.get_json()['error'] == 'forbidden'
    session.refresh(draft)
    assert draft.revision == 1 and _count(session, ProcessDefinition) == 0


def test_form_posts_are_for_designers_only(client_for: Clients, draft: DefinitionDraft, session: Session) -> None:
    staff = client_for('staff')
    assert post_form(staff, DRAFTS, {'kind': 'bpmn', 'key': 'x_key', 'name': '某流程'}).status_code == 403
    assert post_form(staff, f'/designer/drafts/{draft.id}/delete', {}).status_code == 403
    assert _count(session, DefinitionDraft) == 1


def test_anonymous_callers_log_in_first(client: FlaskClient, draft: DefinitionDraft) -> None:
    assert client.get('/designer/').status_code == 302
    assert client.get(f'/designer/drafts/{draft.id}/data').status_code == 401


def test_nav_shows_the_designer_entry_to_designers_only(client_for: Clients, people: dict[str, User]) -> None:
    nav = page(client_for('designer').get('/designer/')).xpath('//nav[@class="main-nav"]/a/text()')
    assert '流程设计' in nav
    assert '流程设计' not in page(client_for('staff').get('/tasks')).xpath('//nav[@class="main-nav"]/a/text()')


def test_unknown_records_are_404(designer_client: FlaskClient) -> None:
    assert designer_client.get('/designer/drafts/999').status_code == 404
    assert designer_client.get('/designer/drafts/999/data').get_json()['error'] == 'not_found'
    assert designer_client.get('/designer/versions/999/source').status_code == 404
    assert designer_client.get('/designer/definitions/no_such_key').status_code == 404


# -- definitions and versions ------------------------------------------------------------------------

def test_definitions_list_shows_versions_deployers_and_where_instances_wait(
        designer_client: FlaskClient, demo_case: tuple[Case, HumanTask], session: Session,
        people: dict[str, User]) -> None:
    definitions.deploy(session, (ROOT / 'tests/fixtures/bpmn/demo_intake.bpmn').read_text().replace(
        '登记案件情况', '登记案件基本情况'), actor=people['designer'], accept_warnings=True)
    session.commit()
    doc = page(designer_client.get('/designer/'))
    section = doc.xpath('//section[@data-key="demo_intake"]')[0]
    rows = {row.get('data-version'): row for row in section.xpath('.//tbody/tr')}
    assert set(rows) == {'1', '2'}
    assert '设计员' in text_of(rows['2']) and '系统' in text_of(rows['1'])
    assert rows['1'].xpath('.//td[@data-role="unfinished"]/text()') == ['1']
    assert text_of(rows['1'].xpath('.//li[@data-step="register"]')[0]) == '登记案件情况：1 件'
    assert rows['2'].xpath('.//td[@data-role="unfinished"]/text()') == ['0']


def test_version_page_offers_a_draft_and_the_exports(designer_client: FlaskClient, session: Session,
                                                    demo_case: tuple[Case, HumanTask]) -> None:
    version = session.scalars(sa.select(ProcessDefinition)).one()
    doc = page(designer_client.get(f'/designer/versions/{version.id}'))
    viewer = doc.xpath('//*[@data-version-view]')[0]
    assert viewer.get('data-xml-url') == f'/designer/versions/{version.id}/source'
    assert doc.xpath('//button[@data-action="export-png"]') and doc.xpath('//button[@data-action="export-svg"]')


def test_export_bpmn_sends_the_stored_source_as_a_download(designer_client: FlaskClient, session: Session,
                                                           demo_case: tuple[Case, HumanTask]) -> None:
    version = session.scalars(sa.select(ProcessDefinition)).one()
    response = designer_client.get(f'/designer/versions/{version.id}/source')
    assert response.status_code == 200
    assert response.headers['Content-Disposition'] == 'attachment; filename=demo_intake-v1.bpmn'
    assert response.mimetype == 'application/bpmn+xml'
    assert response.get_data(as_text=True) == version.source


def test_export_of_a_draft_is_its_last_saved_xml(designer_client: FlaskClient, draft: DefinitionDraft) -> None:
    response = designer_client.get(f'/designer/drafts/{draft.id}/source')
    assert response.headers['Content-Disposition'] == 'attachment; filename=draft_demo-draft.bpmn'
    assert response.get_data(as_text=True) == draft.xml


def test_diff_page_compares_the_two_newest_versions_by_default(designer_client: FlaskClient, session: Session,
                                                              people: dict[str, User]) -> None:
    designer = people['designer']
    first, _ = definitions.deploy(session, process_xml(), actor=designer)
    second, _ = definitions.deploy(session, process_xml(task_name='复核'), actor=designer)
    third, _ = definitions.deploy(session, process_xml(task_name='再复核'), actor=designer)
    session.commit()
    diff = page(designer_client.get('/designer/diff?key=draft_demo')).xpath('//*[@data-diff]')[0]
    assert (diff.get('data-left-url'), diff.get('data-right-url')) == (
        f'/designer/versions/{second.id}/source', f'/designer/versions/{third.id}/source')
    chosen = page(designer_client.get(f'/designer/diff?key=draft_demo&left={first.id}&right={third.id}'))
    assert chosen.xpath('//*[@data-diff]/@data-left-url') == [f'/designer/versions/{first.id}/source']


def test_diff_of_a_decision_table_is_not_offered(designer_client: FlaskClient, session: Session) -> None:
    definitions.deploy(session, (ROOT / 'bpmn/disputes/triage.dmn').read_bytes(), actor=None, accept_warnings=True)
    session.commit()
    assert designer_client.get('/designer/diff?key=dispute_triage_definitions').status_code == 404


# -- drafts -----------------------------------------------------------------------------------------------

def test_new_blank_draft_opens_in_the_modeler(designer_client: FlaskClient, session: Session) -> None:
    response = post_form(designer_client, DRAFTS, {'kind': 'bpmn', 'key': 'new_process', 'name': '新流程'},
                         token_from=DRAFTS)
    assert response.status_code == 302
    created = session.scalars(sa.select(DefinitionDraft)).one()
    assert response.headers['Location'] == f'/designer/drafts/{created.id}'
    editor = page(designer_client.get(f'/designer/drafts/{created.id}')).xpath('//*[@data-modeler]')[0]
    assert editor.get('data-save-url') == f'/designer/drafts/{created.id}/save'
    assert editor.get('data-csrf-token')


def test_new_dmn_draft_opens_in_the_decision_table_editor(designer_client: FlaskClient, session: Session) -> None:
    post_form(designer_client, DRAFTS, {'kind': 'dmn', 'key': 'risk_rules', 'name': '风险规则'}, token_from=DRAFTS)
    created = session.scalars(sa.select(DefinitionDraft)).one()
    assert page(designer_client.get(f'/designer/drafts/{created.id}')).xpath('//*[@data-dmn-editor]')


def test_bad_new_draft_form_shows_the_errors_and_stores_nothing(designer_client: FlaskClient,
                                                               session: Session) -> None:
    response = post_form(designer_client, DRAFTS, {'kind': 'bpmn', 'key': '9 bad', 'name': ''}, token_from=DRAFTS)
    assert response.status_code == 400
    doc = page(response)
    errors = [text_of(e) for e in doc.xpath('//p[@class="field-error"]')]
    assert any('流程标识须以字母或下划线开头' in e for e in errors) and any('请填写名称' in e for e in errors)
    assert doc.xpath('//input[@name="key"]/@value') == ['9 bad']
    assert _count(session, DefinitionDraft) == 0


def test_import_of_a_miwg_file_makes_a_draft(designer_client: FlaskClient, session: Session) -> None:
    path = MIWG / 'A.2.0.bpmn'
    response = designer_client.post('/designer/drafts/import', data={
        'csrf_token': csrf_token(designer_client, DRAFTS), 'file': (path.open('rb'), path.name)},
        content_type='multipart/form-data')
    assert response.status_code == 302
    created = session.scalars(sa.select(DefinitionDraft)).one()
    # The file declares ISO-8859-1: the draft holds the same document as UTF-8.
    assert created.filename == 'A.2.0.bpmn' and created.xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert (created.key, created.kind) == (drafts.read_header(path.read_bytes()).key, 'bpmn')


def test_import_of_a_wrong_file_says_why_on_the_page(designer_client: FlaskClient, session: Session) -> None:
    response = designer_client.post('/designer/drafts/import', data={
        'csrf_token': csrf_token(designer_client, DRAFTS), 'file': (ROOT.joinpath('README.md').open('rb'), 'x.bpmn')},
        content_type='multipart/form-data')
    assert response.status_code == 400
    assert '不是有效的 XML 文件' in text_of(page(response).xpath('//p[@id="draft-file-error"]')[0])
    assert _count(session, DefinitionDraft) == 0


def test_draft_from_a_version(designer_client: FlaskClient, session: Session,
                              demo_case: tuple[Case, HumanTask]) -> None:
    version = session.scalars(sa.select(ProcessDefinition)).one()
    response = post_form(designer_client, f'/designer/versions/{version.id}/draft', {}, token_from=DRAFTS)
    created = session.scalars(sa.select(DefinitionDraft)).one()
    assert response.headers['Location'] == f'/designer/drafts/{created.id}'
    assert created.based_on_id == version.id and created.xml == version.source
    listing = page(designer_client.get(DRAFTS))
    assert '第 1 版' in text_of(listing.xpath(f'//tr[@data-draft="{created.id}"]')[0])


def test_draft_data_gives_the_xml_and_revision(designer_client: FlaskClient, draft: DefinitionDraft) -> None:
    data = designer_client.get(f'/designer/drafts/{draft.id}/data').get_json()
    assert data == {'id': draft.id, 'key': 'draft_demo', 'kind': 'bpmn', 'name': '草稿演示', 'xml': draft.xml,
                    'revision': 1}


def test_save_returns_the_new_revision(designer_client: FlaskClient, draft: DefinitionDraft,
                                       session: Session) -> None:
    response = _json(designer_client, f'/designer/drafts/{draft.id}/save',
                     {'xml': process_xml('renamed_key', name='新名称'), 'revision': 1})
    assert response.status_code == 200
    assert response.get_json() == {'id': draft.id, 'key': 'renamed_key', 'name': '新名称', 'revision': 2}
    session.refresh(draft)
    assert draft.key == 'renamed_key'


def test_save_over_someone_elses_save_is_409_and_changes_nothing(client_for: Clients, draft: DefinitionDraft,
                                                                session: Session, create_member: Any,
                                                                org: Any) -> None:
    create_member('designer2', 'designer', org.province, display_name='第二设计员')
    first, second = client_for('designer'), client_for('designer2')
    assert _json(second, f'/designer/drafts/{draft.id}/save',
                 {'xml': process_xml(task_name='第二人的修改'), 'revision': 1}).status_code == 200
    response = _json(first, f'/designer/drafts/{draft.id}/save',
                     {'xml': process_xml(task_name='第一人的修改'), 'revision': 1})
    assert response.status_code == 409
    body = response.get_json()
    assert body['error'] == 'conflict' and '第二设计员' in body['message']
    session.refresh(draft)
    assert '第二人的修改' in draft.xml and draft.revision == 2


def test_save_of_junk_is_400_with_the_reason(designer_client: FlaskClient, draft: DefinitionDraft,
                                             session: Session) -> None:
    response = _json(designer_client, f'/designer/drafts/{draft.id}/save', {'xml': '<nope', 'revision': 1})
    assert response.status_code == 400
    assert '不是有效的 XML 文件' in response.get_json()['fields']['xml'][0]
    response = _json(designer_client, f'/designer/drafts/{draft.id}/save', {'xml': process_xml()})
    assert response.status_code == 400 and 'revision' in response.get_json()['fields']
    session.refresh(draft)
    assert draft.revision == 1


@pytest.mark.parametrize('action', ['save', 'validate', 'deploy'])
def test_editor_calls_need_the_csrf_header(designer_client: FlaskClient, draft: DefinitionDraft, session: Session,
                                           action: str) -> None:
    response = _json(designer_client, f'/designer/drafts/{draft.id}/{action}',
                     {'xml': process_xml(task_name='未授权'), 'revision': 1, 'accept_warnings': True}, token=False)
    assert response.status_code == 400
    session.refresh(draft)
    assert draft.revision == 1 and _count(session, ProcessDefinition) == 0


def test_delete_needs_the_csrf_token(designer_client: FlaskClient, draft: DefinitionDraft,
                                     session: Session) -> None:
    assert designer_client.post(f'/designer/drafts/{draft.id}/delete').status_code == 400
    assert _count(session, DefinitionDraft) == 1
    response = post_form(designer_client, f'/designer/drafts/{draft.id}/delete', {}, token_from=DRAFTS)
    assert response.status_code == 302 and _count(session, DefinitionDraft) == 0


# -- validation and deployment ----------------------------------------------------------------------

def _broken_draft(session: Session, people: dict[str, User], **kwargs: Any) -> DefinitionDraft:
    made = drafts.create_draft(session, process_xml(**kwargs), actor=people['designer'])
    session.commit()
    return made


def test_validate_gives_the_report_without_deploying(designer_client: FlaskClient, session: Session,
                                                     people: dict[str, User]) -> None:
    broken = _broken_draft(session, people, deadline=False)
    response = _json(designer_client, f'/designer/drafts/{broken.id}/validate', {'revision': 1})
    assert response.status_code == 200
    body = response.get_json()
    assert body['valid'] is False
    [error] = body['report']['errors']
    assert (error['rule'], error['element_id'], error['element_name']) == ('user-task-deadline', 'check', '核实情况')
    assert _count(session, ProcessDefinition) == 0


def test_validate_of_a_stale_revision_is_409(designer_client: FlaskClient, draft: DefinitionDraft) -> None:
    assert _json(designer_client, f'/designer/drafts/{draft.id}/validate', {'revision': 7}).status_code == 409


def test_deploy_refused_with_errors_shows_the_report_and_stores_nothing(designer_client: FlaskClient,
                                                                        session: Session,
                                                                        people: dict[str, User]) -> None:
    broken = _broken_draft(session, people, deadline=False)
    response = _json(designer_client, f'/designer/drafts/{broken.id}/deploy',
                     {'revision': 1, 'accept_warnings': True})
    assert response.status_code == 400
    body = response.get_json()
    assert body['error'] == 'invalid_definition'
    assert [e['rule'] for e in body['report']['errors']] == ['user-task-deadline']
    assert _count(session, ProcessDefinition) == 0 and _count(session, DefinitionDraft) == 1


def test_deploy_with_warnings_not_accepted_is_refused(designer_client: FlaskClient, session: Session,
                                                      people: dict[str, User]) -> None:
    warned = _broken_draft(session, people, group='no_such_group')
    response = _json(designer_client, f'/designer/drafts/{warned.id}/deploy', {'revision': 1})
    assert response.status_code == 409
    body = response.get_json()
    assert body['error'] == 'warnings_not_accepted' and body['report']['errors'] == []
    assert [w['rule'] for w in body['report']['warnings']] == ['unknown-group']
    assert _count(session, ProcessDefinition) == 0


def test_deploy_with_accepted_warnings_makes_the_version(designer_client: FlaskClient, session: Session,
                                                         people: dict[str, User]) -> None:
    warned = _broken_draft(session, people, group='no_such_group')
    response = _json(designer_client, f'/designer/drafts/{warned.id}/deploy',
                     {'revision': 1, 'accept_warnings': True})
    assert response.status_code == 201
    body = response.get_json()
    version = session.scalars(sa.select(ProcessDefinition)).one()
    assert body == {'id': version.id, 'key': 'draft_demo', 'version': 1, 'created': True, 'accepted_warnings': 1,
                    'url': '/designer/definitions/draft_demo'}
    assert version.deployed_by_id == people['designer'].id and _count(session, DefinitionDraft) == 0
    assert _count(session, AcceptedWarning) == 1
    doc = page(designer_client.get(body['url']))
    assert '已部署“草稿演示”第 1 版' in text_of(doc.xpath('//div[@class="flashes"]')[0])
    assert 'unknown-group' in text_of(doc.xpath('//section[@aria-labelledby="warnings-title"]')[0])


def test_definition_page_links_to_migrations_only_when_that_area_exists(designer_client: FlaskClient,
                                                                         session: Session,
                                                                         demo_case: tuple[Case, HumanTask]) -> None:
    from flask import current_app

    doc = page(designer_client.get('/designer/definitions/demo_intake'))
    links = doc.xpath('//a[text()="迁移在办实例"]/@href')
    with designer_client.application.app_context():
        exists = 'migrations.new_migration' in current_app.view_functions
    assert bool(links) == exists
