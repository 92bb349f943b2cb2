"""工作日历: admins see the coverage warning, list overrides by year, add and remove them (audited); others 403."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.calendar import add_override, coverage_warning, load_calendar
from engine.clock import FrozenClock
from engine.models.audit import AuditEvent
from engine.models.calendar import CalendarOverride
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import page, post_form, text_of

Clients = Callable[[str], FlaskClient]
CALENDAR = '/admin/calendar'


@pytest.fixture
def admin(org: Org, create_member: Callable[..., User]) -> User:
    return create_member('admin', 'admin', org.province, display_name='系统管理员')


@pytest.fixture
def uncovered(clock: FrozenClock) -> FrozenClock:
    """The clock in 2026, when chinesecalendar has no data for next year."""
    clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))
    return clock


def _add(client: FlaskClient, **data: str) -> object:
    return post_form(client, CALENDAR, data, token_from=CALENDAR)


def _overrides(session: Session) -> list[tuple[str, bool, int | None, str]]:
    session.expire_all()
    return [(row.day.isoformat(), row.is_workday, row.org_unit_id, row.note)
            for row in session.scalars(sa.select(CalendarOverride).order_by(CalendarOverride.day))]


def _field_error(doc: object, name: str) -> str:
    return text_of(doc.xpath(f'//div[contains(@class, "field")][.//*[@name="{name}"]]//p[@class="field-error"]')[0])


def test_admin_sees_the_coverage_warning_on_the_calendar_and_the_todo_page(client_for: Clients, admin: User,
                                                                           people: dict[str, User],
                                                                           uncovered: FrozenClock) -> None:
    expected = coverage_warning()
    assert expected is not None and '2027' in expected
    admin_client = client_for('admin')
    doc = page(admin_client.get(CALENDAR))
    alert = doc.xpath('//div[contains(@class, "alert-warn")]')[0]
    assert text_of(alert) == f'日历数据需要更新 {expected}'
    banner = page(admin_client.get('/tasks')).xpath('//div[contains(@class, "alert-warn")]')[0]
    assert expected in text_of(banner) and banner.xpath('.//a/@href') == [CALENDAR]
    assert page(client_for('staff').get('/tasks')).xpath('//div[contains(@class, "alert-warn")]') == []
    english = text_of(page(admin_client.get(f'{CALENDAR}?lang=en')).xpath('//div[contains(@class, "alert-warn")]')[0])
    assert 'only has the statutory holidays' in english and '2027' in english


def test_no_warning_while_the_package_covers_this_year_and_next(client_for: Clients, admin: User,
                                                                clock: FrozenClock) -> None:
    doc = page(client_for('admin').get(CALENDAR))  # 2025: 2025 and 2026 are covered
    assert doc.xpath('//div[contains(@class, "alert-warn")]') == []
    assert 'chinesecalendar' in text_of(doc.xpath('//p[@class="lead"]')[0])


def test_admin_link_in_the_navigation_only_for_admins(client_for: Clients, admin: User,
                                                      people: dict[str, User]) -> None:
    nav = page(client_for('admin').get('/tasks')).xpath('//nav[@class="main-nav"]//a/@href')
    assert CALENDAR in nav
    assert CALENDAR not in page(client_for('staff').get('/tasks')).xpath('//nav[@class="main-nav"]//a/@href')


def test_add_a_global_rest_day_and_a_units_make_up_day(client_for: Clients, session: Session, org: Org,
                                                       admin: User, clock: FrozenClock) -> None:
    admin_client = client_for('admin')
    response = _add(admin_client, day='2025-10-20', kind='rest', org_unit='', note='防汛停工')
    assert response.status_code == 302 and response.headers['Location'] == f'{CALENDAR}?year=2025'
    response = _add(admin_client, day='2025-10-19', kind='work', org_unit=org.county.code, note='县里补班')
    assert response.status_code == 302
    assert _overrides(session) == [('2025-10-19', True, org.county.id, '县里补班'),
                                   ('2025-10-20', False, None, '防汛停工')]
    events = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'calendar.override_added')
                             .order_by(AuditEvent.id)).all()
    assert [(e.actor_id, e.note) for e in events] == [(admin.id, '防汛停工'), (admin.id, '县里补班')]
    # the calendar the engine counts with follows at once
    assert not load_calendar(session, org.township.path).is_workday(date(2025, 10, 20))
    assert load_calendar(session, org.township.path).is_workday(date(2025, 10, 19))
    assert not load_calendar(session, org.other_township.path).is_workday(date(2025, 10, 19))
    rows = page(admin_client.get(f'{CALENDAR}?year=2025')).xpath('//tbody/tr')
    assert [text_of(td) for td in rows[0].xpath('td')[:4]] == ['2025年10月19日 周日', '补班工作日', '桃江县司法局',
                                                               '县里补班']
    assert [text_of(td) for td in rows[1].xpath('td')[:4]] == ['2025年10月20日 周一', '休息日', '全部机构', '防汛停工']
    assert '系统管理员' in text_of(rows[0].xpath('td')[4])


def test_the_list_is_filtered_by_year(client_for: Clients, session: Session, admin: User,
                                      clock: FrozenClock) -> None:
    add_override(session, date(2025, 10, 20), False, org_unit=None, note='二〇二五', actor=admin)
    add_override(session, date(2027, 2, 10), False, org_unit=None, note='二〇二七', actor=admin)
    session.commit()
    admin_client = client_for('admin')
    default = text_of(page(admin_client.get(CALENDAR)))  # this year: 2025
    assert '二〇二五' in default and '二〇二七' not in default
    doc = page(admin_client.get(f'{CALENDAR}?year=2027'))
    assert '二〇二七' in text_of(doc) and '二〇二五' not in text_of(doc)
    assert {'2025', '2026', '2027'} <= set(doc.xpath('//select[@name="year"]/option/@value'))
    assert doc.xpath('//select[@name="year"]/option[@selected]/@value') == ['2027']
    assert '2026 年没有人工调整' in text_of(page(admin_client.get(f'{CALENDAR}?year=2026')))
    assert admin_client.get(f'{CALENDAR}?year=abc').status_code == 400


def test_invalid_input_shows_errors_beside_the_fields_and_adds_nothing(client_for: Clients, session: Session,
                                                                       admin: User, clock: FrozenClock) -> None:
    admin_client = client_for('admin')
    response = _add(admin_client, day='2025-02-30', org_unit='', note=' ')
    assert response.status_code == 400
    doc = page(response)
    assert _field_error(doc, 'day') == '请输入 YYYY-MM-DD 格式的日期。'
    assert _field_error(doc, 'kind') == '请选择休息日或补班工作日。'
    assert _field_error(doc, 'note') == '请说明调整依据。'
    assert doc.xpath('//input[@name="day"]/@value') == ['2025-02-30']
    response = _add(admin_client, day='2025-10-20', kind='work', org_unit='999999', note='补班')
    assert response.status_code == 400
    doc = page(response)
    assert _field_error(doc, 'org_unit') == '没有这个代码的机构。'
    assert doc.xpath('//input[@name="note"]/@value') == ['补班']
    assert doc.xpath('//input[@name="kind"][@checked]/@value') == ['work']
    assert _overrides(session) == []


def test_remove_an_override(client_for: Clients, session: Session, org: Org, admin: User,
                            clock: FrozenClock) -> None:
    row = add_override(session, date(2025, 10, 20), False, org_unit=org.county, note='停工', actor=admin)
    session.commit()
    admin_client = client_for('admin')
    form = page(admin_client.get(CALENDAR)).xpath('//form[contains(@action, "/remove")]')[0]
    assert form.get('action') == f'{CALENDAR}/overrides/{row.id}/remove'
    response = post_form(admin_client, form.get('action'), {}, token_from=CALENDAR)
    assert response.status_code == 302 and response.headers['Location'] == f'{CALENDAR}?year=2025'
    assert _overrides(session) == []
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'calendar.override_removed')).one()
    assert event.actor_id == admin.id and event.before['day'] == '2025-10-20'
    assert post_form(admin_client, form.get('action'), {}, token_from=CALENDAR).status_code == 404


@pytest.mark.parametrize('who', ['staff', 'chief', 'designer'])
def test_non_admins_are_refused(client_for: Clients, session: Session, admin: User, people: dict[str, User],
                                chief: User, who: str, clock: FrozenClock) -> None:
    row = add_override(session, date(2025, 10, 20), False, org_unit=None, note='停工', actor=admin)
    session.commit()
    other = client_for(who)
    assert other.get(CALENDAR).status_code == 403
    assert post_form(other, CALENDAR, {'day': '2025-10-21', 'kind': 'rest', 'note': 'x'}).status_code == 403
    assert post_form(other, f'{CALENDAR}/overrides/{row.id}/remove', {}).status_code == 403
    assert len(_overrides(session)) == 1


def test_anonymous_is_sent_to_log_in_and_writes_need_csrf(client: FlaskClient, client_for: Clients,
                                                         session: Session, admin: User) -> None:
    response = client.get(CALENDAR)
    assert response.status_code == 302 and '/login' in response.headers['Location']
    response = client_for('admin').post(CALENDAR, data={'day': '2025-10-21', 'kind': 'rest', 'note': 'x'})
    assert response.status_code == 400
    assert _overrides(session) == []


def test_calendar_page_has_labels_and_no_inline_code(app: Flask, client_for: Clients, admin: User,
                                                     uncovered: FrozenClock) -> None:
    response = client_for('admin').get(CALENDAR)
    body = response.get_data(as_text=True)
    assert '<script' not in body and ' style=' not in body
    doc = page(response)
    for element in doc.xpath('//input[not(@type="hidden")] | //select'):
        assert doc.xpath(f'//label[@for="{element.get("id")}"]'), element.get('name')
