"""The case search and the case page on a tablet-width screen (800 px), driven by the keyboard.

Each test also leaves screenshots in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from engine import runtime
from engine.directory import get_group
from engine.models.cases import Case
from engine.models.users import User
from tests.browser.support import login
from tests.fixtures.directory import Org

pytestmark = pytest.mark.browser
TABLET = {'width': 800, 'height': 1100}


@pytest.fixture
def cases(session: Session, org: Org, create_member: Callable[..., User],
          deploy_file: Callable[[str], object]) -> list[Case]:
    get_group(session, 'township_staff', '司法所工作人员')
    session.commit()
    staff = create_member('tj_staff', 'township_staff', org.township, display_name='周敏')
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    started = []
    for name, id_number in (('周某某', '431381198503120015'), ('陈某某', None)):
        data = {'person_name': name, 'received_on': '2025-10-09', 'summary': '邻里纠纷，需上门核实。'}
        if id_number:
            data['id_number'] = id_number
        case, _ = runtime.start_case(session, 'demo_intake', data, actor=staff, org_unit=org.township)
        started.append(case)
    session.commit()
    return started


def _log_in(browser: Browser, base: str) -> Page:
    page = browser.new_context(viewport=TABLET, locale='zh-CN').new_page()
    login(page, base, 'tj_staff')
    return page


def _fits(page: Page) -> None:
    """Nothing makes the page scroll sideways (tables scroll inside their own frame)."""
    assert page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')


def test_search_by_keyboard_on_a_tablet(browser: Browser, live_server: str, cases: list[Case],
                                        artifacts: Path) -> None:
    page = _log_in(browser, live_server)
    page.goto(f'{live_server}/cases')
    _fits(page)
    page.get_by_label('当事人姓名').focus()
    page.keyboard.type('周')
    page.keyboard.press('Enter')  # submits the search form
    expect(page).to_have_url(re.compile(r'/cases\?name=%E5%91%A8$'))
    expect(page.locator('tbody tr')).to_have_count(1)
    expect(page.locator('tbody')).to_contain_text('431381********0015')
    page.screenshot(path=str(artifacts / 'case-search-tablet.png'), full_page=True)
    page.go_back()
    expect(page).to_have_url(f'{live_server}/cases')
    page.get_by_label('立案日期（起）').fill('2025-10-09')
    page.get_by_label('立案日期（止）').fill('2025-10-01')
    page.get_by_role('button', name='搜索').press('Enter')
    expect(page.locator('.field.has-error')).to_contain_text('结束日期不能早于开始日期')
    _fits(page)


def test_case_page_on_a_tablet(browser: Browser, live_server: str, cases: list[Case], artifacts: Path) -> None:
    page = _log_in(browser, live_server)
    page.goto(f'{live_server}/cases/{cases[0].id}')
    _fits(page)
    qr = page.get_by_role('img', name='案件进度查询二维码')
    expect(qr).to_be_visible()
    assert qr.evaluate('img => img.complete && img.naturalWidth > 0')  # the SVG loaded under the CSP
    expect(page.locator('#instances')).to_contain_text('登记案件情况')
    page.screenshot(path=str(artifacts / 'case-page-tablet.png'), full_page=True)
