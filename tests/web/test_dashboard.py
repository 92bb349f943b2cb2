"""统计 and 工作评比 pages: who may open what, periods, the figures shown, drill-down, exports, weights, publishing.

The data is the October 2025 scenario of the engine tests (tests/engine/statistics_support.py); the clock
stands at 2025-11-05, so the default period is October 2025.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.models.audit import AuditEvent
from engine.models.ranking import RankingSnapshot, RankingWeight
from engine.models.users import User
from engine.ranking import MEASURE_KEYS
from tests.engine.statistics_support import October, build_october
from tests.fixtures.directory import Org
from tests.web.conftest import page, post_form, text_of


def css(element: Any, selector: str) -> list[Any]:
    """The descendants of ``element`` matching a simple CSS selector: ``tag.class#id[attr]`` steps joined by
    spaces or ``>`` (lxml's own ``cssselect`` needs a package this project does not install)."""
    xpath, axis = '.', '//'
    for token in selector.replace('>', ' > ').split():
        if token == '>':
            axis = '/'
            continue
        xpath, axis = xpath + axis + _step(token), '//'
    return list(element.xpath(xpath))


def _step(token: str) -> str:
    tag, rest = re.fullmatch(r'([a-z0-9]*)(.*)', token).groups()  # type: ignore[union-attr]
    tests = {'.': "contains(concat(' ', normalize-space(@class), ' '), ' {} ')", '#': "@id='{}'", '[': '@{}'}
    found = re.findall(r'([.#\[])([\w-]+)', rest)
    return (tag or '*') + ''.join(f'[{tests[kind].format(name)}]' for kind, name in found)


@pytest.fixture
def october(session: Session, clock: FrozenClock, org: Org, people: dict[str, User],
            deploy_file: Callable[[str], object], create_member: Callable[..., User]) -> October:
    create_member('chief', 'supervisor', org.county)
    create_member('city_chief', 'supervisor', org.city)
    create_member('province_chief', 'supervisor', org.province)
    create_member('admin', 'admin', org.province)
    return build_october(session, clock, org, people, deploy_file)


# -- who may open what ----------------------------------------------------------------------------------------

ACCESS = [
    # (user, path, status, redirect target)
    ('staff', '/dashboard', 403, None),
    ('staff', '/dashboard/430922', 403, None),
    ('staff', '/ranking', 403, None),
    ('staff', '/ranking/430900', 403, None),
    ('staff', '/ranking/430900/weights', 403, None),
    ('chief', '/dashboard', 302, '/dashboard/430922'),
    ('chief', '/dashboard/430922', 200, None),
    ('chief', '/dashboard/430922101', 200, None),
    ('chief', '/dashboard/430900', 404, None),       # 桃江's supervisor cannot open 益阳市
    ('chief', '/dashboard/430903', 404, None),       # nor the neighbouring county
    ('chief', '/dashboard/999999', 404, None),
    ('chief', '/ranking', 403, None),                # a county ranks nothing
    ('chief', '/ranking/430922', 404, None),
    ('chief', '/ranking/430900', 404, None),
    ('chief', '/ranking/430900/weights', 404, None),
    ('city_chief', '/dashboard', 302, '/dashboard/430900'),
    ('city_chief', '/dashboard/430900', 200, None),
    ('city_chief', '/dashboard/430903101', 200, None),
    ('city_chief', '/dashboard/430000', 404, None),
    ('city_chief', '/ranking', 302, '/ranking/430900'),
    ('city_chief', '/ranking/430900', 200, None),
    ('city_chief', '/ranking/430922', 404, None),    # a county has no ranking page
    ('city_chief', '/ranking/430000', 404, None),
    ('city_chief', '/ranking/430000/weights', 404, None),
    ('city_chief', '/ranking/430900/export.csv', 200, None),
    ('city_chief', '/ranking/430900/export.pdf', 404, None),
    ('province_chief', '/ranking', 302, '/ranking/430000'),
    ('province_chief', '/ranking/430900', 200, None),
    ('admin', '/dashboard', 403, None),
    ('admin', '/ranking', 302, '/ranking/430000/weights'),
    ('admin', '/ranking/430900', 403, None),
    ('admin', '/ranking/430900/weights', 200, None),
]


@pytest.mark.parametrize(('user', 'path', 'status', 'target'), ACCESS)
def test_access(client_for: Callable[[str], FlaskClient], october: October, user: str, path: str, status: int,
                target: str | None) -> None:
    response = client_for(user).get(path)
    assert response.status_code == status
    if target is not None:
        assert response.headers['Location'] == target


@pytest.mark.parametrize('path', ['/dashboard', '/dashboard/430922', '/ranking', '/ranking/430900/weights'])
def test_anonymous_is_sent_to_log_in(client: FlaskClient, october: October, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response.headers['Location'].startswith('/login')


@pytest.mark.parametrize(('user', 'links'), [('staff', []), ('chief', ['统计']), ('city_chief', ['统计', '工作评比']),
                                             ('admin', ['工作评比'])])
def test_header_links(client_for: Callable[[str], FlaskClient], october: October, user: str,
                      links: list[str]) -> None:
    nav = css(page(client_for(user).get('/tasks')), '.main-nav a')
    assert [text_of(a) for a in nav if text_of(a) in ('统计', '工作评比')] == links


# -- periods ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(('query', 'message'), [
    ('period=2025-13', '请选择上月'),
    ('period=soon', '请选择上月'),
    ('period=2026-01', '所选期间尚未开始'),
    ('period=custom&from=2025-10-40&to=2025-10-31', 'YYYY-MM-DD'),
    ('period=custom&from=2025-10-31&to=2025-10-01', '结束日期不能早于开始日期'),
])
def test_bad_period_is_a_400_saying_why(client_for: Callable[[str], FlaskClient], october: October, query: str,
                                        message: str) -> None:
    response = client_for('city_chief').get(f'/dashboard/430900?{query}')
    assert response.status_code == 400 and message in response.get_data(as_text=True)


