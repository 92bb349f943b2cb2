"""The to-do list at Camunda Tasklist level: tabs with capped counts, filters in the URL, sorting, keyset
paging, saved filters, marked rows (监控预警, due words, masked ID numbers) and bulk claim and assign."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from lxml import html
from sqlalchemy.orm import Session

from engine import runtime
from engine import tasks as engine_tasks
from engine.clock import FrozenClock
from engine.models.cases import Case
from engine.models.filters import SavedFilter
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import page, post_form, text_of
from tests.workflows.corrections.conftest import reception_data
from web.tasks.util import DEFERRED_VIEWS

ID_SHAPE = re.compile(r'[0-9]{17}[0-9Xx]')

Clients = Callable[[str], FlaskClient]

CHECK = 'tests/web/bpmn/todo_check.bpmn'
DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
XIE_ID = '431381198503120015'
LI_ID = '430922199007010022'


@dataclass
class Todo:
    """Starts cases whose tasks land in the township's group queue, on the frozen clock (2025-09-26 09:00)."""

    session: Session
    org: Org
    actor: User

    def check(self, name: str, received_on: str, *, colour: str | None = None, id_number: str | None = None,
              unit: str = 'township') -> HumanTask:
        """A 核查风险 task, due 10 working days after ``received_on``."""
        data: dict[str, Any] = {'person_name': name, 'received_on': received_on}
        if colour:
            data['risk_colour'] = colour
        if id_number:
            data['id_number'] = id_number
        _, [task] = runtime.start_case(self.session, 'web_check', data, actor=self.actor,
                                       org_unit=getattr(self.org, unit))
        self.session.commit()
        return task

    def register(self, name: str) -> HumanTask:
        """A demo case's 登记案件情况 (another process and stage, no due date)."""
        _, [task] = runtime.start_case(self.session, 'demo_intake', {'person_name': name, 'received_on': '2025-09-26'},
                                       actor=self.actor, org_unit=self.org.township)
        self.session.commit()
        return task


@pytest.fixture
def todo(session: Session, org: Org, people: dict[str, User], clock: FrozenClock,
         deploy_file: Callable[[str], object]) -> Todo:
    deploy_file(CHECK)
    deploy_file(DEMO)
    return Todo(session, org, people['staff'])


def _doc(client: FlaskClient, path: str, status: int = 200) -> html.HtmlElement:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return page(response)


def _tabs(doc: html.HtmlElement) -> dict[str, str]:
    """Each tab's view and its count as shown (links, or buttons posting the view when the search is private)."""
    tabs = doc.xpath('//nav[contains(@class, "tabs")]/a')
    counts = {tab.get('href').split('view=')[1]: tab.xpath('.//span[@class="count"]')[0].text for tab in tabs}
    for form in doc.xpath('//nav[contains(@class, "tabs")]/form'):
        [view] = form.xpath('.//input[@name="view"]/@value')
        counts[view] = form.xpath('.//span[@class="count"]')[0].text
    return counts


def _list_doc(client: FlaskClient, query: str) -> html.HtmlElement:
    """The list for ``query``: through the address, or posted when the search text is an ID number (which the
    address refuses)."""
    args = dict(parse_qsl(query))
    if ID_SHAPE.fullmatch(args.get('text', '')):
        response = post_form(client, '/tasks', args)
        assert response.status_code == 200, response.get_data(as_text=True)[:2000]  # type: ignore[attr-defined]
        return page(response)
    return _doc(client, f'/tasks?{query}')


def _names(doc: html.HtmlElement) -> list[str]:
    """The person names of the rows, in order."""
    return [td.text.strip() for td in doc.xpath('//tbody/tr/td[contains(@class, "cell-person")]')]


def _row(doc: html.HtmlElement, name: str) -> html.HtmlElement:
    [row] = [tr for tr in doc.xpath('//tbody/tr') if tr.xpath('td[contains(@class, "cell-person")]')[0].text.strip()
             == name]
    return row


def _field_errors(doc: html.HtmlElement, input_id: str) -> list[str]:
    """The messages shown beside the input ``input_id``."""
    field = doc.xpath(f'//div[contains(@class, "field")][.//*[@id="{input_id}"]]')[-1]
    return [text_of(span) for span in field.xpath('.//p[@class="field-error"]/span')]


def _flash(doc: html.HtmlElement) -> str:
    return ' '.join(text_of(div) for div in doc.xpath('//div[@class="flashes"]/div'))


# -- tabs and counts ---------------------------------------------------------------------------------------

def test_tabs_show_every_view_with_its_count(client_for: Clients, todo: Todo, clock: FrozenClock,
                                            session: Session) -> None:
    todo.check('谢某某', '2025-09-09')  # overdue since 2025-09-23
    mine = todo.check('李某某', '2025-09-12')  # due today: within the three days of 即将到期
    post_form(client_for('staff'), f'/tasks/{mine.id}/claim', {})
    doc = _doc(client_for('staff'), '/tasks')
    assert _tabs(doc) == {'mine': '1', 'group': '1', 'due_soon': '1', 'overdue': '1', 'escalated': '0', 'all': '2',
                          'completed': '0'}
    labels = [text_of(tab).split(' ')[0] for tab in doc.xpath('//nav[contains(@class, "tabs")]/a')]
    assert labels == ['我的待办', '组内待认领', '即将到期', '已逾期', '升级给我', '全部可见', '最近办结']
    alert = {tab.get('href').split('view=')[1] for tab in doc.xpath('//nav[contains(@class, "tabs")]/a')
             if 'tab-alert' in tab.get('class')}
    assert alert == {'overdue'}  # escalated is empty, so not red


