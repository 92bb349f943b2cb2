"""A whole morning in the to-do list, on the demo data, in headless Chromium: a 司法所 officer in 冷水江 who
starts with a monitoring alarm, and a mediator in 桃江 who accepts a dispute for village mediation.

Each step leaves a screenshot in test-artifacts/ (desktop and tablet width).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy.orm import Session

from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from tests.browser.support import DESKTOP, login
from workflows.demo import DEMO_PASSWORD, load_demo

pytestmark = pytest.mark.browser
TABLET = {'width': 800, 'height': 1100}


@pytest.fixture
def demo(session: Session) -> None:
    """The demo org tree, users, diagrams and cases, through the real engine."""
    assert load_demo(session, progress=lambda message: None)
    session.commit()


def _group_queue(session: Session, group: str, unit_code: str) -> list[HumanTask]:
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == unit_code)).one()
    return list(session.scalars(sa.select(HumanTask).where(
        HumanTask.status == 'open', HumanTask.assignee_id.is_(None), HumanTask.candidate_group == group,
        HumanTask.org_path.startswith(unit.path))))


def _log_in(context: BrowserContext, base: str, username: str) -> Page:
    page = context.new_page()
    login(page, base, username, DEMO_PASSWORD)
    return page


def _tab(page: Page, name: str) -> Locator:
    return page.get_by_role('navigation', name='待办分类').get_by_role('link', name=re.compile(name))


def _count(page: Page, name: str) -> str:
    return _tab(page, name).locator('.count').inner_text()


def _rows(page: Page) -> Locator:
    return page.locator('table.table-tasks tbody tr')


def _shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f'morning-{name}.png'), full_page=True)


def test_township_officer_morning_starts_with_the_alarm(browser: Browser, live_server: str, demo: None,
                                                        session: Session, artifacts: Path) -> None:
    """刘晓燕 of 锡矿山司法所: reads her counts, finds the alarm at the top of the group queue, filters to it,
    claims it, submits a too-short finding, corrects it, and the search task lands with the county officers."""
    queue = _group_queue(session, 'township_staff', '431381001')
    alarm = next(task for task in queue if task.process_key == 'corrections_alarm')
    number = session.get(Case, alarm.case_id).number
    context = browser.new_context(viewport=DESKTOP, locale='zh-CN')
    page = _log_in(context, live_server, 'lsj_staff')

    expect(_tab(page, '我的待办')).to_have_attribute('aria-current', 'page')
    assert _count(page, '我的待办') == '0'
    assert _count(page, '组内待认领') == str(len(queue))
    _tab(page, '组内待认领').click()
    page.get_by_label('排序').select_option('priority')
    page.get_by_role('button', name='筛选', exact=True).click()
    expect(_rows(page)).to_have_count(len(queue))
    first = _rows(page).first
    expect(first).to_have_class(re.compile('row-alarm'))
    expect(first).to_contain_text('核查监控报警')
    expect(first).to_contain_text('监控预警')
    _shoot(page, artifacts, 'officer-1-group-queue')

    page.get_by_label('搜索').fill(number)
    page.get_by_role('button', name='筛选', exact=True).click()
    same_case = [task for task in queue if task.case_id == alarm.case_id]  # the alarm and the case's other steps
    expect(_rows(page)).to_have_count(len(same_case))
    expect(page).to_have_url(re.compile(f'text={number}'))
    _shoot(page, artifacts, 'officer-2-filtered')
    _rows(page).filter(has_text='核查监控报警').get_by_role('button', name=re.compile('认领')).click()
    expect(page.locator('.alert-success')).to_contain_text('已认领')
    # The counts follow the search: one claimed, the case's other steps still in the group queue.
    assert _count(page, '我的待办') == '1'
    assert _count(page, '组内待认领') == str(len(same_case) - 1)

    _tab(page, '我的待办').click()
    _rows(page).first.get_by_role('link', name='核查监控报警', exact=True).click()
    expect(page.get_by_role('heading', level=1)).to_have_text('核查监控报警')
    page.get_by_label('核查结论').select_option('失联')
    page.get_by_label('核查情况').fill('无人')
    page.get_by_role('button', name='提交').click()
    error = page.locator('.field.has-error', has=page.get_by_label('核查情况')).locator('.field-error')
    expect(error).to_be_visible()
    expect(page.get_by_label('核查结论')).to_have_value('失联')  # nothing typed is lost
    _shoot(page, artifacts, 'officer-3-validation-error')
    page.get_by_label('核查情况').fill('电话、视频均无法联系，住所无人，家属称两日未归。')
    page.get_by_role('button', name='提交').click()
    flash = page.locator('.alert-success')
    expect(flash).to_contain_text('立即组织查找（公安机关协助）')
    expect(flash).to_contain_text('县级社区矫正机构')
    _shoot(page, artifacts, 'officer-4-done')
    context.close()

    county = browser.new_context(viewport=TABLET, locale='zh-CN')
    officer = _log_in(county, live_server, 'lsj_officer')
    _tab(officer, '组内待认领').click()
    row = _rows(officer).filter(has_text=number)
    expect(row).to_have_count(1)
    expect(row).to_contain_text('立即组织查找（公安机关协助）')
    expect(row).to_have_class(re.compile('row-alarm'))
    _shoot(officer, artifacts, 'officer-5-county-queue-tablet')
    county.close()


def test_mediator_morning_accepts_a_dispute_for_the_village(browser: Browser, live_server: str, demo: None,
                                                            session: Session, artifacts: Path) -> None:
    """王红梅 of the 桃江 医调委: reads her counts, looks at the red cases, claims the application waiting for
    acceptance, forgets the acceptance date, then sends the case to village mediation in 桃花江镇."""
    queue = _group_queue(session, 'mediator', '430922')
    red = [task for task in queue if task.risk_colour == 'red']
    review = next(task for task in queue if task.bpmn_id == 'accept_review')
    number = session.get(Case, review.case_id).number
    context = browser.new_context(viewport=TABLET, locale='zh-CN')
    page = _log_in(context, live_server, 'tj_mediator')

    assert _count(page, '组内待认领') == str(len(queue))
    _tab(page, '组内待认领').click()
    _shoot(page, artifacts, 'mediator-1-group-queue-tablet')
    page.locator('summary', has_text='更多筛选条件').click()
    page.get_by_label('风险等级').select_option('red')
    page.get_by_role('button', name='应用筛选').click()
    expect(_rows(page)).to_have_count(len(red))
    for row in _rows(page).all():
        expect(row).to_contain_text('红')
    _shoot(page, artifacts, 'mediator-2-red-tablet')
    page.get_by_role('link', name='清除筛选').click()
    expect(_rows(page)).to_have_count(len(queue))

    page.get_by_label('搜索').fill(number)
    page.get_by_role('button', name='筛选', exact=True).click()
    expect(_rows(page)).to_have_count(len([task for task in queue if task.case_id == review.case_id]))
    _rows(page).filter(has_text='受理审查').get_by_role('button', name=re.compile('认领')).click()
    expect(page.locator('.alert-success')).to_contain_text('已认领')

    _tab(page, '我的待办').click()
    _rows(page).filter(has_text=number).get_by_role('link', name='受理审查', exact=True).click()
    expect(page.get_by_role('heading', level=1)).to_have_text('受理审查')
    page.get_by_label('调解意愿').select_option('joint')
    page.get_by_label('首次调解层级').select_option('村')
    page.get_by_label(re.compile('当事人住所地乡镇')).fill('430922001')
    page.get_by_label('审查意见').fill('材料齐全，双方同意调解。')
    page.get_by_label('审查（受理）日期').fill('')
    page.get_by_role('button', name='提交').click()
    error = page.locator('.field.has-error', has=page.get_by_label('审查（受理）日期')).locator('.field-error')
    expect(error).to_be_visible()
    expect(page.get_by_label('审查意见')).to_have_value('材料齐全，双方同意调解。')
    _shoot(page, artifacts, 'mediator-3-validation-error-tablet')
    accepted_on = page.evaluate('() => new Date().toLocaleDateString("sv-SE", {timeZone: "Asia/Shanghai"})')
    page.get_by_label('审查（受理）日期').fill(accepted_on)
    page.get_by_role('button', name='提交').click()
    flash = page.locator('.alert-success')
    expect(flash).to_contain_text('网格/村级初诊调解')
    expect(flash).to_contain_text('桃花江镇')
    _shoot(page, artifacts, 'mediator-4-done-tablet')
    context.close()

    village = browser.new_context(viewport=DESKTOP, locale='zh-CN')
    mediator = _log_in(village, live_server, 'tj_village')
    _tab(mediator, '组内待认领').click()
    row = _rows(mediator).filter(has_text=number)
    expect(row).to_have_count(1)
    expect(row).to_contain_text('网格/村级初诊调解')
    _shoot(mediator, artifacts, 'mediator-5-village-queue')
    village.close()