@pytest.mark.parametrize('query', ['month=2025/10', 'month=2025-13', 'month=2026-02'])
def test_bad_month_is_a_400(client_for: Callable[[str], FlaskClient], october: October, query: str) -> None:
    assert client_for('city_chief').get(f'/ranking/430900?{query}').status_code == 400


def test_own_dashboard_keeps_the_period(client_for: Callable[[str], FlaskClient], october: October) -> None:
    response = client_for('chief').get('/dashboard?period=2025-Q3&other=x')
    assert response.headers['Location'] == '/dashboard/430922?period=2025-Q3'


# -- the dashboard ----------------------------------------------------------------------------------------------

def _cards(html: object) -> dict[str, str]:
    return {text_of(css(card, '.stat-label')[0]): text_of(css(card, '.stat-value')[0])
            for card in css(html, '.stat-card')}


def test_city_dashboard_shows_the_october_figures(client_for: Callable[[str], FlaskClient], october: October) -> None:
    html = page(client_for('city_chief').get('/dashboard/430900'))
    assert '2025年10月' in text_of(css(html, 'h1')[0])
    cards = _cards(html)
    assert (cards['新收案件'], cards['办结案件'], cards['在办任务'], cards['逾期任务']) == ('4', '5', '5', '3')
    assert (cards['按期办结率'], cards['调解成功率'], cards['零脱管']) == ('60.0%', '66.7%', '否')
    assert cards['平均办理时长'] == '36.8 小时'  # 184 hours over 5 tasks


def test_children_link_down_with_the_period(client_for: Callable[[str], FlaskClient], october: October) -> None:
    client = client_for('city_chief')
    html = page(client.get('/dashboard/430900?period=2025-Q4'))
    rows = {text_of(css(r, 'th')[0]): [text_of(td) for td in css(r, 'td')]
            for r in css(html, '.stats-table tbody tr')}
    assert rows['桃江县司法局'][:6] == ['3', '5', '2', '1', '50.0%', '66.7%']
    assert rows['赫山区司法局'][5] == '—'  # no mediation closed: no rate
    links = {text_of(a): a.get('href') for a in css(html, '.stats-table tbody a')}
    link = links['桃江县司法局']
    assert link == '/dashboard/430922?period=2025-Q4'
    county = page(client.get(link))
    assert [text_of(a) for a in css(county, '.breadcrumb a')] == ['益阳市司法局']
    rows = [text_of(css(r, 'th')[0]) for r in css(county, '.stats-table tbody tr')]
    assert rows == ['桃花江镇司法所', '本级']


def test_county_supervisor_sees_no_breadcrumb_above_their_unit(client_for: Callable[[str], FlaskClient],
                                                               october: October) -> None:
    html = page(client_for('chief').get('/dashboard/430922101'))
    assert [text_of(a) for a in css(html, '.breadcrumb a')] == ['桃江县司法局']


