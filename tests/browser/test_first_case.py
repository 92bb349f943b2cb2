"""A township officer opens a case and registers it; a county officer then finds it in the group queue."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy.orm import Session

from engine import runtime
from engine.directory import get_group
from engine.models.users import User
from tests.browser.support import login
from tests.fixtures.directory import Org

pytestmark = pytest.mark.browser
VIEWPORT = {'width': 1280, 'height': 860}


@pytest.fixture
def county(session: Session, org: Org, create_member: Callable[..., User],
           deploy_file: Callable[[str], object]) -> dict[str, User]:
    """Demo-like data: the roles with their Chinese names, a township officer, a county officer, two cases."""
    get_group(session, 'township_staff', '司法所工作人员')
    get_group(session, 'county_officer', '县级社区矫正机构')
    session.commit()
    people = {
        'staff': create_member('tj_staff', 'township_staff', org.township, display_name='周敏'),
        'officer': create_member('tj_officer', 'county_officer', org.county, display_name='李强'),
    }
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    for name, received in (('周某某', '2025-10-08'), ('陈某某', '2025-10-09')):
        runtime.start_case(session, 'demo_intake', {'person_name': name, 'received_on': received},
                           actor=people['staff'], org_unit=org.township)
    session.commit()
    return people


def _log_in(context: BrowserContext, base: str, username: str) -> Page:
    page = context.new_page()
    login(page, base, username, start='/tasks')  # the to-do list sends a visitor to the login form first
    return page


def _start_case(page: Page) -> str:
    """Open a case through the start form; return its number."""
    page.get_by_role('navigation', name='主导航').get_by_role('link', name='发起案件').click()
    page.get_by_role('link', name='发起 案件登记与审核（演示）').click()
    page.get_by_label('当事人姓名').fill('谢某某')
    page.get_by_label('公民身份号码').fill('431381198503120015')
    page.get_by_label('收案日期').fill('2025-10-10')
    page.get_by_label('案情摘要').fill('当事人近期情绪不稳，社区反映需上门核实。')
    page.get_by_role('button', name='提交立案').click()
    flash = page.locator('.alert-success')
    expect(flash).to_contain_text('已立案')
    return re.search(r'YS-\d{4}-\d{6}', flash.inner_text()).group(0)


def _register(page: Page, number: str, artifacts: Path) -> None:
    """Open the register task from the group queue, submit once with an error, then correctly."""
    page.get_by_role('navigation', name='主导航').get_by_role('link', name='待办').click()
    page.get_by_role('link', name=re.compile('组内待认领')).click()
    page.screenshot(path=str(artifacts / 'todo-list.png'), full_page=True)
    row = page.locator('tbody tr', has_text=number)
    row.get_by_role('link', name='登记案件情况').click()
    expect(page.get_by_role('heading', level=1)).to_have_text('登记案件情况')
    page.get_by_label('走访次数').fill('60')
    page.get_by_label('风险等级').select_option('medium')
    page.get_by_label('走访情况').fill('已走访社区及家属，情况属实。')
    page.get_by_role('button', name='提交').click()
    error = page.locator('.field.has-error', has=page.get_by_label('走访次数')).locator('.field-error')
    expect(error).to_have_text('不能大于 50。')
    expect(page.get_by_label('走访情况')).to_have_value('已走访社区及家属，情况属实。')
    page.screenshot(path=str(artifacts / 'task-with-errors.png'), full_page=True)
    page.get_by_label('走访次数').fill('3')
    page.get_by_role('button', name='提交').click()
    expect(page).to_have_url(re.compile(r'/tasks$'))
    expect(page.locator('.alert-success')).to_contain_text('下一步：“审核登记情况”')


def test_first_case_from_start_form_to_county_review(browser: Browser, live_server: str,
                                                     county: dict[str, User], artifacts: Path) -> None:
    township = browser.new_context(viewport=VIEWPORT, locale='zh-CN')
    page = _log_in(township, live_server, 'tj_staff')
    number = _start_case(page)
    _register(page, number, artifacts)
    township.close()

    county_context = browser.new_context(viewport=VIEWPORT, locale='zh-CN')
    officer = _log_in(county_context, live_server, 'tj_officer')
    officer.get_by_role('link', name=re.compile('组内待认领')).click()
    row = officer.locator('tbody tr', has_text=number)
    expect(row.get_by_role('link', name='审核登记情况')).to_be_visible()
    expect(row).to_contain_text('谢某某')
    officer.screenshot(path=str(artifacts / 'county-group-queue.png'), full_page=True)
    county_context.close()
