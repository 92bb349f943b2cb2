"""流程设计 in headless Chromium: the real bpmn-js modeler, properties panel, validation report and DMN editor.

A designer adds a user task with a form field and a deadline through the properties panel, deploys, a
case started afterwards runs on the new version while the old one stays on the old; the validation report
selects the element a finding names; every MIWG reference diagram opens in the modeler without a script
error. Needs the bundles built by ``make setup`` (scripts/build-assets.sh).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy.orm import Session

from engine import definitions, drafts, runtime
from engine.access import load_scope
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import DefinitionDraft
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.browser.support import Problems, login, require_bundles
from tests.engine.test_drafts import process_xml
from tests.fixtures.directory import PASSWORD, Org

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
MIWG = ROOT / 'tests' / 'fixtures' / 'miwg'
MIWG_FILES = sorted(MIWG.glob('*.bpmn'))
BPMN = 'http://www.omg.org/spec/BPMN/20100524/MODEL'
CAMUNDA = 'http://camunda.org/schema/1.0/bpmn'


@pytest.fixture(scope='module', autouse=True)
def _bundles_built() -> None:
    require_bundles('modeler.js', 'dmn-editor.js', 'differ.js')


@dataclass
class Designer:
    """A logged-in designer's browser tab, and what its pages reported."""

    context: BrowserContext
    page: Page
    problems: Problems


@pytest.fixture
def people(org: Org, create_member: Callable[..., User]) -> dict[str, User]:
    return {'designer': create_member('designer', 'designer', org.province, display_name='设计员'),
            'staff': create_member('staff', 'township_staff', org.township, display_name='刘晓燕'),
            'officer': create_member('officer', 'county_officer', org.county, display_name='曾志强')}


@pytest.fixture
def designer(watched_page: Callable[..., tuple[Page, Problems]], live_server: str,
             people: dict[str, User]) -> Designer:
    page, problems = watched_page({'width': 1400, 'height': 1000}, accept_downloads=True)
    login(page, live_server, 'designer')
    return Designer(page.context, page, problems)


@pytest.fixture
def old_case(session: Session, org: Org, people: dict[str, User], clock: object) -> ProcessInstance:
    """draft_demo version 1 deployed, and one case on it waiting at 核实情况."""
    definitions.deploy(session, process_xml(), actor=people['designer'])
    case, _ = runtime.start_case(session, 'draft_demo', {}, actor=people['staff'], org_unit=org.township)
    session.commit()
    return case.instances[0]


def _open_group(page: Page, group: str) -> None:
    header = page.locator(f'[data-group-id="group-{group}"] .bio-properties-panel-group-header')
    if 'open' not in (header.get_attribute('class') or ''):
        header.click()


def _panel_input(page: Page, id_suffix: str) -> Locator:
    """An input of a list entry in the panel (a form field, an extension property), its entry opened if closed."""
    found = page.locator(f'[id$="{id_suffix}"]')
    expect(found).to_be_attached()
    if not found.is_visible():
        entry = page.locator('.bio-properties-panel-collapsible-entry', has=found).last
        entry.locator('.bio-properties-panel-collapsible-entry-header').first.click()
    expect(found).to_be_visible()
    return found


def _drop_task_on_flow(page: Page, flow_id: str) -> None:
    """Take a task from the palette and drop it onto the middle of a sequence flow (which it then splits)."""
    box = page.locator(f'.djs-element[data-element-id="{flow_id}"]').bounding_box()
    assert box is not None
    x, y = box['x'] + box['width'] / 2, box['y'] + box['height'] / 2
    page.locator('.djs-palette [data-action="create.task"]').click()
    page.mouse.move(x - 30, y + 20, steps=3)
    page.mouse.move(x, y, steps=5)
    page.mouse.click(x, y)


def _selected(page: Page) -> list[str]:
    return page.locator('.djs-element.selected').evaluate_all('nodes => nodes.map(n => n.dataset.elementId)')