def test_charts_carry_their_data(client_for: Callable[[str], FlaskClient], october: October) -> None:
    html = page(client_for('city_chief').get('/dashboard/430900'))
    charts = {c.get('id'): json.loads(c.get('data-chart')) for c in css(html, 'canvas[data-chart]')}
    assert set(charts) == {'chart-cases', 'chart-rates', 'chart-steps'}
    cases = charts['chart-cases']['data']
    assert cases['labels'] == ['赫山区司法局', '桃江县司法局']
    assert [d['data'] for d in cases['datasets']] == [[1, 3], [0, 5]]
    assert charts['chart-rates']['data']['datasets'][1]['data'] == [None, 66.7]


def test_heatmap_rows_per_step(client_for: Callable[[str], FlaskClient], october: October) -> None:
    html = page(client_for('city_chief').get('/dashboard/430900'))
    rows = {text_of(css(r, 'th')[0]): r for r in css(html, '.heatmap tbody tr')}
    register = [text_of(td) for td in css(rows['登记案件情况'], 'td')]
    assert register == ['案件登记与审核（演示）', '2', '30.0 小时', '36.0 小时', '36.0 小时', '24.0 小时']
    cell = css(rows['登记案件情况'], 'td')[3]
    assert 'heat-3' in cell.get('class')  # a day to three days
    assert 'style' not in cell.attrib  # colours by class: the CSP forbids inline styles


def test_empty_period(client_for: Callable[[str], FlaskClient], october: October) -> None:
    html = page(client_for('city_chief').get('/dashboard/430900?period=2025-03'))
    assert _cards(html)['按期办结率'] == '—'
    assert '本期没有办结的任务' in text_of(html)


# -- the ranking ------------------------------------------------------------------------------------------------

def test_ranking_page_explains_each_score(client_for: Callable[[str], FlaskClient], october: October) -> None:
    html = page(client_for('city_chief').get('/ranking/430900'))
    rows = css(html, '.ranking-table > tbody > tr')
    assert [(text_of(css(r, '.rank')[0]), text_of(css(r, 'th a')[0]), text_of(css(r, '.score')[0]))
            for r in rows] == [('1', '桃江县司法局', '58.33'), ('2', '赫山区司法局', '45.83')]
    explain = {text_of(css(tr, 'th')[0]): [text_of(td) for td in css(tr, 'td')]
               for tr in css(rows[1], '.explain-table tbody tr')}
    assert explain['调解成功率'][:5] == ['—', '—', '20', '—', '—']
    assert '无数据' in explain['调解成功率'][5]
    assert explain['按期办结率'][:5] == ['66.7%', '0.6667', '30', '37.50%', '25.00']
    assert text_of(css(rows[1], '.explain-table tfoot td')[0]) == '45.83'
    assert '发布本月结果' in text_of(html)


def _export(client: FlaskClient, fmt: str) -> list[list[object]]:
    response = client.get(f'/ranking/430900/export.{fmt}?month=2025-10')
    assert response.status_code == 200
    assert 'attachment; filename="ranking-430900-2025-10.' in response.headers['Content-Disposition']
    if fmt == 'csv':
        text = response.get_data().decode('utf-8')
        assert text.startswith('\ufeff')
        return list(csv.reader(io.StringIO(text[1:])))
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_csv_export_parses_back(client_for: Callable[[str], FlaskClient], october: October) -> None:
    rows = _export(client_for('city_chief'), 'csv')
    assert rows[0][:4] == ['名次', '单位代码', '单位', '得分'] and rows[0][5] == '按期办结率：原始值'
    assert [r[:4] for r in rows[1:]] == [['1', '430922', '桃江县司法局', '58.33'],
                                         ['2', '430903', '赫山区司法局', '45.83']]
    assert rows[2][5:9] == ['0.6667', '0.6667', '37.5', '25.0']


def test_xlsx_export_parses_back(client_for: Callable[[str], FlaskClient], october: October) -> None:
    rows = _export(client_for('city_chief'), 'xlsx')
    assert rows[0][:4] == ['名次', '单位代码', '单位', '得分']
    assert [r[:4] for r in rows[1:]] == [[1, '430922', '桃江县司法局', 58.33], [2, '430903', '赫山区司法局', 45.83]]
    assert rows[2][13] is None  # 赫山's mediation rate: no data, an empty cell, not 0


# -- weights ------------------------------------------------------------------------------------------------

def _weights(**changes: str) -> dict[str, str]:
    return {key: '0' for key in MEASURE_KEYS} | changes


