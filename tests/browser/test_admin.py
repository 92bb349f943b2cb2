"""三员 in the browser: the system administrator creates an account, the security administrator grants it
township_staff at a township, and the new colleague logs in to find the township's work in the to-do list."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from engine import runtime
from engine.directory import get_group
from engine.models.users import User
from tests.browser.support import DESKTOP, Problems, login
from tests.fixtures.directory import Org

pytestmark = pytest.mark.browser
NEW_PASSWORD = 'Qiao-2025-new'


@pytest.fixture
def bureau(session: Session, org: Org, create_member: Callable[..., User],
           deploy_file: Callable[[str], object]) -> dict[str, User]:
    """The roles with their Chinese names, the county's system and security administrators, and a case waiting
    at the township for township staff."""
    for code, name in (('township_staff', '司法所工作人员'), ('system_admin', '系统管理员'),
                       ('security_admin', '安全保密管理员')):
        get_group(session, code, name)
    session.commit()
    people = {'sysadmin': create_member('sysadmin', 'system_admin', org.county, display_name='县局系统管理员'),
              'secadmin': create_member('secadmin', 'security_admin', org.county, display_name='县局安全保密管理员'),
              'staff': create_member('tj_staff', 'township_staff', org.township, display_name='周敏')}
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-10-09'},
                       actor=people['staff'], org_unit=org.township)
    session.commit()
    return people


def _nav(page: Page, name: str) -> None:
    page.get_by_role('navigation', name='主导航').get_by_role('link', name=name).click()


def _create_account(page: Page, org: Org) -> None:
    _nav(page, '用户管理')
    page.get_by_role('link', name='新建用户').click()
    page.get_by_label(re.compile(r'^用户名')).fill('hs_new')
    page.get_by_label('姓名').fill('吴晓丽')
    page.get_by_label('所属机构').select_option(org.township.code)
    page.get_by_label('初始密码').fill(NEW_PASSWORD)
    page.get_by_role('button', name='创建用户').click()
    expect(page.locator('.alert-success')).to_contain_text('已创建用户 hs_new')
    expect(page.get_by_role('heading', level=1)).to_contain_text('吴晓丽')
    expect(page.get_by_role('navigation', name='主导航').get_by_role('link', name='角色权限')).to_have_count(0)


def _grant_township_staff(page: Page, org: Org) -> None:
    _nav(page, '角色权限')
    page.get_by_label('用户名或姓名').fill('吴晓丽')
    page.get_by_role('button', name='查找').click()
    page.get_by_role('link', name='hs_new').click()
    page.get_by_label(re.compile(r'^角色')).select_option('township_staff')
    page.get_by_label(re.compile(r'^授权机构')).select_option(org.township.code)
    page.get_by_role('button', name='授予').click()
    expect(page.locator('.alert-success')).to_contain_text('司法所工作人员')
    expect(page.locator('table')).to_contain_text('桃花江镇司法所')


def test_system_admin_creates_security_admin_grants_the_user_works(
        watched_page: Callable[..., tuple[Page, Problems]], live_server: str, org: Org, bureau: dict[str, User],
        artifacts: Path) -> None:
    page, problems = watched_page(DESKTOP)
    login(page, live_server, 'sysadmin')
    problems.clear()
    _create_account(page, org)
    page.screenshot(path=str(artifacts / 'admin-user-created.png'), full_page=True)
    problems.assert_none(page)

    page, problems = watched_page(DESKTOP)
    login(page, live_server, 'secadmin')
    problems.clear()
    _grant_township_staff(page, org)
    page.screenshot(path=str(artifacts / 'admin-role-granted.png'), full_page=True)
    problems.assert_none(page)

    page, problems = watched_page(DESKTOP)
    login(page, live_server, 'hs_new', NEW_PASSWORD)
    page.get_by_role('link', name=re.compile('组内待认领')).click()
    row = page.locator('tbody tr', has_text='谢某某')
    expect(row.get_by_role('link', name='登记案件情况')).to_be_visible()
    problems.assert_none(page)