def test_counts_stop_at_the_cap(client_for: Clients, todo: Todo, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ('甲某', '乙某', '丙某', '丁某'):
        todo.check(name, '2025-09-16')
    monkeypatch.setattr('engine.tasks.COUNT_CAP', 2)
    limits: list[int | None] = []
    counted = engine_tasks._count

    def spy(session: Session, scope: Any, view: str, task_filter: Any, cap: int | None) -> Any:
        limits.append(cap)
        return counted(session, scope, view, task_filter, cap)

    monkeypatch.setattr('engine.tasks._count', spy)
    tabs = _tabs(_doc(client_for('staff'), '/tasks'))
    assert tabs['group'] == '2+' and tabs['all'] == '2+' and tabs['mine'] == '0'
    assert limits and set(limits) == {2}  # every count was asked to stop at the cap


def test_wide_tabs_of_a_supervisor_or_county_officer_are_counted_after_the_page(
        client_for: Clients, todo: Todo, org: Org, chief: User, create_member: Callable[..., User]) -> None:
    todo.check('谢某某', '2025-09-09', colour='red')  # overdue since 2025-09-23
    todo.check('李某某', '2025-09-16', colour='green')
    create_member('city_chief', 'supervisor', org.city)
    client = client_for('city_chief')
    doc = _doc(client, '/tasks?risk_colour=red')
    tabs = _tabs(doc)
    assert {view for view, count in tabs.items() if count == '…'} == set(DEFERRED_VIEWS)
    assert tabs['mine'] == '0' and tabs['completed'] == '0'
    [nav] = doc.xpath('//nav[contains(@class, "tabs")]')
    url = nav.get('data-counts-url')
    assert url.startswith('/api/v1/tasks/counts') and dict(parse_qsl(url.split('?')[1])) == {'risk_colour': 'red'}
    counts = client.get(url).get_json()['counts']
    assert {view: counts[view] for view in DEFERRED_VIEWS} == {'due_soon': 0, 'overdue': 1, 'escalated': 0, 'all': 1}
    # A county's supervisor too, and a county officer, whose "all" is every open task of the county; township
    # staff have every count in the page, and nothing is left for a script to ask.
    for reader in ('chief', 'officer'):
        assert {view for view, count in _tabs(_doc(client_for(reader), '/tasks')).items() if count == '…'} == \
            set(DEFERRED_VIEWS)
    staff = _doc(client_for('staff'), '/tasks?risk_colour=red')
    assert '…' not in _tabs(staff).values()
    assert staff.xpath('//nav[contains(@class, "tabs")]')[0].get('data-counts-url') is None


def test_counts_follow_the_filter(client_for: Clients, todo: Todo) -> None:
    todo.check('谢某某', '2025-09-16', colour='red')
    todo.check('李某某', '2025-09-16', colour='green')
    assert _tabs(_doc(client_for('staff'), '/tasks?risk_colour=red'))['group'] == '1'
    assert _tabs(_doc(client_for('staff'), '/tasks'))['group'] == '2'


# -- filters -------------------------------------------------------------------------------------------------

@pytest.fixture
def mixed(todo: Todo, clock: FrozenClock) -> dict[str, HumanTask]:
    """Four township tasks: two 核查风险 (red due 09-26, green due 09-29), a demo 登记 a day later (due a
    year after), and a task at the other township that staff never see."""
    tasks = {'xie': todo.check('谢某某', '2025-09-12', colour='red', id_number=XIE_ID),
             'li': todo.check('李某某', '2025-09-16', colour='green', id_number=LI_ID)}
    clock.advance(timedelta(days=1))
    tasks['wang'] = todo.register('王某某')
    tasks['far'] = todo.check('谢远方', '2025-09-16', colour='red', unit='other_township')
    clock.advance(timedelta(days=-1))
    return tasks


@pytest.mark.parametrize(('query', 'names'), [
    ('', ['谢某某', '李某某', '王某某']),
    ('process=web_check', ['谢某某', '李某某']),
    ('process=demo_intake', ['王某某']),
    ('stage=register', ['王某某']),
    ('stage=check', ['谢某某', '李某某']),
    ('org_unit=430922101', ['谢某某', '李某某', '王某某']),
    ('risk_colour=red', ['谢某某']),
    ('risk_colour=green', ['李某某']),
    ('due_from=2025-09-27', ['李某某', '王某某']),
    ('due_to=2025-09-26', ['谢某某']),
    ('due_from=2025-09-26&due_to=2025-09-29', ['谢某某', '李某某']),
    ('created_from=2025-09-27', ['王某某']),
    ('created_to=2025-09-26', ['谢某某', '李某某']),
    ('text=谢', ['谢某某']),
    ('text=王某', ['王某某']),
    (f'text={XIE_ID}', ['谢某某']),
    (f'text={XIE_ID.lower()[:17]}x', []),  # not its number: an ID number matches exactly
    ('text=4313811985', []),  # the start of an ID number finds nothing
    ('process=web_check&risk_colour=green', ['李某某']),
])
def test_each_filter_narrows_the_list(client_for: Clients, mixed: dict[str, HumanTask], query: str,
                                      names: list[str]) -> None:
    doc = _list_doc(client_for('staff'), f'view=group&{query}')
    assert sorted(_names(doc)) == sorted(names)
    assert _tabs(doc)['group'] == str(len(names))


def test_case_number_search(client_for: Clients, session: Session, mixed: dict[str, HumanTask]) -> None:
    number = session.get(Case, mixed['li'].case_id).number
    assert _names(_doc(client_for('staff'), f'/tasks?view=group&text={number}')) == ['李某某']
    assert sorted(_names(_doc(client_for('staff'), f'/tasks?view=group&text={number[:3]}'))) == ['李某某', '谢某某']


def test_id_numbers_are_masked_in_the_list(client_for: Clients, mixed: dict[str, HumanTask]) -> None:
    doc = _list_doc(client_for('staff'), f'view=group&text={XIE_ID}')
    row = _row(doc, '谢某某')
    assert text_of(row.xpath('.//span[contains(@class, "id-number")]')[0]) == '公民身份号码 431381********0015'
    table = text_of(doc.xpath('//table')[0])
    assert XIE_ID not in table and LI_ID not in table
    # the search box keeps what was typed, so the search can be changed
    assert doc.xpath('//input[@id="filter-text"]/@value') == [XIE_ID]


def test_the_filter_form_keeps_every_value(client_for: Clients, mixed: dict[str, HumanTask]) -> None:
    doc = _doc(client_for('staff'), '/tasks?view=group&process=web_check&stage=check&risk_colour=red'
                                    '&due_from=2025-09-01&due_to=2025-10-31&sort=priority')
    form = doc.xpath('//form[@role="search"]')[0]
    assert form.get('method') == 'post'  # the search text may be an ID number, never put in an address
    assert form.xpath('.//input[@name="view"]/@value') == ['group']
    for name, value in (('process', 'web_check'), ('stage', 'check'), ('risk_colour', 'red'), ('sort', 'priority')):
        assert form.xpath(f'.//select[@name="{name}"]/option[@selected]/@value') == [value], name
    assert form.xpath('.//input[@name="due_from"]/@value') == ['2025-09-01']
    # the process select lists the deployed processes; the stage select that process's user tasks
    assert form.xpath('.//select[@name="process"]/option/text()') == ['全部流程', '案件登记与审核（演示）',
                                                                       '风险核查（页面测试）']
    assert form.xpath('.//select[@name="stage"]/option/text()') == ['全部环节', '核查风险']
    assert form.xpath('.//select[@name="org_unit"]/option/@value') == ['', '430922101']
    clear = doc.xpath('//a[normalize-space()="清除筛选"]/@href')[0]
    assert clear == '/tasks?view=group&sort=priority'
    for element in form.xpath('.//input[not(@type="hidden")] | .//select'):
        assert doc.xpath(f'//label[@for="{element.get("id")}"]'), element.get('name')


def test_a_supervisor_narrows_to_one_unit_of_the_subtree(client_for: Clients, todo: Todo, chief: User) -> None:
    todo.check('谢某某', '2025-09-16')
    todo.check('县某某', '2025-09-16', unit='county')
    chief_client = client_for('chief')
    assert sorted(_names(_doc(chief_client, '/tasks?view=all'))) == ['县某某', '谢某某']
    assert _names(_doc(chief_client, '/tasks?view=all&org_unit=430922101')) == ['谢某某']
    assert sorted(_names(_doc(chief_client, '/tasks?view=all&org_unit=430922'))) == ['县某某', '谢某某']
    units = _doc(chief_client, '/tasks?view=all').xpath('//select[@name="org_unit"]/option/@value')
    assert units == ['', '430922', '430922101']  # the county and its township, nothing outside


def test_a_unit_outside_the_subtree_is_a_400_beside_the_field(client_for: Clients, mixed: dict[str, HumanTask]) -> None:
    for code in ('430922', '430903101', 'nowhere'):
        doc = _doc(client_for('staff'), f'/tasks?view=group&org_unit={code}', status=400)
        assert _field_errors(doc, 'filter-unit') == ['该机构不在您的辖区内。']
        assert '筛选条件有误' in text_of(doc.xpath('//div[contains(@class, "alert-error")]')[0])
        assert doc.xpath('//tbody/tr') == []
        assert doc.xpath('//select[@name="org_unit"]/option[@selected]/@value') == [code]  # nothing lost


def test_wrong_dates_and_sort_are_400_with_messages(client_for: Clients, mixed: dict[str, HumanTask]) -> None:
    doc = _doc(client_for('staff'), '/tasks?due_from=2025-13-01&created_from=2025-10-02&created_to=2025-10-01'
                                    '&risk_colour=purple&org_unit=430922&sort=random', status=400)
    assert _field_errors(doc, 'filter-due-from') == ['请按“年-月-日”填写日期。']
    assert _field_errors(doc, 'filter-unit') == ['该机构不在您的辖区内。']
    assert _field_errors(doc, 'filter-sort') == ['排序方式无效']
    assert _field_errors(doc, 'filter-created-to') == ['结束日期不能早于开始日期。']
    assert _field_errors(doc, 'filter-colour') == ['可选值：red, yellow, green。']
    doc = _doc(client_for('staff'), '/tasks?sort=random', status=400)
    assert _field_errors(doc, 'filter-sort') == ['排序方式无效']


# -- sorting and paging ---------------------------------------------------------------------------------------

@pytest.fixture
def sortable(todo: Todo, clock: FrozenClock) -> None:
    """Arrival order 甲 乙 丙 丁; due order 丙 甲 乙 (丁 has none); urgency (colour weight) 乙 丙 甲 丁."""
    todo.check('甲某', '2025-09-12', colour='green')  # due 09-26
    clock.advance(timedelta(hours=1))
    todo.check('乙某', '2025-09-16', colour='red')  # due 09-29
    clock.advance(timedelta(hours=1))
    todo.check('丙某', '2025-09-09', colour='yellow')  # due 09-23
    clock.advance(timedelta(hours=1))
    todo.register('丁某')


@pytest.mark.parametrize(('sort', 'names'), [
    ('', ['丙某', '甲某', '乙某', '丁某']),
    ('due', ['丙某', '甲某', '乙某', '丁某']),
    ('priority', ['乙某', '丙某', '甲某', '丁某']),
    ('created', ['丁某', '丙某', '乙某', '甲某']),
])
def test_sort_orders(client_for: Clients, sortable: None, sort: str, names: list[str]) -> None:
    assert _names(_doc(client_for('staff'), f'/tasks?view=group&sort={sort}')) == names


def test_the_next_page_keeps_view_filters_and_sort(client_for: Clients, sortable: None, todo: Todo,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr('web.tasks.controllers.PAGE_SIZE', 2)
    staff = client_for('staff')
    first = _doc(staff, '/tasks?view=group&process=web_check&sort=priority')
    assert _names(first) == ['乙某', '丙某']
    next_link = first.xpath('//a[@rel="next"]/@href')[0]
    assert 'process=web_check' in next_link and 'sort=priority' in next_link and 'view=group' in next_link
    assert 'cursor=' in next_link
    second = _doc(staff, next_link)
    assert _names(second) == ['甲某']  # 丁某 is another process: filtered out on page two as well
    assert second.xpath('//a[@rel="next"]') == []
    assert second.xpath('//select[@name="process"]/option[@selected]/@value') == ['web_check']
    back = second.xpath('//a[normalize-space()="回到第一页"]/@href')[0]
    assert 'cursor' not in back and _names(_doc(staff, back)) == ['乙某', '丙某']
    # the tabs keep the filters too
    tab = second.xpath('//nav[contains(@class, "tabs")]/a[contains(@href, "view=all")]/@href')[0]
    assert tab == '/tasks?process=web_check&sort=priority&view=all'


# -- rows -------------------------------------------------------------------------------------------------------

def test_due_words_on_the_frozen_clock(client_for: Clients, todo: Todo) -> None:
    todo.check('今日', '2025-09-12')  # due 2025-09-26: today
    todo.check('两日', '2025-09-16')  # due 2025-09-29: the 28th (a 调休 Sunday) and the 29th are working days
    todo.check('逾期', '2025-09-09')  # due 2025-09-23
    doc = _doc(client_for('staff'), '/tasks?view=group')
    words = {name: text_of(_row(doc, name).xpath('.//span[contains(@class, "due-left")]')[0])
             for name in ('今日', '两日', '逾期')}
    assert words == {'今日': '今天到期', '两日': '剩 2 个工作日', '逾期': '逾期 3 天'}
    tones = {name: _row(doc, name).xpath('.//span[contains(@class, "due ")]/@class')[0].split()[-1]
             for name in words}
    assert tones == {'今日': 'due-today', '两日': 'due-soon', '逾期': 'due-overdue'}
    assert 'row-overdue' in _row(doc, '逾期').get('class') and 'row-overdue' not in _row(doc, '今日').get('class')


def test_a_monitoring_alarm_row_stands_out(client_for: Clients, session: Session, todo: Todo, org: Org,
                                          people: dict[str, User], deploy_file: Callable[[str], object]) -> None:
    deploy_file('bpmn/corrections/reception.bpmn')
    deploy_file('bpmn/corrections/alarm.bpmn')
    case, _ = runtime.start_case(session, 'corrections_reception', reception_data(person_name='李矫正'),
                                 actor=people['officer'], org_unit=org.township)
    runtime.start_case(session, 'corrections_alarm', {'case_id': case.id, 'alarm_type': '越界',
                                                      'occurred_at': '2025-09-26T08:15:00'},
                       actor=people['staff'], org_unit=org.township)
    session.commit()
    todo.check('谢某某', '2025-09-16')
    doc = _doc(client_for('staff'), '/tasks?view=group&sort=priority')
    alarm, plain = _row(doc, '李矫正'), _row(doc, '谢某某')
    assert 'row-alarm' in alarm.get('class') and 'row-alarm' not in (plain.get('class') or '')
    assert text_of(alarm.xpath('.//span[contains(@class, "badge-alarm")]')[0]) == '⚠ 监控预警'
    assert plain.xpath('.//span[contains(@class, "badge-alarm")]') == []
    assert _names(doc)[0] == '李矫正'  # the most urgent first
    assert '监控报警' in text_of(alarm.xpath('.//a[@class="task-link"]')[0])


def test_colour_badges_carry_their_name(client_for: Clients, todo: Todo) -> None:
    todo.check('谢某某', '2025-09-16', colour='red')
    todo.check('李某某', '2025-09-16')
    doc = _doc(client_for('staff'), '/tasks?view=group')
    assert text_of(_row(doc, '谢某某').xpath('.//span[contains(@class, "badge-colour-red")]')[0]) == '红'
    assert _row(doc, '李某某').xpath('.//span[contains(@class, "badge-colour")]') == []


def test_the_completed_view_shows_when_and_no_actions(client_for: Clients, todo: Todo) -> None:
    task = todo.check('谢某某', '2025-09-16')
    staff = client_for('staff')
    assert post_form(staff, f'/tasks/{task.id}', {}).status_code == 302
    doc = _doc(staff, '/tasks?view=completed')
    assert _tabs(doc)['completed'] == '1'
    [row] = doc.xpath('//tbody/tr')
    assert text_of(row.xpath('td')[5]) == '2025年9月26日 09:00'
    assert row.xpath('.//input | .//button | .//form') == [] and doc.xpath('//form[@id="bulk-form"]') == []
    assert '办结时间' in [text_of(th) for th in doc.xpath('//thead//th')]


# -- saved filters ------------------------------------------------------------------------------------------------

def _save(client: FlaskClient, name: str, query: dict[str, str], share: str = '') -> Any:
    return post_form(client, '/tasks/filters', {'name': name, 'share_group': share, **query})


def _chips(doc: html.HtmlElement) -> dict[str, str]:
    """Saved filters above the tabs: name → count."""
    return {text_of(li.xpath('.//span[@class="chip-name"]')[0]): text_of(li.xpath('.//span[@class="count"]')[0])
            for li in doc.xpath('//ul[@class="chips"]/li')}


def test_a_personal_filter_is_mine_alone(client_for: Clients, session: Session, mixed: dict[str, HumanTask]) -> None:
    staff = client_for('staff')
    response = _save(staff, '红色预警', {'view': 'group', 'risk_colour': 'red', 'sort': 'priority'})
    saved = session.scalars(sa.select(SavedFilter)).one()
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks?filter={saved.id}'
    assert saved.criteria == {'risk_colour': 'red', 'sort': 'priority'} and saved.view == 'group'
    doc = _doc(staff, f'/tasks?filter={saved.id}')
    assert '已保存筛选“红色预警”' in _flash(doc)
    assert _chips(doc) == {'红色预警': '1'}
    assert doc.xpath('//li[contains(@class, "chip-active")]//a/@aria-current') == ['true']
    assert _names(doc) == ['谢某某']  # its view, filter and sort apply
    assert doc.xpath('//nav[contains(@class, "tabs")]/a[@aria-current="page"]/@href')[0].endswith('view=group')
    assert doc.xpath('//select[@name="sort"]/option[@selected]/@value') == ['priority']
    assert _chips(_doc(client_for('staff2'), '/tasks')) == {}
    assert client_for('staff2').get(f'/tasks?filter={saved.id}').status_code == 404


def test_a_shared_filter_reaches_the_group_with_its_count(client_for: Clients, session: Session,
                                                        mixed: dict[str, HumanTask]) -> None:
    staff = client_for('staff')
    share = _doc(staff, '/tasks').xpath('//select[@name="share_group"]/option/@value')
    assert share == ['', 'township_staff']  # the groups I hold
    response = _save(staff, '本所核查', {'view': 'group', 'process': 'web_check'}, share='township_staff')
    assert response.status_code == 302
    colleague = _doc(client_for('staff2'), '/tasks')
    assert _chips(colleague) == {'本所核查': '2'}
    assert 'chip-shared' in colleague.xpath('//ul[@class="chips"]/li/@class')[0]
    assert colleague.xpath('//form[contains(@class, "chip-delete")]') == []  # only the owner may delete
    assert _chips(_doc(client_for('officer'), '/tasks')) == {}  # another group
    assert _chips(_doc(client_for('outsider'), '/tasks')) == {}  # another township
    saved = session.scalars(sa.select(SavedFilter)).one()
    assert _names(_doc(client_for('staff2'), f'/tasks?filter={saved.id}')) == ['谢某某', '李某某']


def test_sharing_with_a_group_i_do_not_hold_is_refused(client_for: Clients, session: Session,
                                                      mixed: dict[str, HumanTask]) -> None:
    response = _save(client_for('staff'), '县里的', {'view': 'group'}, share='county_officer')
    assert response.status_code == 400
    doc = page(response)
    assert _field_errors(doc, 'save-filter-share') == ['只能共享给您所在的组。']
    assert doc.xpath('//details[@id="save-filter"][@open]')
    assert doc.xpath('//input[@name="name"]/@value') == ['县里的']
    assert session.scalars(sa.select(SavedFilter)).all() == []


def test_a_filter_needs_a_new_name(client_for: Clients, mixed: dict[str, HumanTask]) -> None:
    staff = client_for('staff')
    response = _save(staff, '', {'view': 'group'})
    assert response.status_code == 400
    assert _field_errors(page(response), 'save-filter-name') == ['请填写筛选名称。']
    assert _names(page(response)) == ['谢某某', '李某某', '王某某']  # the list is still there
    _save(staff, '全部', {'view': 'all'})
    assert _field_errors(page(_save(staff, '全部', {'view': 'group'})), 'save-filter-name') == ['您已有同名的筛选。']


def test_only_the_owner_deletes_a_filter(client_for: Clients, session: Session, mixed: dict[str, HumanTask]) -> None:
    staff = client_for('staff')
    _save(staff, '本所核查', {'view': 'group'}, share='township_staff')
    saved_id = session.scalars(sa.select(SavedFilter.id)).one()
    colleague = client_for('staff2')
    refused = post_form(colleague, f'/tasks/filters/{saved_id}/delete', {'return_to': '/tasks'})
    assert refused.status_code == 302
    assert '只有创建人可以删除该筛选。' in _flash(_doc(colleague, '/tasks'))
    assert post_form(client_for('outsider'), f'/tasks/filters/{saved_id}/delete', {}).status_code == 404
    session.expire_all()
    assert session.get(SavedFilter, saved_id) is not None
    done = post_form(staff, f'/tasks/filters/{saved_id}/delete', {'return_to': '/tasks?view=group'})
    assert done.status_code == 302 and done.headers['Location'] == '/tasks?view=group'
    assert '已删除筛选“本所核查”' in _flash(_doc(staff, '/tasks'))
    session.expire_all()
    assert session.get(SavedFilter, saved_id) is None


# -- bulk actions --------------------------------------------------------------------------------------------------

def _results(doc: html.HtmlElement) -> list[list[str]]:
    rows = doc.xpath('//table[contains(@class, "table-bulk")]/tbody/tr')
    return [[text_of(td) for td in tr.xpath('td')] for tr in rows]


def test_bulk_claim_lists_each_tasks_outcome(client_for: Clients, session: Session, todo: Todo,
                                             people: dict[str, User]) -> None:
    tasks = [todo.check(name, '2025-09-16') for name in ('甲某', '乙某', '丙某')]
    post_form(client_for('staff2'), f'/tasks/{tasks[1].id}/claim', {})
    staff = client_for('staff')
    doc = _doc(staff, '/tasks?view=group')
    assert doc.xpath('//label[@for="select-all"]/text()') == ['全选本页']
    assert all(doc.xpath(f'//label[@for="{box.get("id")}"]') for box in doc.xpath('//input[@name="task"]'))
    response = post_form(staff, '/tasks/bulk', {'action': 'claim', 'return_to': '/tasks?view=group',
                                                'task': [str(t.id) for t in tasks]})
    assert response.status_code == 200
    result = page(response)
    numbers = [session.get(Case, t.case_id).number for t in tasks]
    assert _results(result) == [[numbers[0], '核查风险', '成功'],
                                [numbers[1], '核查风险', '未成功 该任务已被他人认领或已办理。'],
                                [numbers[2], '核查风险', '成功']]
    assert '共 3 项：成功 2 项，未成功 1 项。' in text_of(result)
    assert result.xpath('//a[normalize-space()="返回待办"]/@href') == ['/tasks?view=group']
    session.expire_all()
    assert [session.get(HumanTask, t.id).assignee_id for t in tasks] == [people['staff'].id, people['staff2'].id,
                                                                         people['staff'].id]


def test_select_all_takes_every_task_of_the_page(client_for: Clients, session: Session, todo: Todo,
                                                 people: dict[str, User]) -> None:
    tasks = [todo.check(name, '2025-09-16') for name in ('甲某', '乙某')]
    staff = client_for('staff')
    page_ids = _doc(staff, '/tasks?view=group').xpath('//form[@id="bulk-form"]/input[@name="page_task"]/@value')
    assert sorted(page_ids) == sorted(str(t.id) for t in tasks)
    response = post_form(staff, '/tasks/bulk', {'action': 'claim', 'select_all': '1', 'page_task': page_ids})
    assert [row[-1] for row in _results(page(response))] == ['成功', '成功']


def test_bulk_without_a_selection_says_so(client_for: Clients, todo: Todo) -> None:
    todo.check('甲某', '2025-09-16')
    staff = client_for('staff')
    response = post_form(staff, '/tasks/bulk', {'action': 'claim', 'return_to': '/tasks?view=group'})
    assert response.status_code == 302 and response.headers['Location'] == '/tasks?view=group'
    assert '请至少选择一项任务。' in _flash(_doc(staff, '/tasks?view=group'))


def test_bulk_assign_by_a_supervisor(client_for: Clients, session: Session, todo: Todo, chief: User,
                                     people: dict[str, User]) -> None:
    tasks = [todo.check(name, '2025-09-16') for name in ('甲某', '乙某')]
    boss = client_for('chief')
    doc = _doc(boss, '/tasks?view=all')
    options = doc.xpath('//select[@name="assignee"]/option/text()')
    assert '王芳（桃花江镇司法所）' in options and '刘晓燕（桃花江镇司法所）' in options
    assert '黄磊（龙光桥司法所）' not in options  # outside the supervised subtree
    target = people['staff2'].id
    response = post_form(boss, '/tasks/bulk', {'action': 'assign', 'assignee': str(target),
                                               'task': [str(t.id) for t in tasks]})
    assert [row[-1] for row in _results(page(response))] == ['成功', '成功']
    assert '批量指派结果' in text_of(page(response).xpath('//h1')[0])
    session.expire_all()
    assert {session.get(HumanTask, t.id).assignee_id for t in tasks} == {target}
    # assigning someone outside the tasks' group fails task by task, with the reason
    response = post_form(boss, '/tasks/bulk', {'action': 'assign', 'assignee': str(people['officer'].id),
                                               'task': [str(tasks[0].id)]})
    assert _results(page(response))[0][-1] == '未成功 指派对象无效'


def test_staff_get_no_bulk_assign_and_cannot_use_it(client_for: Clients, todo: Todo, people: dict[str, User]) -> None:
    task = todo.check('甲某', '2025-09-16')
    staff = client_for('staff')
    doc = _doc(staff, '/tasks?view=group')
    assert doc.xpath('//button[@value="assign"]') == [] and doc.xpath('//button[@value="claim"]')
    response = post_form(staff, '/tasks/bulk', {'action': 'assign', 'assignee': str(people['staff2'].id),
                                                'task': [str(task.id)]})
    assert _results(page(response))[0][-1] == '未成功 只有该机构的主管可以指派任务。'
    missing = post_form(staff, '/tasks/bulk', {'action': 'assign', 'task': [str(task.id)]})
    assert missing.status_code == 302 and '请选择指派对象。' in _flash(_doc(staff, '/tasks'))


# -- delegation and assignment on the task page --------------------------------------------------------------------

def test_delegation_round_trip(client_for: Clients, session: Session, todo: Todo, people: dict[str, User]) -> None:
    task = todo.check('谢某某', '2025-09-16')
    owner, delegate = client_for('staff'), client_for('staff2')
    post_form(owner, f'/tasks/{task.id}/claim', {})
    form = _doc(owner, f'/tasks/{task.id}').xpath('//form[contains(@action, "/delegate")]')[0]
    assert '王芳（桃花江镇司法所）' in form.xpath('.//select[@name="delegate"]/option/text()')
    response = post_form(owner, f'/tasks/{task.id}/delegate', {'delegate': str(people['staff2'].id),
                                                              'note': '请先电话核实住址'})
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{task.id}#hand-over'
    # the delegate finds it in 我的待办; the owner keeps it there, marked
    mine = _doc(delegate, '/tasks')
    assert _names(mine) == ['谢某某'] and '刘晓燕 委托' in text_of(_row(mine, '谢某某'))
    assert '已委托给 王芳' in text_of(_row(_doc(owner, '/tasks'), '谢某某'))
    # nobody completes while the delegation is pending
    page_of_delegate = _doc(delegate, f'/tasks/{task.id}')
    assert page_of_delegate.xpath('//form[contains(@class, "task-form")]') == []
    assert page_of_delegate.xpath('//form[contains(@action, "/resolve")]')
    for client in (owner, delegate):
        assert post_form(client, f'/tasks/{task.id}', {}).status_code == 409
    session.expire_all()
    assert session.get(HumanTask, task.id).status == 'open'
    assert _doc(owner, f'/tasks/{task.id}').xpath('//form[contains(@action, "/resolve")]') == []
    # the delegate resolves it with a note; it goes back to the owner, who completes it
    response = post_form(delegate, f'/tasks/{task.id}/resolve', {'note': '已核实，住址无误'})
    assert response.status_code == 302 and response.headers['Location'] == '/tasks'
    session.expire_all()
    resolved = session.get(HumanTask, task.id)
    assert (resolved.assignee_id, resolved.delegation_state) == (people['staff'].id, 'resolved')
    assert '委托已办结' in text_of(_row(_doc(owner, '/tasks'), '谢某某'))
    assert _names(_doc(delegate, '/tasks')) == []
    assert post_form(owner, f'/tasks/{task.id}', {}).status_code == 302
    session.expire_all()
    assert session.get(HumanTask, task.id).status == 'completed'


def test_delegation_errors_stand_beside_the_fields(client_for: Clients, session: Session, todo: Todo,
                                                   people: dict[str, User]) -> None:
    task = todo.check('谢某某', '2025-09-16')
    owner = client_for('staff')
    post_form(owner, f'/tasks/{task.id}/claim', {})
    response = post_form(owner, f'/tasks/{task.id}/delegate', {'delegate': '', 'note': '帮忙'})
    assert response.status_code == 400
    doc = page(response)
    assert _field_errors(doc, 'delegate-person') == ['请选择受托人。']
    assert doc.xpath('//textarea[@id="delegate-note"]/text()') == ['帮忙']
    assert doc.xpath('//details[@open]//form[contains(@action, "/delegate")]')
    response = post_form(owner, f'/tasks/{task.id}/delegate', {'delegate': str(people['outsider'].id)})
    assert _field_errors(page(response), 'delegate-person') == ['请选择本辖区内的其他工作人员。']
    response = post_form(owner, f'/tasks/{task.id}/delegate', {'delegate': str(people['staff2'].id),
                                                              'note': '长' * 501})
    assert _field_errors(page(response), 'delegate-note') == ['说明最多 500 个字。']
    session.expire_all()
    assert session.get(HumanTask, task.id).delegation_state is None


def test_a_supervisor_assigns_from_the_task_page(client_for: Clients, session: Session, todo: Todo, chief: User,
                                                 people: dict[str, User]) -> None:
    task = todo.check('谢某某', '2025-09-16')
    assert _doc(client_for('staff'), f'/tasks/{task.id}').xpath('//form[contains(@action, "/assign")]') == []
    boss = client_for('chief')
    form = _doc(boss, f'/tasks/{task.id}').xpath('//form[contains(@action, "/assign")]')[0]
    assert form.xpath('.//select[@name="assignee"]/option/text()') == ['请选择', '刘晓燕（桃花江镇司法所）',
                                                                       '王芳（桃花江镇司法所）']
    assert post_form(boss, f'/tasks/{task.id}/assign', {'assignee': ''}).status_code == 400
    response = post_form(boss, f'/tasks/{task.id}/assign', {'assignee': str(people['staff2'].id)})
    assert response.status_code == 302
    assert '已将“核查风险”指派给 王芳' in _flash(_doc(boss, f'/tasks/{task.id}'))
    session.expire_all()
    assert session.get(HumanTask, task.id).assignee_id == people['staff2'].id


# -- access and CSRF ------------------------------------------------------------------------------------------------

POSTS = ['/tasks/bulk', '/tasks/filters', '/tasks/filters/{filter}/delete', '/tasks/{task}/delegate',
         '/tasks/{task}/resolve', '/tasks/{task}/assign']


@pytest.fixture
def targets(client_for: Clients, session: Session, todo: Todo) -> dict[str, int]:
    task = todo.check('谢某某', '2025-09-16')
    _save(client_for('staff'), '我的', {'view': 'group'})
    return {'task': task.id, 'filter': session.scalars(sa.select(SavedFilter.id)).one()}


@pytest.mark.parametrize('path', POSTS)
def test_new_posts_need_csrf_and_a_login(client: FlaskClient, client_for: Clients, targets: dict[str, int],
                                         path: str) -> None:
    url = path.format(**targets)
    assert client_for('staff').post(url, data={'action': 'claim', 'name': 'x'}).status_code == 400
    anonymous = client.post(url, data={})
    assert anonymous.status_code in (302, 400)
    if anonymous.status_code == 302:
        assert anonymous.headers['Location'].startswith('/login')


@pytest.mark.parametrize('path', ['/tasks/{task}/delegate', '/tasks/{task}/resolve', '/tasks/{task}/assign',
                                  '/tasks/filters/{filter}/delete'])
def test_records_out_of_reach_are_404(client_for: Clients, targets: dict[str, int], path: str) -> None:
    response = post_form(client_for('outsider'), path.format(**targets), {'delegate': '1', 'assignee': '1'})
    assert response.status_code == 404


@pytest.mark.parametrize(('who', 'path', 'reason'), [
    ('staff2', '/tasks/{task}/resolve', '该任务没有待办结的委托。'),
    ('staff', '/tasks/{task}/assign', '只有该机构的主管可以指派任务。'),
])
def test_refused_hand_overs_flash_the_reason(client_for: Clients, targets: dict[str, int], people: dict[str, User],
                                             who: str, path: str, reason: str) -> None:
    client = client_for(who)
    url = path.format(**targets)
    response = post_form(client, url, {'assignee': str(people['staff2'].id)})
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{targets["task"]}#hand-over'
    assert reason in _flash(_doc(client, f'/tasks/{targets["task"]}'))


def test_the_list_in_english(client_for: Clients, mixed: dict[str, HumanTask]) -> None:
    staff = client_for('staff')
    staff.get('/tasks?lang=en')
    doc = _doc(staff, '/tasks?view=group&risk_colour=red')
    body = text_of(doc)
    for words in ('All visible', 'Recently completed', 'Select all on this page', 'Claim selected', 'Clear filters'):
        assert words in body, words
    assert doc.xpath('//input[@name="text"]/@placeholder') == ['Case number, name or ID number']