def test_designer_adds_a_user_task_in_the_panel_deploys_and_new_cases_use_it(
        designer: Designer, browser: Browser, live_server: str, session: Session, people: dict[str, User],
        old_case: ProcessInstance, artifacts: Path) -> None:
    page = designer.page
    page.goto(f'{live_server}/designer/definitions/draft_demo')
    page.locator('tr[data-version="1"]').get_by_role('button', name='以此版本新建草稿').click()
    editor = page.locator('[data-modeler]')
    expect(editor).to_have_attribute('data-state', 'ready')

    _drop_task_on_flow(page, 'f2')
    page.keyboard.press('Escape')  # leave the label editor the new task opens with; the panel names it
    page.locator('.djs-context-pad [data-action="replace"]').click()
    page.locator('.djs-popup [data-id="replace-with-user-task"]').click()
    expect(page.locator('.bio-properties-panel-header-type')).to_have_text(re.compile('user task', re.I))

    _open_group(page, 'general')
    page.locator('#bio-properties-panel-id').fill('archive')
    page.locator('#bio-properties-panel-name').fill('归档登记')
    expect(page.locator('.djs-element[data-element-id="archive"] .djs-label')).to_have_text('归档登记')
    _open_group(page, 'CamundaPlatform__UserAssignment')
    page.locator('#bio-properties-panel-candidateGroups').fill('county_officer')
    _open_group(page, 'CamundaPlatform__Form')
    page.locator('#bio-properties-panel-formType').select_option('formData')
    page.locator('[data-group-id="group-CamundaPlatform__FormData"] .bio-properties-panel-add-entry').first.click()
    _panel_input(page, '-formField-0-formFieldID').fill('archive_note')
    _panel_input(page, '-formField-0-formFieldLabel').fill('归档意见')
    _panel_input(page, '-formField-0-formFieldType').select_option('string')
    page.locator('[data-group-id="group-CamundaPlatform__ExtensionProperties"] '
                 '.bio-properties-panel-add-entry').first.click()
    _panel_input(page, '-extensionProperty-0-name').fill('deadline')
    _panel_input(page, '-extensionProperty-0-value').fill('3 working_days')
    _panel_input(page, '-extensionProperty-0-value').press('Tab')

    page.get_by_role('button', name='保存', exact=True).click()
    expect(page.locator('[data-role=status]')).to_have_text('已保存（第 2 次保存）。')
    page.screenshot(path=str(artifacts / 'designer-modeler.png'))
    page.get_by_role('button', name='部署…').click()
    expect(page.locator('.report-summary')).to_have_text('校验通过，没有错误或警告。')
    page.get_by_role('button', name='部署为新版本').click()

    expect(page).to_have_url(f'{live_server}/designer/definitions/draft_demo')
    expect(page.locator('.flashes')).to_contain_text('已部署“草稿演示”第 2 版')
    v2 = session.scalars(sa.select(ProcessDefinition).where(ProcessDefinition.version == 2)).one()
    task = etree.fromstring(v2.source.encode()).find(f'.//{{{BPMN}}}userTask[@id="archive"]')
    assert task is not None and task.get(f'{{{CAMUNDA}}}candidateGroups') == 'county_officer'
    assert task.find(f'.//{{{CAMUNDA}}}formField').get('id') == 'archive_note'
    assert {p.get('name'): p.get('value') for p in task.iter(f'{{{CAMUNDA}}}property')} == {
        'deadline': '3 working_days'}

    # A case started now, through the API as the township's staff (a client of its own: no designer session).
    api = browser.new_context()
    token = api.request.post(f'{live_server}/api/v1/auth/token',
                             data={'username': 'staff', 'password': PASSWORD}).json()['token']
    started = api.request.post(f'{live_server}/api/v1/cases', data={'process_key': 'draft_demo'},
                               headers={'Authorization': f'Bearer {token}'})
    assert started.status == 201, started.text()
    api.close()
    session.expire_all()
    by_version = dict(session.execute(
        sa.select(ProcessDefinition.version, sa.func.count())
        .join(ProcessInstance, ProcessInstance.definition_id == ProcessDefinition.id)
        .group_by(ProcessDefinition.version)).tuples().all())
    assert by_version == {1: 1, 2: 1}
    assert session.get(ProcessInstance, old_case.id).definition.version == 1  # type: ignore[union-attr]

    page.reload()
    rows = page.locator('table.designer-versions tbody tr')
    expect(rows.nth(0).locator('[data-role=unfinished]')).to_have_text('1')
    expect(rows.nth(1).locator('[data-role=unfinished]')).to_have_text('1')
    expect(page.locator('tr[data-version="1"] li[data-step="check"]')).to_have_text('核实情况：1 件')
    expect(page.locator('tr[data-version="2"] li[data-step="check"]')).to_have_text('核实情况：1 件')
    page.screenshot(path=str(artifacts / 'designer-versions.png'), full_page=True)

    # The new case reaches the new task, with its form field and its deadline.
    staff = people['staff']
    new_check = session.scalars(sa.select(HumanTask).join(ProcessInstance).where(
        ProcessInstance.definition_id == v2.id, HumanTask.status == 'open')).one()
    _, [archive] = runtime.complete_task(session, new_check.id, {'note': '已核实'}, actor=staff,
                                         scope=load_scope(session, staff))
    session.commit()
    assert (archive.bpmn_id, archive.title, archive.candidate_group) == ('archive', '归档登记', 'county_officer')
    assert archive.due_dt is not None and archive.due_rule is not None
    bundle = definitions.process_bundle(session, v2)
    assert [f.id for f in bundle.user_tasks['archive'].form.fields] == ['archive_note']
    designer.problems.assert_none(page)


