"""统计 and 工作评比 in headless Chromium under the app's CSP: the charts draw, drill-down works, scores explain.

The data is the October 2025 scenario of the engine tests (tests/engine/statistics_support.py). Needs the
bundle built by ``make setup`` (scripts/build-assets.sh).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.models.users import User
from tests.browser.support import DESKTOP, Problems, login, require_bundles
from tests.engine.statistics_support import October, build_october
from tests.fixtures.directory import Org

pytestmark = pytest.mark.browser
PHONE: ViewportSize = {'width': 400, 'height': 860}


@pytest.fixture(scope='module', autouse=True)
def _bundle_built() -> None:
    require_bundles('charts.js')


@pytest.fixture
def october(session: Session, clock: FrozenClock, org: Org, people: dict[str, User],
            deploy_file: Callable[[str], object], create_member: Callable[..., User]) -> October:
    create_member('city_chief', 'supervisor', org.city, display_name='易建军')
    return build_october(session, clock, org, people, deploy_file)


@pytest.fixture
def chief_page(watched_page: Callable[..., tuple[Page, Problems]], live_server: str, october: October,
               request: pytest.FixtureRequest) -> tuple[Page, Problems]:
    page, problems = watched_page(getattr(request, 'param', DESKTOP))
    login(page, live_server, 'city_chief')
    problems.clear()
    return page, problems


@pytest.mark.parametrize('chief_page', [DESKTOP, PHONE], ids=['desktop', 'phone'], indirect=True)
def test_dashboard_draws_its_charts_and_drills_down(chief_page: tuple[Page, Problems], live_server: str,
                                                    artifacts: Path) -> None:
    page, problems = chief_page
    width = page.viewport_size['width'] if page.viewport_size else 0
    page.get_by_role('navigation', name='主导航').get_by_role('link', name='统计').click()
    expect(page).to_have_url(f'{live_server}/dashboard/430900')
    expect(page.get_by_role('heading', level=1)).to_contain_text('益阳市司法局')
    for name in ('cases', 'rates', 'steps'):
        expect(page.locator(f'figure.chart.chart-ready canvas#chart-{name}')).to_be_visible()
    box = page.locator('#chart-cases').bounding_box()
    assert box is not None and box['width'] > 200 and box['height'] > 100  # drawn to its container, not 0×0
    expect(page.locator('.stat-card', has_text='按期办结率').locator('.stat-value')).to_have_text('60.0%')
    # Wide tables scroll inside their frame; the page itself never scrolls sideways.
    assert page.evaluate('document.documentElement.scrollWidth') <= width
    page.screenshot(path=str(artifacts / f'dashboard-city-{width}.png'), full_page=True)

    page.locator('.stats-table').get_by_role('link', name='桃江县司法局').click()
    expect(page).to_have_url(re.compile(r'/dashboard/430922\?period=2025-10$'))
    expect(page.get_by_role('heading', level=1)).to_contain_text('桃江县司法局')
    expect(page.locator('.stats-table tbody th', has_text='桃花江镇司法所')).to_be_visible()
    expect(page.locator('figure.chart.chart-ready canvas#chart-cases')).to_be_visible()
    page.locator('.breadcrumb').get_by_role('link', name='益阳市司法局').click()
    expect(page).to_have_url(re.compile(r'/dashboard/430900\?period=2025-10$'))
    problems.assert_none(page)


def test_period_picker_changes_the_figures(chief_page: tuple[Page, Problems], live_server: str) -> None:
    page, problems = chief_page
    page.goto(f'{live_server}/dashboard/430900')
    page.get_by_label('统计期间').select_option('2025-09')
    page.get_by_role('button', name='查看').click()
    expect(page).to_have_url(re.compile(r'period=2025-09'))
    expect(page.get_by_role('heading', level=1)).to_contain_text('2025年9月')
    opened = page.locator('.stat-card', has_text='新收案件').locator('.stat-value')
    expect(opened).to_have_text('6')  # B and five mediations
    page.get_by_label('统计期间').select_option('custom')
    page.get_by_label('开始日期').fill('2025-10-01')
    page.get_by_label('结束日期').fill('2025-10-15')
    page.get_by_role('button', name='查看').click()
    expect(page.get_by_role('heading', level=1)).to_contain_text('2025-10-01 至 2025-10-15')
    problems.assert_none(page)


def test_ranking_explains_a_score(chief_page: tuple[Page, Problems], live_server: str, artifacts: Path) -> None:
    page, problems = chief_page
    page.get_by_role('navigation', name='主导航').get_by_role('link', name='工作评比').click()
    expect(page).to_have_url(f'{live_server}/ranking/430900')
    row = page.locator('#county-430903')
    expect(row.locator('.score')).to_have_text('45.83')
    explanation = row.locator('.explain-table')
    expect(explanation).to_be_hidden()
    row.get_by_text('计分明细').click()
    expect(explanation).to_be_visible()
    expect(explanation.locator('tbody tr', has_text='调解成功率')).to_contain_text('无数据，不计入')
    expect(explanation.locator('tfoot')).to_contain_text('45.83')
    page.screenshot(path=str(artifacts / 'ranking-city.png'), full_page=True)
    with page.expect_download() as download:
        page.get_by_role('link', name='导出 Excel').click()
    assert download.value.suggested_filename == 'ranking-430900-2025-10.xlsx'
    problems.assert_none(page)
