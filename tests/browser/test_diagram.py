"""The process diagram on a task page, drawn by bpmn-js under the app's strict CSP, in headless Chromium.

Needs the bundle built by ``make setup`` (scripts/build-assets.sh): without it every test here fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, ViewportSize, expect
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.directory import get_group
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.browser.support import DESKTOP, Problems, login, require_bundles
from tests.fixtures.directory import Org

pytestmark = pytest.mark.browser
TABLET: ViewportSize = {'width': 800, 'height': 1180}


@pytest.fixture(scope='module', autouse=True)
def _bundle_built() -> None:
    require_bundles('diagram.js')


@pytest.fixture
def review(session: Session, org: Org, create_member: Callable[..., User],
           deploy_file: Callable[[str], object]) -> HumanTask:
    """A demo case the county sent back once: registered twice, now waiting at 审核登记情况 again."""
    get_group(session, 'township_staff', '司法所工作人员')
    get_group(session, 'county_officer', '县级社区矫正机构')
    session.commit()
    staff = create_member('tj_staff', 'township_staff', org.township, display_name='周敏')
    officer = create_member('tj_officer', 'county_officer', org.county, display_name='李强')
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    _, [register] = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-10-10'},
                                       actor=staff, org_unit=org.township)
    register_data = {'visit_count': '2', 'risk_level': 'medium', 'findings': '已走访社区及家属，情况属实。'}
    _, [first] = runtime.complete_task(session, register.id, register_data, actor=staff,
                                       scope=load_scope(session, staff))
    _, [again] = runtime.complete_task(session, first.id, {'approved': 'false', 'review_opinion': '请补充走访记录'},
                                       actor=officer, scope=load_scope(session, officer))
    _, [task] = runtime.complete_task(session, again.id, register_data, actor=staff,
                                      scope=load_scope(session, staff))
    session.commit()
    return task


@pytest.fixture
def officer_page(watched_page: Callable[..., tuple[Page, Problems]], live_server: str, review: HumanTask,
                 request: pytest.FixtureRequest) -> tuple[Page, Problems]:
    page, problems = watched_page(getattr(request, 'param', DESKTOP))
    login(page, live_server, 'tj_officer')
    problems.clear()  # only what the page under test reports counts
    return page, problems


def _element(page: Page, bpmn_id: str) -> Locator:
    return page.locator(f'.diagram .djs-element[data-element-id="{bpmn_id}"]')


@pytest.mark.parametrize('officer_page', [DESKTOP, TABLET], ids=['desktop', 'tablet'], indirect=True)
def test_task_page_marks_done_and_current_steps(officer_page: tuple[Page, Problems], live_server: str,
                                                review: HumanTask, artifacts: Path) -> None:
    page, problems = officer_page
    response = page.goto(f'{live_server}/tasks/{review.id}')
    assert response is not None and "default-src 'self'" in response.headers['content-security-policy']
    expect(page.locator('.diagram.diagram-ready svg').first).to_be_visible()
    expect(_element(page, 'review')).to_have_class(re.compile(r'\bdiagram-active\b'))
    for done in ('start', 'register'):
        expect(_element(page, done)).to_have_class(re.compile(r'\bdiagram-done\b'))
    for flow in ('flow_register_review', 'flow_rejected'):
        expect(_element(page, flow)).to_have_class(re.compile(r'\bdiagram-flow\b'))
    # Sent back once: 登记案件情况 was done twice, and says so.
    expect(page.locator('.diagram .djs-overlays[data-container-id="register"] .diagram-count')).to_have_text('×2')
    expect(_element(page, 'end_approved')).not_to_have_class(re.compile(r'diagram-'))
    expect(page.locator('.diagram-current')).to_contain_text('审核登记情况（待办理）')
    controls = page.locator('.diagram-controls')
    expect(controls).to_be_visible()
    controls.get_by_role('button', name='放大').click()
    controls.get_by_role('button', name='适应窗口').click()
    width = page.viewport_size['width'] if page.viewport_size else 0
    page.locator('.diagram-panel').screenshot(path=str(artifacts / f'task-diagram-{width}.png'))
    problems.assert_none(page)


def test_a_failed_load_says_so_in_chinese(officer_page: tuple[Page, Problems], live_server: str,
                                          review: HumanTask) -> None:
    page, _ = officer_page
    page.route('**/diagram.json', lambda route: route.fulfill(status=500, content_type='application/json',
                                                               body='{"error": "internal"}'))
    page.goto(f'{live_server}/tasks/{review.id}')
    error = page.locator('.diagram .diagram-error')
    expect(error).to_have_text('流程图加载失败，请刷新页面重试。')
    expect(error).to_have_attribute('role', 'alert')
    expect(page.locator('.diagram-controls')).to_be_hidden()
    expect(page.locator('.diagram-current')).to_contain_text('审核登记情况')
