"""A designer moves the running instances of a version to the next one, in headless Chromium: the preview,
the reason, the batch page following the worker without a reload. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.clock import FrozenClock
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.users import User
from engine.worker import Worker
from tests.browser.support import DESKTOP, login
from tests.fixtures.directory import Org

pytestmark = pytest.mark.browser
REASON = '审核环节取消，登记后直接办结'


@pytest.fixture
def versions(session: Session, org: Org, people: dict[str, User], clock: FrozenClock,
             deploy_file: Callable[[str], ProcessDefinition]) -> tuple[ProcessDefinition, ProcessDefinition]:
    """Two cases on version 1 (one at 登记, one at 审核), and version 2 without 审核."""
    v1 = deploy_file('tests/engine/bpmn/migration_v1.bpmn')
    for name, at_review in (('甲某', False), ('乙某', True)):
        _, [task] = runtime.start_case(session, 'migration_case', {'person_name': name}, actor=people['staff'],
                                       org_unit=org.township)
        session.commit()
        if at_review:
            runtime.complete_task(session, task.id, {}, actor=people['staff'],
                                  scope=load_scope(session, people['staff']))
            session.commit()
    return v1, deploy_file('tests/engine/bpmn/migration_removed.bpmn')


def test_designer_moves_the_movable_instances_and_follows_the_batch(
        browser: Browser, live_server: str, session: Session, session_factory: sessionmaker[Session],
        versions: tuple[ProcessDefinition, ProcessDefinition], artifacts: Path) -> None:
    context = browser.new_context(viewport=DESKTOP, locale='zh-CN')
    page = context.new_page()
    login(page, live_server, 'designer')
    page.goto(f'{live_server}/designer/migrations/new/migration_case')

    rows = page.locator('tr[data-instance-id]')
    expect(rows).to_have_count(2)
    expect(page.locator('tr.row-blocked')).to_contain_text('当前步骤“审核”在新版本中已删除。')
    expect(page.locator('tr.row-blocked input[name="instance"]')).to_be_disabled()
    page.get_by_label('全选可迁移的实例').check()
    expect(page.locator('[data-selected-count]')).to_have_text('已选 1 件')
    expect(page.locator('tr.row-movable input[name="instance"]')).to_be_checked()
    page.screenshot(path=str(artifacts / 'migration-preview.png'), full_page=True)

    page.get_by_role('button', name='迁移选中的实例').click()  # no reason yet: refused, the tick kept
    expect(page.locator('#migration-reason-error')).to_have_text('请填写迁移原因。')
    expect(page.locator('tr.row-movable input[name="instance"]')).to_be_checked()
    page.get_by_label('迁移原因').fill(REASON)
    page.get_by_role('button', name='迁移选中的实例').click()

    expect(page).to_have_url(re.compile(r'/designer/migrations/batches/\d+$'))
    expect(page.locator('[data-batch-status]')).to_have_text('排队中')
    expect(page.locator('[data-count="pending"]')).to_have_text('1')

    Worker(session_factory, name='browser-test', poll_interval=0).run_once()

    # The page polls the progress call: it follows the worker without being reloaded.
    expect(page.locator('[data-batch-status]')).to_have_text('已完成', timeout=10_000)
    expect(page.locator('[data-count="migrated"]')).to_have_text('1')
    expect(page.locator('[data-count="pending"]')).to_have_text('0')
    expect(page.locator('[data-item-status]')).to_have_text('已迁移')
    expect(page.locator('[data-refresh-hint]')).to_be_hidden()
    page.screenshot(path=str(artifacts / 'migration-batch.png'), full_page=True)
    moved = session.scalars(sa.select(ProcessInstance.definition_id).order_by(ProcessInstance.id)).all()
    assert moved == [versions[1].id, versions[0].id]
    context.close()
