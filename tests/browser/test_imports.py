"""An officer imports offenders in headless Chromium: the dry run's per-row problems, a clean file confirmed,
the batch page's progress bar following the worker without a reload. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session, sessionmaker

from engine.clock import set_clock
from engine.worker import Worker
from tests.browser.support import DESKTOP, login
from tests.engine.import_support import FEMALE_ID, World, build_world, csv_file, frozen_clock, offender

pytestmark = pytest.mark.browser


@pytest.fixture
def world(session: Session, create_member: Any) -> Iterator[World]:
    previous = set_clock(frozen_clock())
    try:
        yield build_world(session, create_member)
    finally:
        set_clock(previous)


def test_officer_checks_a_file_then_follows_the_import(browser: Browser, live_server: str, world: World,
                                                       session_factory: sessionmaker[Session], tmp_path: Path,
                                                       artifacts: Path) -> None:
    bad = tmp_path / 'bad.csv'
    bad.write_bytes(csv_file('offenders', [offender(), offender(**{'机构代码': '430181', '公民身份号码': FEMALE_ID})]))
    good = tmp_path / 'good.csv'
    good.write_bytes(csv_file('offenders', [offender(), offender(**{'公民身份号码': FEMALE_ID, '姓名': '张某',
                                                                    '当前阶段': '交付接收'})]))
    context = browser.new_context(viewport=DESKTOP, locale='zh-CN')
    page = context.new_page()
    login(page, live_server, 'officer')
    page.goto(f'{live_server}/cases/import/')
    page.get_by_label('文件（CSV 或 XLSX）').set_input_files(str(bad))
    page.get_by_role('button', name='检查文件').click()
    expect(page.locator('tr[data-row-line="3"] [data-row-problems]')).to_contain_text('不在您的管辖范围内')
    expect(page.get_by_role('button', name='确认导入')).to_have_count(0)
    page.screenshot(path=str(artifacts / 'import-dry-run.png'), full_page=True)

    page.goto(f'{live_server}/cases/import/')
    page.get_by_label('文件（CSV 或 XLSX）').set_input_files(str(good))
    page.get_by_role('button', name='检查文件').click()
    page.get_by_role('button', name='确认导入').click()
    expect(page).to_have_url(re.compile(r'/cases/import/batches/\d+$'))
    expect(page.locator('[data-batch-status]')).to_have_text('排队中')
    expect(page.locator('[data-count="pending"]')).to_have_text('2')

    Worker(session_factory, name='browser-import', poll_interval=0, clock=frozen_clock()).run_once()

    # The page polls the progress call: the bar and each row follow the worker without a reload.
    expect(page.locator('[data-batch-status]')).to_have_text('已完成', timeout=10_000)
    expect(page.locator('[data-count="imported"]')).to_have_text('2')
    expect(page.locator('[data-progress-bar]')).to_have_attribute('value', '2')
    expect(page.locator('[data-row-status]')).to_have_text(['已导入', '已导入'])
    expect(page.locator('[data-row-case]').first).to_be_visible()
    expect(page.locator('[data-refresh-hint]')).to_be_hidden()
    page.screenshot(path=str(artifacts / 'import-batch.png'), full_page=True)
    context.close()
