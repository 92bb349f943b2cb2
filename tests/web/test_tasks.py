"""The to-do list and the task page through the test client."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine import runtime
from engine.clock import LOCAL_ZONE, now
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import REGISTER, page, post_form, text_of
from workflows.shared.documents import generate_document

Clients = Callable[[str], FlaskClient]


def _counts(client: FlaskClient) -> dict[str, int]:
    """The tabs' counts: those in the page, and those a wide reader's page leaves to its script (``…``) from the
    URL the script reads them from."""
    doc = page(client.get('/tasks'))
    [nav] = doc.xpath('//nav[contains(@class, "tabs")]')
    shown = {tab.get('href').split('view=')[1]: tab.xpath('.//span[@class="count"]')[0].text
             for tab in nav.xpath('./a')}
    later = client.get(nav.get('data-counts-url')).get_json()['counts'] if '…' in shown.values() else {}
    return {view: int(later[view] if text == '…' else text) for view, text in shown.items()}


def _field(doc: object, field_id: str) -> object:
    """The <div class="field"> wrapping the input of ``field_id``."""
    return doc.xpath(f'//div[contains(@class, "field ")][.//*[starts-with(@id, "field-{field_id}")]]')[0]


def _fresh(session: Session, model: type, ident: int) -> object:
    return session.get(model, ident, populate_existing=True)


def test_root_redirects_to_the_todo_list(client_for: Clients, people: dict[str, User]) -> None:
    response = client_for('staff').get('/')
    assert response.status_code == 302 and response.headers['Location'] == '/tasks'


def test_counts_and_lists_follow_groups_and_units(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff, officer, outsider = client_for('staff'), client_for('officer'), client_for('outsider')
    assert _counts(staff) == {'mine': 0, 'group': 1, 'due_soon': 0, 'overdue': 0, 'escalated': 0, 'all': 1,
                              'completed': 0}
    assert _counts(officer)['group'] == 0 and _counts(outsider)['group'] == 0
    rows = page(staff.get('/tasks?view=group')).xpath('//table/tbody/tr')
    assert len(rows) == 1
    cells = rows[0].xpath('td')
    assert text_of(cells[0].xpath('a')[0]) == case.number
    assert cells[1].text.strip() == '谢某某'
    assert text_of(cells[2].xpath('a[@class="task-link"]')[0]) == '登记案件情况'
    assert text_of(cells[3]) == '桃花江镇司法所'
    assert task.due_dt is not None
    due = task.due_dt.astimezone(LOCAL_ZONE)
    assert text_of(cells[5]).startswith(f'{due.year}年{due.month}月{due.day}日')
    assert '认领' in text_of(cells[-1])
    assert page(outsider.get('/tasks?view=group')).xpath('//table') == []


def test_due_dates_feed_the_overdue_and_due_soon_tabs(client_for: Clients, session: Session,
                                                     demo_case: tuple[Case, HumanTask]) -> None:
    _, task = demo_case
    session.get(HumanTask, task.id).due_dt = now() - timedelta(days=1)
    session.commit()
    staff = client_for('staff')
    assert _counts(staff)['overdue'] == 1
    body = text_of(page(staff.get('/tasks?view=overdue')))
    assert '已逾期' in body and '登记案件情况' in body


def test_keyset_paging_carries_a_cursor(client_for: Clients, session: Session, org: Org,
                                        people: dict[str, User], demo_case: tuple[Case, HumanTask],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    runtime.start_case(session, 'demo_intake', {'person_name': '李某某', 'received_on': '2025-09-27'},
                       actor=people['staff'], org_unit=org.township)
    session.commit()
    monkeypatch.setattr('web.tasks.controllers.PAGE_SIZE', 1)
    staff = client_for('staff')
    first = page(staff.get('/tasks?view=group'))
    next_link = first.xpath('//a[@rel="next"]/@href')[0]
    assert 'cursor=' in next_link
    second = page(staff.get(next_link))
    assert len(second.xpath('//tbody/tr')) == 1 and second.xpath('//a[@rel="next"]') == []
    names = {doc.xpath('//tbody/tr/td')[1].text.strip() for doc in (first, second)}
    assert names == {'谢某某', '李某某'}


def test_claim_moves_the_task_to_my_list(client_for: Clients, session: Session,
                                         demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> None:
    _, task = demo_case
    staff = client_for('staff')
    response = post_form(staff, f'/tasks/{task.id}/claim', {'return_to': '/tasks?view=group'})
    assert response.status_code == 302 and response.headers['Location'] == '/tasks?view=group'
    assert '已认领“登记案件情况”' in staff.get('/tasks').get_data(as_text=True)
    assert _fresh(session, HumanTask, task.id).assignee_id == people['staff'].id
    assert _counts(staff)['mine'] == 1 and _counts(staff)['group'] == 0
    # a colleague now sees it as taken, and cannot claim it
    staff2 = client_for('staff2')
    taken = post_form(staff2, f'/tasks/{task.id}/claim', {'return_to': '/evil'}, follow_redirects=True)
    assert '该任务已被他人认领或已办理。' in taken.get_data(as_text=True)


def test_unclaim_gives_the_task_back(client_for: Clients, session: Session,
                                     demo_case: tuple[Case, HumanTask]) -> None:
    _, task = demo_case
    staff = client_for('staff')
    post_form(staff, f'/tasks/{task.id}/claim', {})
    response = post_form(staff, f'/tasks/{task.id}/unclaim', {})
    assert response.headers['Location'] == '/tasks'
    assert _fresh(session, HumanTask, task.id).assignee_id is None


def test_task_page_shows_case_summary_documentation_form_and_history(client_for: Clients,
                                                                     demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    doc = page(client_for('staff').get(f'/tasks/{task.id}'))
    body = text_of(doc)
    assert case.number in body and '谢某某' in body
    assert '431381********0015' in body and '431381198503120015' not in body
    assert '核实当事人身份' in body  # the task documentation
    visits = doc.xpath('//input[@name="visit_count"]')[0]
    assert (visits.get('type'), visits.get('min'), visits.get('max')) == ('number', '0', '50')
    assert 'required' in visits.attrib
    assert doc.xpath('//select[@name="risk_level"]/option/@value') == ['', 'low', 'medium', 'high']
    assert doc.xpath('//input[@name="findings"]/@minlength') == ['4']
    assert '立案' in text_of(doc.xpath('//ol[@class="timeline"]')[0])
    assert doc.xpath('//form[contains(@action, "/claim")]')  # claim button for a group task


def test_task_page_lists_the_case_documents(client_for: Clients, session: Session,
                                            demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> None:
    case, task = demo_case
    assert page(client_for('staff').get(f'/tasks/{task.id}')).xpath('//section[@id="documents"]//a') == []
    document = generate_document(session, case, None, 'shared/case_summary', '案件情况摘要', {},
                                 actor=people['staff'])
    session.commit()
    links = page(client_for('staff').get(f'/tasks/{task.id}')).xpath('//section[@id="documents"]//a')
    assert [(a.text, a.get('href')) for a in links] == [('案件情况摘要', f'/cases/{case.id}/documents/{document.id}')]


def test_every_widget_type_renders(client_for: Clients, session: Session, org: Org, people: dict[str, User],
                                   deploy_file: Callable[[str], object]) -> None:
    deploy_file('tests/web/bpmn/widgets.bpmn')
    _, tasks = runtime.start_case(session, 'widget_check', {}, actor=people['staff'], org_unit=org.township)
    session.commit()
    doc = page(client_for('staff').get(f'/tasks/{tasks[0].id}'))
    short = doc.xpath('//input[@name="short_text"]')[0]
    assert (short.get('type'), short.get('minlength'), short.get('maxlength')) == ('text', '2', '20')
    assert doc.xpath('//textarea[@name="long_text"]/@maxlength') == ['2000']
    assert doc.xpath('//input[@name="people"]/@type') == ['number']
    assert doc.xpath('//input[@name="died"]/@type') == ['radio', 'radio']
    assert doc.xpath('//input[@name="died"]/@value') == ['true', 'false']
    assert doc.xpath('//input[@name="applied_on"]/@type') == ['date']
    assert doc.xpath('//input[@name="applied_on"]/@min') == ['2020-01-01']
    assert doc.xpath('//select[@name="source"]/option/text()') == ['请选择', '警源', '当事人申请']
    amount = doc.xpath('//input[@name="amount"]')[0]
    assert (amount.get('type'), amount.get('inputmode')) == ('text', 'decimal')
    # required marks and labels for every input
    assert len(doc.xpath('//form[contains(@class, "task-form")]//abbr[@class="required"]')) == 2
    for input_id in doc.xpath('//form[contains(@class, "task-form")]//*[self::input or self::select or '
                              'self::textarea][not(@type="hidden")]/@id'):
        assert doc.xpath(f'//label[@for="{input_id}"]'), input_id


def test_invalid_submission_shows_errors_by_fields_keeps_values_changes_nothing(
        client_for: Clients, session: Session, demo_case: tuple[Case, HumanTask]) -> None:
    _, task = demo_case
    staff = client_for('staff')
    revision = session.scalar(sa.select(ProcessInstance.revision))
    events = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    response = post_form(staff, f'/tasks/{task.id}', {'visit_count': '99', 'risk_level': '', 'findings': 'ab'})
    assert response.status_code == 400
    doc = page(response)
    assert '表单填写有误' in text_of(doc.xpath('//div[@role="alert"]')[0])
    errors = {name: text_of(_field(doc, name).xpath('.//p[@class="field-error"]')[0])
              for name in ('visit_count', 'risk_level', 'findings')}
    assert errors == {'visit_count': '不能大于 50。', 'risk_level': '此项为必填项。',
                      'findings': '长度不能少于 4 个字符。'}
    assert doc.xpath('//input[@name="visit_count"]/@value') == ['99']
    assert doc.xpath('//input[@name="findings"]/@value') == ['ab']
    assert doc.xpath('//input[@name="visit_count"]/@aria-invalid') == ['true']
    session.expire_all()
    assert session.get(HumanTask, task.id).status == 'open' and session.get(HumanTask, task.id).assignee_id is None
    assert session.scalar(sa.select(ProcessInstance.revision)) == revision
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events


def test_valid_submission_moves_the_case_to_the_county(client_for: Clients, session: Session, org: Org,
                                                       demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    response = post_form(staff, f'/tasks/{task.id}', REGISTER)
    assert response.status_code == 302 and response.headers['Location'] == '/tasks'
    flash = text_of(page(staff.get('/tasks')).xpath('//div[contains(@class, "alert-success")]')[0])
    # the review is handled for the township's case by the county_officer group above it
    assert '已办理“登记案件情况”' in flash and '下一步：“审核登记情况”（桃花江镇司法所 · county_officer）' in flash
    assert _fresh(session, HumanTask, task.id).status == 'completed'
    officer = client_for('officer')
    assert _counts(officer)['group'] == 1
    review = page(officer.get('/tasks?view=group')).xpath('//tbody/tr/td')
    assert text_of(review[2].xpath('a[@class="task-link"]')[0]) == '审核登记情况'


def test_history_shows_who_changed_what(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    post_form(staff, f'/tasks/{task.id}', REGISTER)
    entries = page(staff.get(f'/cases/{case.id}')).xpath('//ol[@class="timeline"]/li')
    completed = [li for li in entries if '办理任务' in text_of(li)][0]
    assert text_of(completed.xpath('.//div[@class="tl-head"]')[0]).endswith('刘晓燕 办理任务 “登记案件情况”')
    changes = {text_of(div.xpath('dt')[0]): (text_of(div.xpath('.//span[@class="before"]')[0]),
                                            text_of(div.xpath('.//span[@class="after"]')[0]))
               for div in completed.xpath('.//dl[@class="changes"]/div')}
    assert changes == {'走访次数': ('—', '2'), '风险等级': ('—', '高'), '走访情况': ('—', '走访属实，情况清楚')}


def test_read_only_task_page_for_someone_elses_task(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    _, task = demo_case
    post_form(client_for('staff'), f'/tasks/{task.id}/claim', {})
    doc = page(client_for('staff2').get(f'/tasks/{task.id}'))
    assert doc.xpath('//form[contains(@class, "task-form")]') == []
    assert '此任务已由他人认领' in text_of(doc)


@pytest.mark.parametrize('method_path', ['GET /tasks/{id}', 'POST /tasks/{id}', 'POST /tasks/{id}/claim',
                                         'POST /tasks/{id}/unclaim'])
def test_tasks_outside_the_subtree_are_404(client_for: Clients, demo_case: tuple[Case, HumanTask],
                                           method_path: str) -> None:
    _, task = demo_case
    method, path = method_path.split()
    outsider = client_for('outsider')
    path = path.format(id=task.id)
    response = outsider.get(path) if method == 'GET' else post_form(outsider, path, REGISTER)
    assert response.status_code == 404
    assert '任务不存在' in response.get_data(as_text=True)


def test_unknown_task_and_bad_view_and_cursor(client_for: Clients, people: dict[str, User]) -> None:
    staff = client_for('staff')
    assert staff.get('/tasks/999').status_code == 404
    assert staff.get('/tasks?view=everything').status_code == 400
    assert staff.get('/tasks?cursor=%%%').status_code == 400


def test_todo_list_and_task_page_in_english(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    _, task = demo_case
    staff = client_for('staff')
    body = text_of(page(staff.get('/tasks?view=group&lang=en')))
    assert 'My tasks' in body and 'Group queue' in body and 'Claim' in body
    assert '我的待办' not in body
    response = post_form(staff, f'/tasks/{task.id}', {'visit_count': 'x', 'risk_level': 'low', 'findings': 'abcd'})
    doc = page(response)
    assert text_of(_field(doc, 'visit_count').xpath('.//p[@class="field-error"]')[0]) == 'Please enter a whole number.'
    assert doc.xpath('//html/@lang') == ['en']
    created = text_of(page(staff.get('/tasks?view=group')).xpath('//tbody/tr/td')[4])
    assert created.startswith('2') and '-' in created and '年' not in created
