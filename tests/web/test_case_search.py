"""The case list's search: filters in the query string, validation beside each field, keyset paging, capped counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from lxml import html
from sqlalchemy.orm import Session

from engine import runtime
from engine.clock import FrozenClock
from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import DEMO, page, post_form, text_of
from web.cases import util

Clients = Callable[[str], FlaskClient]
XIE_ID = '431381198503120015'
LI_ID = '431381199007010022'


def _start(session: Session, user: User, unit: OrgUnit, name: str, id_number: str | None = None) -> Case:
    data = {'person_name': name, 'received_on': '2025-09-26'}
    if id_number:
        data['id_number'] = id_number
    case, _ = runtime.start_case(session, 'demo_intake', data, actor=user, org_unit=unit)
    session.commit()
    return case


@pytest.fixture
def cases(session: Session, org: Org, people: dict[str, User], clock: FrozenClock,
          deploy_file: Callable[[str], object]) -> dict[str, Case]:
    """谢 opened at the township on 2025-09-26, 李 on 09-29 (then closed), 谢某 at the other county on 09-30."""
    deploy_file(DEMO)
    xie = _start(session, people['staff'], org.township, '谢某某', XIE_ID)
    clock.advance(timedelta(days=3))
    li = _start(session, people['staff'], org.township, '李某某', LI_ID)
    li.close(clock.now())
    session.commit()
    clock.advance(timedelta(days=1))
    other = _start(session, people['outsider'], org.other_township, '谢某')
    return {'xie': xie, 'li': li, 'other': other}


def numbers(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return [text_of(td) for td in page(response).xpath('//tbody/tr/td[1]')]


def field_error(doc: html.HtmlElement, name: str) -> str:
    """The error text beside the search field ``name``."""
    [field] = doc.xpath(f'//div[contains(@class, "field")][.//*[@name="{name}"]]')
    assert 'has-error' in field.get('class')
    return text_of(field.xpath('.//p[@class="field-error"]')[0])


def test_search_by_number_whole_or_prefix(client_for: Clients, cases: dict[str, Case]) -> None:
    staff = client_for('staff')
    xie, li = cases['xie'], cases['li']
    assert numbers(staff.get(f'/cases?number={xie.number}')) == [xie.number]
    assert numbers(staff.get(f'/cases?number={xie.number[:3].lower()}')) == [li.number, xie.number]
    assert numbers(staff.get('/cases?number=ZZ')) == []


def test_search_by_name_prefix_only_within_the_subtree(client_for: Clients, cases: dict[str, Case]) -> None:
    staff = client_for('staff')
    assert numbers(staff.get('/cases?name=谢')) == [cases['xie'].number]  # 谢某 of the other county stays hidden
    assert numbers(staff.get('/cases?name=某')) == []  # the beginning of the name, not any part
    assert numbers(client_for('outsider').get('/cases?name=谢')) == [cases['other'].number]


def test_id_number_matches_exactly_and_is_masked_in_the_list(client_for: Clients, cases: dict[str, Case]) -> None:
    response = post_form(client_for('staff'), '/cases', {'id_number': XIE_ID.lower()}, token_from='/cases')
    assert numbers(response) == [cases['xie'].number]
    body = response.get_data(as_text=True)
    assert '431381********0015' in body and body.count(XIE_ID) == 1  # only the search box holds it in full
    listed = client_for('staff').get('/cases').get_data(as_text=True)
    assert XIE_ID not in listed and LI_ID not in listed and '431381********0022' in listed


def test_part_of_an_id_number_is_refused_beside_its_field(client_for: Clients, cases: dict[str, Case]) -> None:
    response = post_form(client_for('staff'), '/cases', {'id_number': '4313811985'}, token_from='/cases')
    assert response.status_code == 400
    doc = page(response)
    assert '公民身份号码应为 18 位' in field_error(doc, 'id_number')
    assert not doc.xpath('//tbody/tr')
    assert doc.xpath('//input[@name="id_number"]/@value') == ['4313811985']


def test_the_form_posts_and_is_redirected_to_a_bookmarkable_query(client_for: Clients, cases: dict[str, Case],
                                                                   org: Org) -> None:
    staff = client_for('staff')
    response = post_form(staff, '/cases', {'name': ' 谢 ', 'status': 'open', 'org_unit': org.township.code,
                                           'number': '', 'opened_from': '2025-09-01'}, token_from='/cases')
    assert response.status_code == 303
    location = response.headers['Location']
    assert location.startswith('/cases?') and 'number=' not in location and 'csrf_token' not in location
    assert numbers(staff.get(location)) == [cases['xie'].number]


def test_an_id_number_search_is_answered_directly_never_through_a_url(client_for: Clients,
                                                                       cases: dict[str, Case]) -> None:
    staff = client_for('staff')
    response = post_form(staff, '/cases', {'id_number': LI_ID}, token_from='/cases')
    assert numbers(response) == [cases['li'].number]
    body = response.get_data(as_text=True)
    assert f'?id_number={LI_ID}' not in body and f'id_number={LI_ID}' not in body


def test_the_old_single_search_box_still_posts(client_for: Clients, cases: dict[str, Case]) -> None:
    response = post_form(client_for('staff'), '/cases', {'q': XIE_ID}, token_from='/cases')
    assert numbers(response) == [cases['xie'].number]


def test_filters_by_process_status_unit_and_opened_dates(client_for: Clients, cases: dict[str, Case], org: Org,
                                                          create_member: Callable[..., User]) -> None:
    create_member('city_chief', 'supervisor', org.city)
    chief = client_for('city_chief')
    xie, li, other = cases['xie'], cases['li'], cases['other']
    assert numbers(chief.get('/cases')) == [other.number, li.number, xie.number]
    assert numbers(chief.get('/cases?kind=demo_intake&status=closed')) == [li.number]
    assert numbers(chief.get(f'/cases?org_unit={org.county.code}')) == [li.number, xie.number]
    assert numbers(chief.get(f'/cases?org_unit={org.other_township.code}')) == [other.number]
    assert numbers(chief.get('/cases?opened_from=2025-09-27&opened_to=2025-09-29')) == [li.number]
    assert numbers(chief.get('/cases?opened_to=2025年9月26日')) == [xie.number]  # typed the Chinese way
    assert numbers(chief.get('/cases?opened_from=2025-09-30&name=谢')) == [other.number]


def test_the_opened_range_is_shown_in_chinese(client_for: Clients, cases: dict[str, Case]) -> None:
    doc = page(client_for('staff').get('/cases?opened_from=2025-09-01&opened_to=2025-09-30'))
    assert '立案日期 2025年9月1日 至 2025年9月30日' in text_of(doc.xpath('//*[@role="status"]')[0])
    assert doc.xpath('//input[@name="opened_from"]/@value') == ['2025-09-01']


def test_a_unit_outside_the_subtree_is_a_validation_error(client_for: Clients, cases: dict[str, Case],
                                                          org: Org) -> None:
    staff = client_for('staff')
    options = page(staff.get('/cases')).xpath('//select[@name="org_unit"]/option/@value')
    assert options == ['', org.township.code]  # the select offers the caller's subtree only
    response = staff.get(f'/cases?org_unit={org.other_township.code}')
    assert response.status_code == 400
    doc = page(response)
    assert '不在您的范围内' in field_error(doc, 'org_unit')
    assert not doc.xpath('//tbody/tr')


@pytest.mark.parametrize(('query', 'field', 'message'), [
    ('opened_from=2025-13-01', 'opened_from', '请按“年-月-日”填写日期'),
    ('opened_from=2025-09-30&opened_to=2025-09-01', 'opened_to', '结束日期不能早于开始日期'),
    ('kind=no_such_process', 'kind', '请从列表中选择流程'),
    ('kind=corrections_leave', 'kind', '请从列表中选择流程'),
    ('status=archived', 'status', '请从列表中选择状态'),
])
def test_invalid_filters_show_the_form_again_with_the_error_beside_the_field(
        client_for: Clients, cases: dict[str, Case], query: str, field: str, message: str) -> None:
    response = client_for('staff').get(f'/cases?{query}&name=谢')
    assert response.status_code == 400
    doc = page(response)
    assert message in field_error(doc, field)
    assert doc.xpath('//input[@name="name"]/@value') == ['谢']  # nothing typed is lost
    assert not doc.xpath('//tbody/tr')


def test_an_invalid_post_is_answered_with_the_form_and_400(client_for: Clients, cases: dict[str, Case]) -> None:
    response = post_form(client_for('staff'), '/cases', {'opened_from': 'yesterday', 'name': '谢'},
                         token_from='/cases')
    assert response.status_code == 400
    assert '请按“年-月-日”填写日期' in field_error(page(response), 'opened_from')


def test_keyset_pages_keep_the_search_in_their_links(client_for: Clients, cases: dict[str, Case],
                                                     monkeypatch: pytest.MonkeyPatch, session: Session, org: Org,
                                                     people: dict[str, User]) -> None:
    third = _start(session, people['staff'], org.township, '谢三')
    monkeypatch.setattr(util, 'PAGE_SIZE', 1)
    staff = client_for('staff')
    first = page(staff.get('/cases?name=谢'))
    assert [text_of(td) for td in first.xpath('//tbody/tr/td[1]')] == [third.number]
    [next_link] = first.xpath('//a[@rel="next"]/@href')
    assert 'name=' in next_link and f'before={third.id}' in next_link
    second = page(staff.get(next_link))
    assert [text_of(td) for td in second.xpath('//tbody/tr/td[1]')] == [cases['xie'].number]
    assert not second.xpath('//a[@rel="next"]')
    assert second.xpath('//a[text()="回到第一页"]/@href') == ['/cases?name=%E8%B0%A2']


def test_id_number_pages_are_posted(client_for: Clients, cases: dict[str, Case], session: Session, org: Org,
                                    people: dict[str, User], monkeypatch: pytest.MonkeyPatch) -> None:
    again = _start(session, people['staff2'], org.township, '谢某某', XIE_ID)
    monkeypatch.setattr(util, 'PAGE_SIZE', 1)
    staff = client_for('staff')
    first = post_form(staff, '/cases', {'id_number': XIE_ID}, token_from='/cases')
    assert numbers(first) == [again.number]
    [pager] = page(first).xpath('//nav[@class="pager"]/form')
    data = dict(zip(pager.xpath('.//input/@name'), pager.xpath('.//input/@value'), strict=True))
    assert data['id_number'] == XIE_ID and data['before'] == str(again.id)
    assert numbers(staff.post('/cases', data=data)) == [cases['xie'].number]


def test_the_count_stops_at_its_cap(client_for: Clients, cases: dict[str, Case],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    staff = client_for('staff')
    assert text_of(page(staff.get('/cases')).xpath('//*[@role="status"]')[0]) == '共 2 件'
    monkeypatch.setattr(util, 'COUNT_CAP', 1)
    assert text_of(page(staff.get('/cases')).xpath('//*[@role="status"]')[0]) == '共 1+ 件'


@pytest.fixture
def statements(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the app runs while the test does, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: object, cursor: object, statement: str, parameters: Any, *args: object) -> None:
        seen.append((statement, parameters))
    engine = app.extensions['fengqiao_db_engine']
    sa.event.listen(engine, 'before_cursor_execute', record)
    yield seen
    sa.event.remove(engine, 'before_cursor_execute', record)


def _offset(statement: str, parameters: Any) -> object:
    """The OFFSET a statement skips (SQLite renders ``OFFSET ?`` bound to 0 after every LIMIT), or None."""
    if 'OFFSET' not in statement.upper():
        return None
    tail = statement.upper().rsplit('OFFSET', 1)[1].strip()
    return parameters[-1] if tail.startswith(('?', '%(')) else tail.split()[0]


def test_search_pages_use_no_offset_and_count_a_bounded_subquery(client_for: Clients, cases: dict[str, Case],
                                                                  statements: list[tuple[str, Any]]) -> None:
    staff = client_for('staff')
    statements.clear()
    numbers(staff.get(f'/cases?name=谢&before={cases["li"].id}'))
    case_queries = [(s, p) for s, p in statements if 'FROM cases' in s]
    assert case_queries and all(_offset(s, p) in (None, 0, '0') for s, p in case_queries)
    [count] = [s for s, _ in case_queries if 'count(' in s.lower()]
    assert 'LIMIT' in count.upper()


def test_search_form_in_english(client_for: Clients, cases: dict[str, Case]) -> None:
    doc = page(client_for('staff').get('/cases?lang=en&opened_from=2025-09-01'))
    labels = [text_of(label) for label in doc.xpath('//form[@role="search"]//label')]
    assert 'Case number' in labels and 'Opened from' in labels
    assert 'Opened 2025-09-01' in text_of(doc.xpath('//*[@role="status"]')[0])


def test_anonymous_users_are_sent_to_log_in(client: FlaskClient) -> None:
    response = client.get('/cases?name=谢')
    assert response.status_code == 302 and response.headers['Location'].startswith('/login')