def _draft_page(designer: Designer, live_server: str, draft: DefinitionDraft) -> Page:
    page = designer.page
    page.goto(f'{live_server}/designer/drafts/{draft.id}')
    expect(page.locator('[data-modeler]')).to_have_attribute('data-state', 'ready')
    return page


def test_deploy_refused_with_errors_and_a_finding_selects_its_element(designer: Designer, live_server: str,
                                                                      session: Session,
                                                                      people: dict[str, User]) -> None:
    draft = drafts.create_draft(session, process_xml(deadline=False), actor=people['designer'])
    session.commit()
    page = _draft_page(designer, live_server, draft)
    page.get_by_role('button', name='部署…').click()
    expect(page.locator('.report-summary')).to_have_text('有 1 个错误，不能部署。请修改后重新校验。')
    expect(page.get_by_role('button', name='部署为新版本')).to_have_count(0)
    finding = page.locator('.report-errors .finding-link')
    expect(finding).to_contain_text('核实情况 (check)')
    expect(finding).to_contain_text('user-task-deadline')
    page.locator('.djs-element[data-element-id="start"]').click()
    assert _selected(page) == ['start']
    finding.click()
    assert _selected(page) == ['check']
    expect(page.locator('#bio-properties-panel-name')).to_have_value('核实情况')
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) == 0
    designer.problems.assert_none(page)


def test_warnings_are_deployed_only_once_accepted(designer: Designer, live_server: str, session: Session,
                                                  people: dict[str, User]) -> None:
    draft = drafts.create_draft(session, process_xml(group='no_such_group'), actor=people['designer'])
    session.commit()
    page = _draft_page(designer, live_server, draft)
    page.get_by_role('button', name='校验').click()
    expect(page.locator('.report-summary')).to_contain_text('没有错误，有 1 个警告')
    expect(page.get_by_role('button', name='部署为新版本')).to_have_count(0)  # validating offers no deploy
    page.get_by_role('button', name='部署…').click()
    deploy = page.get_by_role('button', name='部署为新版本')
    expect(deploy).to_be_disabled()
    page.get_by_label('接受警告并部署').check()
    deploy.click()
    expect(page).to_have_url(f'{live_server}/designer/definitions/draft_demo')
    expect(page.locator('section[aria-labelledby="warnings-title"]')).to_contain_text('unknown-group')
    designer.problems.assert_none(page)


def test_a_stale_save_is_refused_and_the_designer_keeps_their_copy(designer: Designer, live_server: str,
                                                                   session: Session,
                                                                   people: dict[str, User]) -> None:
    draft = drafts.create_draft(session, process_xml(), actor=people['designer'])
    session.commit()
    page = _draft_page(designer, live_server, draft)
    drafts.save_draft(session, draft, process_xml(task_name='别人改的'), revision=1, actor=people['officer'])
    session.commit()
    page.locator('.djs-element[data-element-id="check"]').click()
    _open_group(page, 'general')
    page.locator('#bio-properties-panel-name').fill('我改的')
    expect(page.locator('[data-role=status]')).to_have_text('有未保存的修改。')
    page.get_by_role('button', name='保存', exact=True).click()
    expect(page.locator('[data-role=status]')).to_contain_text('草稿已被曾志强在您打开之后保存')
    with page.expect_download() as download:
        page.get_by_role('button', name='导出我的版本').click()
    assert '我改的' in Path(download.value.path()).read_text(encoding='utf-8')
    session.refresh(draft)
    assert '别人改的' in draft.xml and draft.revision == 2


def test_exports_svg_and_png_of_a_version(designer: Designer, live_server: str, session: Session,
                                          old_case: ProcessInstance) -> None:
    page = designer.page
    page.goto(f'{live_server}/designer/versions/{old_case.definition_id}')
    expect(page.locator('[data-version-view]')).to_have_attribute('data-state', 'ready')
    with page.expect_download() as svg:
        page.get_by_role('button', name='导出 SVG').click()
    assert svg.value.suggested_filename == 'draft_demo-v1.svg'
    assert '<svg' in Path(svg.value.path()).read_text(encoding='utf-8')
    with page.expect_download() as png:
        page.get_by_role('button', name='导出 PNG').click()
    assert png.value.suggested_filename == 'draft_demo-v1.png'
    assert Path(png.value.path()).read_bytes().startswith(b'\x89PNG\r\n\x1a\n')
    designer.problems.assert_none(page)