def test_setting_weights_reranks_and_is_audited(client_for: Callable[[str], FlaskClient], october: October,
                                                session: Session) -> None:
    client = client_for('city_chief')
    response = post_form(client, '/ranking/430900/weights', _weights(on_time_rate='1'), token_from='/ranking/430900')
    assert response.status_code == 302 and response.headers['Location'] == '/ranking/430900'
    html = page(client.get('/ranking/430900'))
    assert [text_of(css(r, '.score')[0]) for r in css(html, '.ranking-table > tbody > tr')] == [
        '66.67', '50.00']
    assert '由本单位设置' in text_of(html)
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'ranking.weights_changed')).one()
    assert event.after['on_time_rate'] == '1.00'


def test_bad_weights_say_which_and_change_nothing(client_for: Callable[[str], FlaskClient], october: October,
                                                  session: Session) -> None:
    client = client_for('city_chief')
    response = post_form(client, '/ranking/430900/weights', _weights(on_time_rate='-3', overdue_rate='abc'),
                         token_from='/ranking/430900')
    assert response.status_code == 400
    html = page(response)
    errors = {css(e.getparent(), 'input')[0].get('name') for e in css(html, '.field-error')}
    assert errors == {'on_time_rate', 'overdue_rate'}
    assert css(html, '#w-overdue_rate')[0].get('value') == 'abc'
    all_zero = post_form(client, '/ranking/430900/weights', _weights(), token_from='/ranking/430900')
    assert all_zero.status_code == 400 and '权重之和必须大于 0' in all_zero.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(RankingWeight)) == 0


def test_weights_need_the_csrf_token(client_for: Callable[[str], FlaskClient], october: October,
                                     session: Session) -> None:
    response = client_for('city_chief').post('/ranking/430900/weights', data=_weights(on_time_rate='1'))
    assert response.status_code == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(RankingWeight)) == 0


def test_admin_sets_weights_without_seeing_the_ranking(client_for: Callable[[str], FlaskClient],
                                                       october: October) -> None:
    client = client_for('admin')
    response = post_form(client, '/ranking/430900/weights', _weights(on_time_rate='2'),
                         token_from='/ranking/430900/weights')
    assert response.headers['Location'] == '/ranking/430900/weights'


# -- publishing --------------------------------------------------------------------------------------------------

def test_publishing_freezes_the_month(client_for: Callable[[str], FlaskClient], october: October,
                                      session: Session) -> None:
    client = client_for('city_chief')
    response = post_form(client, '/ranking/430900/publish', {'month': '2025-10'}, token_from='/ranking/430900')
    assert response.status_code == 302 and response.headers['Location'] == '/ranking/430900?month=2025-10'
    post_form(client, '/ranking/430900/weights', _weights(on_time_rate='1'), token_from='/ranking/430900')
    html = page(client.get('/ranking/430900?month=2025-10'))
    assert '发布并冻结' in text_of(html) and '发布本月结果' not in text_of(html)
    assert [text_of(css(r, '.score')[0]) for r in css(html, '.ranking-table > tbody > tr')] == [
        '58.33', '45.83']
    again = post_form(client, '/ranking/430900/publish', {'month': '2025-10'}, token_from='/ranking/430900')
    assert again.status_code == 302
    assert '已经发布' in text_of(page(client.get(again.headers['Location'])))
    assert session.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 1


@pytest.mark.parametrize(('user', 'path', 'month', 'status'), [
    ('chief', '/ranking/430900/publish', '2025-10', 404),
    ('staff', '/ranking/430900/publish', '2025-10', 302),  # refused like every action: a flash, and back
    ('city_chief', '/ranking/430000/publish', '2025-10', 404),
])
def test_publishing_is_for_the_units_supervisors(client_for: Callable[[str], FlaskClient], october: October,
                                                 session: Session, user: str, path: str, month: str,
                                                 status: int) -> None:
    response = post_form(client_for(user), path, {'month': month})
    assert response.status_code == status
    assert session.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 0


@pytest.mark.parametrize('month', ['2025-11', 'x'])
def test_a_running_or_bad_month_is_not_published(client_for: Callable[[str], FlaskClient], october: October,
                                                 session: Session, month: str) -> None:
    client = client_for('city_chief')
    response = post_form(client, '/ranking/430900/publish', {'month': month}, token_from='/ranking/430900')
    assert response.status_code == 302
    assert session.scalar(sa.select(sa.func.count()).select_from(RankingSnapshot)) == 0
