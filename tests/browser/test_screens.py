"""Deadlines, reminders, notifications, the calendar admin and a printed document, in headless Chromium.

Each test also leaves screenshots in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.calendar import add_override
from engine.clock import FrozenClock, set_clock
from engine.directory import get_group
from engine.models.cases import Document
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.reminders import snooze_reminder
from tests.browser.support import DESKTOP, login
from tests.engine.deadline_support import bj, run_due_jobs, set_time, task_jobs
from tests.fixtures.directory import Org
from workflows.shared.documents import generate_document

pytestmark = pytest.mark.browser
DEADLINE = 'tests/web/bpmn/deadline_task.bpmn'


@pytest.fixture
def frozen() -> Iterator[FrozenClock]:
    clock = FrozenClock(bj('2025-09-15 09:00:00'))
    previous = set_clock(clock)
    yield clock
    set_clock(previous)


@pytest.fixture
def county(session: Session, org: Org, create_member: Callable[..., User]) -> dict[str, User]:
    """The roles with their Chinese names and the people of 桃江: two township staff, the chief, an admin."""
    for code, name in (('township_staff', '司法所工作人员'), ('supervisor', '主管领导'), ('admin', '系统管理员')):
        get_group(session, code, name)
    session.commit()
    return {
        'staff': create_member('tj_staff', 'township_staff', org.township, display_name='周敏'),
        'staff2': create_member('tj_staff2', 'township_staff', org.township, display_name='王芳'),
        'chief': create_member('tj_chief', 'supervisor', org.county, display_name='邓志刚'),
        'admin': create_member('admin', 'admin', org.province, display_name='系统管理员'),
    }


@pytest.fixture
def deadlines(session: Session, org: Org, county: dict[str, User], frozen: FrozenClock,
              deploy_file: Callable[[str], object]) -> dict[str, HumanTask]:
    """Two 调查评估 tasks: one escalated after missing 2025-09-28, one due 2025-10-16; now 2025-10-13 10:00."""
    deploy_file(DEADLINE)
    staff = county['staff']

    def start(name: str, received: str) -> HumanTask:
        _, [task] = runtime.start_case(session, 'web_assessment', {'person_name': name,
                                                                   'commission_received_on': received},
                                       actor=staff, org_unit=org.township)
        session.commit()
        return task

    late = start('陈某某', '2025-09-15')
    set_time(frozen, '2025-09-26 09:00:00')
    current = start('谢某某', '2025-09-26')
    set_time(frozen, '2025-10-10 09:00:00')
    run_due_jobs(session)
    set_time(frozen, '2025-10-13 10:00:00')
    chief = county['chief']
    rung = next(job for job in task_jobs(session, current.id) if job.payload.get('offset') == '0')
    snooze_reminder(session, rung.id, bj('2025-10-16 14:00:00'), '上午有集中评议会，改到下午提醒',
                    actor=chief, scope=load_scope(session, chief))
    session.commit()
    return {'late': late, 'current': current}


def _log_in(browser: Browser, base: str, username: str) -> Page:
    context = browser.new_context(viewport=DESKTOP, locale='zh-CN')
    page = context.new_page()
    login(page, base, username)
    return page


def test_deadlines_reminders_and_notifications(browser: Browser, live_server: str, deadlines: dict[str, HumanTask],
                                               artifacts: Path) -> None:
    staff = _log_in(browser, live_server, 'tj_staff')
    expect(staff.locator('.notify-link .count')).to_have_text('2')
    staff.get_by_role('link', name=re.compile('组内待认领')).click()
    overdue = staff.locator('tbody tr.row-overdue')
    expect(overdue).to_have_count(1)
    expect(overdue).to_contain_text('逾期 15 天')
    expect(overdue).to_contain_text('已升级')
    expect(staff.locator('tbody tr', has_text='谢某某')).to_contain_text('剩 3 个工作日')
    staff.screenshot(path=str(artifacts / 'todo-deadlines.png'), full_page=True)

    staff.locator('.notify-link').click()
    expect(staff.get_by_role('heading', level=1)).to_contain_text('通知')
    staff.screenshot(path=str(artifacts / 'notifications.png'), full_page=True)
    staff.get_by_role('button', name=re.compile('待办提醒：调查评估 将于 2025-10-16')).click()
    expect(staff).to_have_url(f'{live_server}/tasks/{deadlines["current"].id}')
    expect(staff.locator('.notify-link .count')).to_have_text('1')
    staff.context.close()

    chief = _log_in(browser, live_server, 'tj_chief')
    chief.get_by_role('link', name=re.compile('升级给我')).click()
    expect(chief.locator('tbody tr')).to_have_count(1)
    chief.goto(f'{live_server}/tasks/{deadlines["current"].id}')
    panel = chief.locator('#reminders')
    expect(panel.locator('.rule')).to_have_text(
        '10 个工作日，自 2025-09-26 收到委托函起算（社区矫正法实施办法 §14）→ 2025-10-16 到期')
    expect(panel).to_contain_text('已推迟：上午有集中评议会，改到下午提醒')
    first = panel.locator('li.job').first
    first.locator('summary').click()
    first.locator('form').first.get_by_role('button', name='确认推迟').click()  # no time, no reason
    error_panel = chief.locator('#reminders')
    expect(error_panel.locator('.field-error')).to_have_count(2)
    chief.screenshot(path=str(artifacts / 'task-deadline.png'), full_page=True)
    chief.goto(f'{live_server}/tasks/{deadlines["current"].id}?lang=en')
    expect(panel.locator('.due-left')).to_have_text('3 working days left')
    chief.screenshot(path=str(artifacts / 'task-deadline-en.png'), full_page=True)
    chief.context.close()


def test_calendar_admin(browser: Browser, live_server: str, session: Session, org: Org, county: dict[str, User],
                        frozen: FrozenClock, artifacts: Path) -> None:
    frozen.set(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # 2027 not covered by chinesecalendar yet
    admin = county['admin']
    add_override(session, date(2026, 12, 31), False, org_unit=org.county, note='桃江县防汛应急停工一日', actor=admin)
    add_override(session, date(2027, 1, 1), False, org_unit=None, note='元旦（国务院通知尚未发布，先行录入）',
                 actor=admin)
    add_override(session, date(2026, 12, 27), True, org_unit=org.city, note='益阳市统一补班', actor=admin)
    session.commit()
    page = _log_in(browser, live_server, 'admin')
    expect(page.locator('.alert-warn')).to_contain_text('2027')
    page.get_by_role('link', name='工作日历').first.click()
    expect(page.locator('tbody tr')).to_have_count(2)
    page.get_by_role('button', name='保存调整').click()  # no day, no basis
    expect(page.locator('.field-error')).to_have_count(2)
    expect(page.locator('.field.has-error', has=page.get_by_label('依据')).locator('.field-error')).to_have_text(
        '请说明调整依据。')
    page.screenshot(path=str(artifacts / 'calendar-admin-errors.png'), full_page=True)
    page.get_by_label('日期').fill('2026-12-30')
    page.get_by_label('补班工作日').check()
    page.get_by_label('机构代码').fill(org.county.code)
    page.get_by_label('依据').fill('县政府关于调整年末工作日的通知')
    page.get_by_role('button', name='保存调整').click()
    expect(page.locator('.alert-success')).to_contain_text('已保存 2026-12-30 的调整')
    expect(page.locator('tbody tr')).to_have_count(3)
    page.screenshot(path=str(artifacts / 'calendar-admin.png'), full_page=True)
    page.context.close()


def test_a_document_prints_on_a4(browser: Browser, live_server: str, session: Session, org: Org,
                                 county: dict[str, User], deadlines: dict[str, HumanTask], artifacts: Path) -> None:
    task = session.get(HumanTask, deadlines['current'].id)
    assert task is not None
    document: Document = generate_document(
        session, task.case, None, 'shared/case_summary', '案件情况摘要',
        {'findings': '经走访社区、村（居）委会及被告人家属，被告人平时表现良好，有固定住所和稳定收入，'
                     '家庭成员愿意协助监督，所在社区同意接收。建议适用社区矫正。'},
        actor=county['staff'])
    session.commit()
    page = _log_in(browser, live_server, 'tj_staff')
    page.goto(f'{live_server}/cases/{task.case_id}')
    page.get_by_role('link', name='案件情况摘要').click()
    expect(page.locator('.document-title')).to_have_text('案件情况摘要')
    expect(page.get_by_role('button', name='打印')).to_be_visible()  # shown by print.js
    page.screenshot(path=str(artifacts / 'document-screen.png'), full_page=True)
    page.emulate_media(media='print')
    # A screenshot knows no @page margins: show the A4 text block (156 × 225 mm at 96 dpi) that the PDF has.
    page.set_viewport_size({'width': 590, 'height': 850})
    expect(page.locator('.site-header')).to_be_hidden()
    expect(page.get_by_role('button', name='打印')).to_be_hidden()
    page.screenshot(path=str(artifacts / 'document-print.png'), full_page=True)
    page.pdf(path=str(artifacts / 'document.pdf'), prefer_css_page_size=True)
    assert b'/MediaBox [0 0 594.9' in (artifacts / 'document.pdf').read_bytes()  # A4, 210 × 297 mm
    assert document.number in page.locator('.document-number').inner_text()
    page.context.close()


def test_a_hand_made_form_with_a_list_of_parties(browser: Browser, live_server: str, session: Session, org: Org,
                                                 county: dict[str, User], frozen: FrozenClock,
                                                 deploy_file: Callable[[str], object], artifacts: Path) -> None:
    from marshmallow import Schema, fields, validate

    from engine.forms import _registered_forms, register_form

    class Party(Schema):
        name = fields.String(required=True, metadata={'label': '姓名或名称'},
                             error_messages={'required': '此项为必填项。'})
        role = fields.String(required=True, validate=validate.OneOf(['患方', '医方']), metadata={'label': '身份'},
                             error_messages={'required': '此项为必填项。'})

    class Agreement(Schema):
        parties = fields.List(fields.Nested(Party), required=True, validate=validate.Length(min=2),
                              metadata={'label': '当事人', 'hint': '每行一方；身份填“患方”或“医方”。'})
        amount = fields.Decimal(required=True, places=2, metadata={'label': '协议金额（元）'})
        pay_by = fields.Date(required=True, metadata={'label': '履行期限'})

    register_form('webtests.agreement', Agreement)
    try:
        deploy_file('tests/web/bpmn/agreement.bpmn')
        _, [task] = runtime.start_case(session, 'web_agreement', {}, actor=county['staff'], org_unit=org.township)
        session.commit()
        page = _log_in(browser, live_server, 'tj_staff')
        page.goto(f'{live_server}/tasks/{task.id}')
        page.locator('input[name="parties-0-name"]').fill('张某某')
        page.locator('input[name="parties-0-role"]').fill('患方')
        page.locator('input[name="parties-1-name"]').fill('桃江县人民医院')
        page.get_by_role('button', name='增加一行').click()
        expect(page.locator('fieldset tbody tr')).to_have_count(5)  # two typed, two blank, one added
        page.get_by_label('协议金额（元）').fill('8.6万')
        page.get_by_role('button', name='提交').click()
        expect(page.locator('input[name="parties-1-role"]')).to_have_attribute('aria-invalid', 'true')
        page.screenshot(path=str(artifacts / 'hand-made-form.png'), full_page=True)
        page.context.close()
    finally:
        _registered_forms.pop('webtests.agreement', None)