def test_diff_draws_the_changes_on_both_diagrams(designer: Designer, live_server: str, session: Session,
                                                 people: dict[str, User], artifacts: Path) -> None:
    definitions.deploy(session, process_xml(), actor=people['designer'])
    changed = process_xml(task_name='核实并登记').replace('<bpmn:endEvent id="end" name="结束">',
                                                       '<bpmn:endEvent id="end" name="办结">')
    definitions.deploy(session, changed, actor=people['designer'])
    session.commit()
    page = designer.page
    page.goto(f'{live_server}/designer/diff?key=draft_demo')
    diff = page.locator('[data-diff]')
    expect(diff).to_have_attribute('data-state', 'ready')
    expect(page.locator('[data-role=left] .djs-element[data-element-id="check"]')).to_have_class(
        re.compile(r'\bdiff-changed\b'))
    expect(page.locator('[data-role=right] .djs-element[data-element-id="end"]')).to_have_class(
        re.compile(r'\bdiff-changed\b'))
    expect(page.locator('.diff-row[data-element-id="check"]')).to_contain_text('核实并登记')
    expect(page.locator('.diff-row[data-element-id="check"] .diff-details')).to_contain_text(
        'name: 核实情况 → 核实并登记')
    expect(page.locator('[data-role=summary]')).to_have_text('新增 0，删除 0，修改 2，仅位置变化 0。')
    page.screenshot(path=str(artifacts / 'designer-diff.png'), full_page=True)
    designer.problems.assert_none(page)


def test_dmn_draft_opens_in_the_decision_table_editor(designer: Designer, live_server: str, session: Session,
                                                      people: dict[str, User], artifacts: Path) -> None:
    draft = drafts.create_draft(session, (ROOT / 'bpmn/disputes/triage.dmn').read_text(), actor=people['designer'])
    session.commit()
    page = designer.page
    page.goto(f'{live_server}/designer/drafts/{draft.id}')
    editor = page.locator('[data-dmn-editor]')
    expect(editor).to_have_attribute('data-state', 'ready')
    expect(page.locator('.tjs-table')).to_be_visible()
    expect(page.locator('.tjs-table')).to_contain_text('患者死亡')
    page.screenshot(path=str(artifacts / 'designer-dmn.png'))
    page.get_by_role('button', name='保存', exact=True).click()
    expect(page.locator('[data-role=status]')).to_have_text('已保存（第 2 次保存）。')
    session.refresh(draft)
    assert drafts.read_header(draft.xml).key == 'dispute_triage_definitions'
    designer.problems.assert_none(page)


@pytest.mark.parametrize('path', MIWG_FILES, ids=[path.name for path in MIWG_FILES])
def test_each_miwg_reference_diagram_opens_in_the_modeler(designer: Designer, live_server: str, path: Path) -> None:
    page = designer.page
    page.goto(f'{live_server}/designer/drafts')
    page.locator('#draft-file').set_input_files(str(path))
    page.get_by_role('button', name='导入').click()
    expect(page).to_have_url(re.compile(r'/designer/drafts/\d+$'))
    editor = page.locator('[data-modeler]')
    expect(editor).to_have_attribute('data-state', 'ready')
    expect(page.locator('[data-role=canvas] .djs-element').first).to_be_attached()
    page.get_by_role('button', name='校验').click()
    expect(page.locator('.report-summary')).to_be_visible()
    # Whatever the report says, every error names an element or the file: the page never goes blank.
    for finding in page.locator('.report-errors .finding').all():
        expect(finding.locator('.finding-message')).not_to_be_empty()
    designer.problems.assert_none(page)


def test_an_unreadable_diagram_shows_the_reason_instead_of_a_blank_page(designer: Designer, live_server: str,
                                                                        session: Session,
                                                                        people: dict[str, User]) -> None:
    # A process whose diagram points at an element that does not exist: bpmn-js cannot draw that shape.
    broken = process_xml().replace('bpmnElement="check"', 'bpmnElement="nowhere"')
    draft = drafts.create_draft(session, broken, actor=people['designer'])
    session.commit()
    page = designer.page
    page.goto(f'{live_server}/designer/drafts/{draft.id}')
    failure = page.locator('[data-role=failure]')
    expect(failure).to_be_visible()
    expect(failure).to_contain_text('nowhere')


def test_a_diagram_that_cannot_be_drawn_says_why(designer: Designer, live_server: str, session: Session,
                                                 people: dict[str, User]) -> None:
    xml = process_xml()
    no_diagram = xml[:xml.index('<bpmndi:BPMNDiagram')] + '</bpmn:definitions>\n'
    draft = drafts.create_draft(session, no_diagram, actor=people['designer'])
    session.commit()
    page = designer.page
    page.goto(f'{live_server}/designer/drafts/{draft.id}')
    expect(page.locator('[data-modeler]')).to_have_attribute('data-state', 'failed')
    failure = page.locator('[data-role=failure]')
    expect(failure).to_contain_text('无法显示此图')
    expect(failure.locator('li').first).not_to_be_empty()
    expect(page.get_by_role('button', name='部署…')).to_be_disabled()
    designer.problems.assert_none(page)
