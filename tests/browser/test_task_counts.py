"""A city supervisor's to-do tabs in headless Chromium: the counts over the whole city come after the page, from
the counts endpoint, and the page's script fills them in without a console error or a CSP violation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session

from tests.browser.support import DESKTOP, Problems, login
from web.tasks.util import DEFERRED_VIEWS
from workflows.demo import DEMO_PASSWORD, load_demo

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(session: Session) -> None:
    """The demo org tree, users, diagrams and cases, through the real engine."""
    assert load_demo(session, progress=lambda message: None)
    session.commit()


def test_a_city_supervisors_tab_counts_arrive_after_the_page(browser: Browser, live_server: str, demo: None) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems = Problems.watch(page)
    login(page, live_server, 'yy_chief', DEMO_PASSWORD)
    problems.clear()
    page.goto(f'{live_server}/tasks?view=all')
    tabs = page.get_by_role('navigation', name='待办分类')
    counts = context.request.get(live_server + (tabs.get_attribute('data-counts-url') or '')).json()['counts']
    assert counts['all'] > 0  # the demo cases of 益阳 are open
    for view in DEFERRED_VIEWS:
        expect(tabs.locator(f'[data-view="{view}"]')).to_have_text(str(counts[view]))
    overdue = tabs.locator('a', has=page.locator('[data-view="overdue"]'))
    alert = re.compile(r'\btab-alert\b') if counts['overdue'] else re.compile(r'^(?!.*tab-alert)')
    expect(overdue).to_have_class(alert)
    problems.assert_none(page)
    context.close()
