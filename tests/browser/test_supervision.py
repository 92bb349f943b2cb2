"""A supervisor's audit in headless Chromium: finds a case, reads its history, exports the audit log, and sees a
row someone changed behind the database's back reported by the verifier.

Leaves screenshots in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.directory import get_group
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.users import User
from tests.browser.support import DESKTOP, login
from tests.fixtures.directory import Org

pytestmark = pytest.mark.browser


@pytest.fixture
def audited(session: Session, org: Org, create_member: Callable[..., User],
            deploy_file: Callable[[str], object]) -> Case:
    """A case at the township whose registration the county sent back once, a supervisor of the county, and a
    case at the other county the supervisor must never see."""
    for code, name in (('township_staff', '司法所工作人员'), ('county_officer', '县级社区矫正机构'),
                       ('supervisor', '主管领导')):
        get_group(session, code, name)
    session.commit()
    staff = create_member('tj_staff', 'township_staff', org.township, display_name='周敏')
    officer = create_member('tj_officer', 'county_officer', org.county, display_name='李强')
    create_member('tj_chief', 'supervisor', org.county, display_name='邓志刚')
    outsider = create_member('hs_staff', 'township_staff', org.other_township, display_name='黄磊')
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    start = {'person_name': '谢某某', 'received_on': '2025-10-10'}
    case, [register] = runtime.start_case(session, 'demo_intake', start, actor=staff, org_unit=org.township)
    _, [review] = runtime.complete_task(session, register.id, {'visit_count': '2', 'risk_level': 'medium',
                                                               'findings': '已走访社区及家属，情况属实。'},
                                        actor=staff, scope=load_scope(session, staff))
    runtime.complete_task(session, review.id, {'approved': 'false', 'review_opinion': '请补充走访记录'},
                          actor=officer, scope=load_scope(session, officer))
    runtime.start_case(session, 'demo_intake', {'person_name': '黄某某', 'received_on': '2025-10-10'},
                       actor=outsider, org_unit=org.other_township)
    session.commit()
    return case


def _log_in(browser: Browser, base: str) -> Page:
    page = browser.new_context(viewport=DESKTOP, locale='zh-CN', accept_downloads=True).new_page()
    login(page, base, 'tj_chief')
    return page


def _tamper(session: Session, event_id: int) -> None:
    """What someone with write access to the database file could do: lift the append-only guard, change a
    note, put the guard back."""
    session.execute(sa.text('DROP TRIGGER audit_events_no_update'))
    session.execute(sa.text(f"UPDATE audit_events SET note = '已核实（改）' WHERE id = {event_id}"))
    session.execute(sa.text("CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
                            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"))
    session.commit()


def test_supervisor_audits_a_case_and_finds_the_tampered_row(browser: Browser, live_server: str, session: Session,
                                                             audited: Case, artifacts: Path) -> None:
    page = _log_in(browser, live_server)

    # Finds the case: 案件检索 in the navigation, by the person's name and the step it stands at.
    page.get_by_role('navigation', name='主导航').get_by_role('link', name='案件检索').click()
    page.get_by_label('案件编号、姓名或身份证号').fill('谢')
    page.get_by_label('当前环节').select_option(label='登记案件情况')
    page.get_by_role('button', name='检索').click()
    results = page.locator('table.table-results tbody tr')
    expect(results).to_have_count(1)
    expect(results).to_contain_text('登记案件情况')
    expect(page.locator('table.table-results')).not_to_contain_text('黄某某')
    page.screenshot(path=str(artifacts / 'supervision-search.png'), full_page=True)
    results.get_by_role('link', name=audited.number).click()

    # Reads its history: who sent it back, with which opinion, every value in the entry's 详细信息.
    expect(page.get_by_role('heading', level=1)).to_contain_text(audited.number)
    history = page.locator('#history')
    returned = history.locator('li', has_text='办理任务').filter(has_text='李强')
    expect(returned).to_have_count(1)
    returned.locator('summary', has_text='详细信息').click()
    details = returned.locator('details.tl-details')
    expect(details.locator('tbody tr', has_text='审核意见')).to_contain_text('请补充走访记录')
    expect(details).to_contain_text('#')
    expect(page.locator('.step-times')).to_contain_text('登记案件情况')
    page.screenshot(path=str(artifacts / 'supervision-case-history.png'), full_page=True)

    # Exports the audit log: CSV and Excel, the other county's case in neither.
    page.get_by_role('navigation', name='主导航').get_by_role('link', name='审计日志').click()
    expect(page.locator('table.table-results')).to_contain_text(audited.number)
    with page.expect_download() as download_info:
        page.get_by_role('button', name='导出 CSV').click()
    text = Path(download_info.value.path()).read_text(encoding='utf-8-sig')
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ['序号', '时间', '操作人', '事件'] and len(rows) > 5
    assert any(row[5] == audited.number and row[3] == '办理任务' for row in rows[1:])
    assert '黄某某' not in text
    with page.expect_download() as download_info:
        page.get_by_role('button', name='导出 Excel').click()
    assert download_info.value.suggested_filename.endswith('.xlsx')
    sheet = load_workbook(io.BytesIO(Path(download_info.value.path()).read_bytes()), read_only=True).active
    assert [cell for cell in next(sheet.iter_rows(values_only=True))][:2] == ['序号', '时间']
    page.screenshot(path=str(artifacts / 'supervision-audit-log.png'), full_page=True)

    # Someone changes a row behind the database's back; the verifier names it.
    page.get_by_role('link', name='校验审计链').click()
    page.get_by_role('button', name='开始校验').click()
    expect(page.get_by_role('status')).to_contain_text('审计链完整')
    target = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'task.completed',
                                                         AuditEvent.case_id == audited.id)
                             .order_by(AuditEvent.id)).first()
    assert target is not None
    _tamper(session, target.id)
    page.get_by_role('button', name='重新校验').click()
    alert = page.get_by_role('alert')
    expect(alert).to_contain_text('审计链已断裂')
    expect(alert).to_contain_text(f'#{target.id}')
    expect(alert).to_contain_text('办理任务')
    expect(alert).to_contain_text('内容可能被修改')
    page.screenshot(path=str(artifacts / 'supervision-verify-broken.png'), full_page=True)
