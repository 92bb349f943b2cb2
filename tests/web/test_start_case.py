"""Starting a case: the new case number and its first tasks (who holds each, when it is due) right after the
start; an invalid start form keeps everything typed and shows every error beside its field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.definitions import deploy
from engine.models.cases import Case
from engine.models.users import User
from tests.fixtures.web import form_tokens
from tests.web.conftest import DEADLINE, DEMO, page, post_form, text_of

Clients = Callable[[str], FlaskClient]
ROOT = Path(__file__).resolve().parents[2]


def test_after_the_start_the_number_and_first_tasks_are_shown_with_holder_and_due_date(
        client_for: Clients, session: Session, people: dict[str, User], clock: FrozenClock,
        deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEADLINE)
    staff = client_for('staff')
    response = post_form(staff, '/cases/new/web_assessment', {'person_name': '谢某某',
                                                               'commission_received_on': '2025-09-26'},
                         token_from='/cases/new/web_assessment')
    case = session.scalars(sa.select(Case)).one()
    assert response.headers['Location'] == f'/cases/{case.id}'
    doc = page(staff.get(response.headers['Location']))
    notice = text_of(doc.xpath('//div[contains(@class, "alert-success")]')[0])
    assert f'已立案，案件编号 {case.number}' in notice
    assert '“调查评估”' in notice and '桃花江镇司法所' in notice and '待认领' in notice
    assert '办理期限 2025年10月16日' in notice  # 10 working days from the 委托函 of 2025-09-26
    # the case page itself lists the same task, its holder and its due date under its instance
    [row] = doc.xpath('//section[@id="instances"]//tbody/tr')
    assert '调查评估' in text_of(row) and '2025年10月16日' in text_of(row)


def test_a_first_task_without_a_deadline_names_its_unit_and_group(client_for: Clients, people: dict[str, User],
                                                                   deploy_legacy: Callable[..., object]) -> None:
    # Only a version deployed before deadlines were required has such a task.
    deploy_legacy(DEMO, remove=['<camunda:property name="deadline" value="365 calendar_days" />'])
    staff = client_for('staff')
    response = post_form(staff, '/cases/new/demo_intake', {'person_name': '赵某某', 'received_on': '2025-10-09'},
                         token_from='/cases/new/demo_intake')
    notice = text_of(page(staff.get(response.headers['Location'])).xpath('//div[contains(@class, "alert-success")]')[0])
    assert '“登记案件情况”（桃花江镇司法所 · township_staff · 待认领）' in notice and '办理期限' not in notice


def test_an_invalid_start_form_shows_every_error_beside_its_field_and_keeps_every_value(
        client_for: Clients, session: Session, people: dict[str, User],
        deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    response = post_form(client_for('staff'), '/cases/new/demo_intake',
                         {'person_name': '赵', 'received_on': '2025-02-30', 'id_number': '43138119850312',
                          'summary': '邻里纠纷'}, token_from='/cases/new/demo_intake')
    assert response.status_code == 400
    doc = page(response)
    for name in ('person_name', 'received_on'):
        [field] = doc.xpath(f'//div[contains(@class, "field ")][.//*[@name="{name}"]]')
        assert 'has-error' in field.get('class') and field.xpath('.//p[@class="field-error"]'), name
    assert doc.xpath('//input[@name="person_name"]/@value') == ['赵']
    assert doc.xpath('//input[@name="received_on"]/@value') == ['2025-02-30']
    assert doc.xpath('//input[@name="id_number"]/@value') == ['43138119850312']
    assert doc.xpath('//textarea[@name="summary"]/text()') == ['邻里纠纷']
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_request_processes_are_not_offered_as_new_cases(client_for: Clients, session: Session,
                                                        people: dict[str, User]) -> None:
    for name in ('reception.bpmn', 'leave.bpmn'):
        deploy(session, (ROOT / 'bpmn' / 'corrections' / name).read_bytes(), actor=None, filename=name,
               accept_warnings=True)
    session.commit()
    officer = client_for('officer')
    links = page(officer.get('/cases/new')).xpath('//ul[@class="process-list"]//a/@href')
    assert links == ['/cases/new/corrections_reception']
    response = officer.get('/cases/new/corrections_leave')
    assert response.status_code == 404 and '该流程只能从案件页面发起' in text_of(page(response))


def test_a_start_form_sent_twice_opens_one_case(client_for: Clients, session: Session, people: dict[str, User],
                                               deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    staff = client_for('staff')
    form = {'person_name': '赵某某', 'received_on': '2025-10-09', **form_tokens(staff, '/cases/new/demo_intake')}
    first = staff.post('/cases/new/demo_intake', data=form)
    second = staff.post('/cases/new/demo_intake', data=form)  # a double click, or the page resubmitted
    assert first.status_code == second.status_code == 302
    assert second.headers['Location'] == first.headers['Location']
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 1
    notices = [text_of(alert) for alert in
               page(staff.get(second.headers['Location'])).xpath('//div[contains(@class, "alert")]')]
    assert any('未重复立案' in notice for notice in notices), notices
    # a fresh form is a new case
    fresh = {'person_name': '赵某某', 'received_on': '2025-10-09', **form_tokens(staff, '/cases/new/demo_intake')}
    assert staff.post('/cases/new/demo_intake', data=fresh).status_code == 302
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2


def test_a_start_form_without_its_nonce_is_refused_and_starts_nothing(client_for: Clients, session: Session,
                                                                      people: dict[str, User],
                                                                      deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    staff = client_for('staff')
    response = post_form(staff, '/cases/new/demo_intake', {'person_name': '赵某某', 'received_on': '2025-10-09'})
    assert response.status_code == 400 and '刷新页面' in response.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0
