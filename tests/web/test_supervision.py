"""Supervisors' pages: instance search, the audit log with its exports and chain check, incidents (instances in
error and dead jobs, retried or cancelled with a reason), and the case page's history, reminders and step times."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from lxml import html
from openpyxl import load_workbook
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.clock import LOCAL_ZONE, FrozenClock, now
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import Worker
from tests.fixtures.directory import Org
from tests.fixtures.web import csrf_token


@pytest.fixture
def chief(org: Org, create_member: Callable[..., User]) -> User:
    return create_member('chief', 'supervisor', org.county)


@pytest.fixture
def dead_job(session: Session, org: Org, people: dict[str, User], chief: User,
             deploy_file: Callable[[str], object]) -> Job:
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    case, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=people['staff'], org_unit=org.township)
    instance = case.instances[0]
    job = Job(kind='timer', key=f'timer:{instance.id}:test', instance_id=instance.id, due_dt=now(), status='dead',
              attempts=5, payload={}, last_error='测试错误', created_dt=now())
    session.add(job)
    session.commit()
    return job


def test_supervisor_sees_and_retries_dead_job(client: FlaskClient, login: Callable[[str], FlaskClient],
                                              session: Session, dead_job: Job) -> None:
    login('chief')
    page = client.get('/supervision/incidents').get_data(as_text=True)
    assert '测试错误' in page and f'/supervision/jobs/{dead_job.id}/retry' in page
    token = csrf_token(client, '/supervision/incidents')
    refused = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': ''})
    assert refused.status_code == 302
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'dead'
    done = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': '故障已修复'})
    assert done.status_code == 302
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'pending'
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'job.retried')).one()
    assert event.note == '故障已修复'


def test_supervisor_cancels_dead_job(client: FlaskClient, login: Callable[[str], FlaskClient], session: Session,
                                     dead_job: Job) -> None:
    login('chief')
    token = csrf_token(client, '/supervision/incidents')
    client.post(f'/supervision/jobs/{dead_job.id}/cancel', data={'csrf_token': token, 'reason': '不再需要'})
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'cancelled'


def test_staff_cannot_see_dead_jobs(client: FlaskClient, login: Callable[[str], FlaskClient], dead_job: Job) -> None:
    login('staff')
    assert client.get('/supervision/incidents').status_code == 403
    token = csrf_token(client, '/tasks')
    response = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': 'x'})
    assert response.status_code in (302, 403)


def test_supervisor_of_another_county_neither_sees_nor_retries(
        client: FlaskClient, login: Callable[[str], FlaskClient], create_member: Callable[..., User], org: Org,
        session: Session, dead_job: Job) -> None:
    create_member('other_chief', 'supervisor', org.other_county)
    login('other_chief')
    assert '测试错误' not in client.get('/supervision/incidents').get_data(as_text=True)
    token = csrf_token(client, '/supervision/incidents')
    response = client.post(f'/supervision/jobs/{dead_job.id}/retry', data={'csrf_token': token, 'reason': '试试'})
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Job, dead_job.id).status == 'dead'


# -- 案件检索, 审计日志, 异常处理 ----------------------------------------------------------------------------

@pytest.fixture
def two_counties(session: Session, org: Org, people: dict[str, User], chief: User,
                 deploy_file: Callable[[str], object]) -> dict[str, object]:
    """A demo case at the chief's county and one at the other county."""
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    mine, [task] = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                      actor=people['staff'], org_unit=org.township)
    theirs, _ = runtime.start_case(session, 'demo_intake', {'person_name': '黄某某', 'received_on': '2025-09-26'},
                                   actor=people['outsider'], org_unit=org.other_township)
    session.commit()
    return {'mine': mine, 'theirs': theirs, 'task': task}


def test_supervisor_searches_instances_of_the_subtree(client: FlaskClient, login: Callable[[str], FlaskClient],
                                                      two_counties: dict[str, Case]) -> None:
    login('chief')
    response = client.get('/supervision/instances?process=demo_intake&status=running&text=谢')
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert two_counties['mine'].number in html and two_counties['theirs'].number not in html
    assert '登记案件情况' in html  # the current step
    assert two_counties['theirs'].number not in client.get('/supervision/instances').get_data(as_text=True)


def test_bad_search_filters_answer_400_with_each_field_message(
        client: FlaskClient, login: Callable[[str], FlaskClient], org: Org, two_counties: dict[str, Case]) -> None:
    login('chief')
    response = client.get('/supervision/instances?status=broken&started_from=2025-13-40&version=x')
    assert response.status_code == 400
    doc = html.fromstring(response.get_data(as_text=True))
    errors = {element.get('id'): ' '.join(element.text_content().split())
              for element in doc.xpath('//p[@class="field-error"]')}
    assert errors == {'search-status-error': '可选值：running, waiting, completed, error, suspended。',
                      'search-started-from-error': '请按“年-月-日”填写日期。',
                      'search-version-error': '版本应为正整数。'}
    outside = client.get(f'/supervision/instances?org_unit={org.other_county.code}')
    assert outside.status_code == 400 and '该机构不在您的辖区内。' in outside.get_data(as_text=True)
    assert client.get('/supervision/instances?before=abc').status_code == 400


@pytest.mark.parametrize('path', ['/supervision/instances', '/supervision/incidents', '/supervision/audit',
                                  '/supervision/audit/verify'])
def test_staff_are_refused_and_anonymous_sent_to_log_in(client: FlaskClient, login: Callable[[str], FlaskClient],
                                                        people: dict[str, User], path: str) -> None:
    assert client.get(path).status_code == 302 and '/login' in client.get(path).headers['Location']
    login('staff')
    assert client.get(path).status_code == 403


def test_supervisor_navigation_names_the_three_pages(client: FlaskClient, login: Callable[[str], FlaskClient],
                                                     chief: User) -> None:
    login('chief')
    nav = html.fromstring(client.get('/supervision/audit').get_data(as_text=True)).xpath('//nav[@class="main-nav"]')[0]
    links = {' '.join(a.text_content().split()): a.get('href') for a in nav.xpath('a')}
    assert links['案件检索'] == '/supervision/instances' and links['审计日志'] == '/supervision/audit'
    assert links['异常处理'] == '/supervision/incidents'
    assert nav.xpath('a[@aria-current="page"]')[0].get('href') == '/supervision/audit'


def _table_text(response: object) -> str:
    doc = html.fromstring(response.get_data(as_text=True))  # type: ignore[attr-defined]
    return ' '.join(' '.join(tbody.text_content().split()) for tbody in doc.xpath('//table/tbody'))


def test_audit_log_is_scoped_and_filtered(client: FlaskClient, login: Callable[[str], FlaskClient],
                                          two_counties: dict[str, Case]) -> None:
    login('chief')
    table = _table_text(client.get('/supervision/audit'))
    assert two_counties['mine'].number in table and two_counties['theirs'].number not in table
    assert '部署流程定义' not in table  # system events are for the province level
    only_starts = _table_text(client.get('/supervision/audit?kind=case.started'))
    assert '立案' in only_starts and '生成任务' not in only_starts
    bad = client.get('/supervision/audit?kind=DROP TABLE&date_from=yesterday')
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert '事件类型无效。' in text and '请按“年-月-日”填写日期。' in text


def test_audit_admin_reads_their_subtree_and_system_events(client_for: Callable[[str], FlaskClient], org: Org,
                                                            create_member: Callable[..., User],
                                                            two_counties: dict[str, Case]) -> None:
    # 三员: the audit administrator reads the log; the system administrator (legacy ``admin``) does not.
    create_member('auditor', 'audit_admin', org.county)
    auditor = client_for('auditor')
    table = _table_text(auditor.get('/supervision/audit'))
    assert '部署流程定义' in table and two_counties['mine'].number in table
    assert two_counties['theirs'].number not in table
    assert auditor.get('/supervision/instances').status_code == 403
    assert auditor.get('/supervision/incidents').status_code == 403
    create_member('admin1', 'admin', org.province)
    assert client_for('admin1').get('/supervision/audit').status_code == 403


def test_export_needs_csrf_and_is_scoped_and_audited(client: FlaskClient, login: Callable[[str], FlaskClient],
                                                      session: Session, two_counties: dict[str, Case]) -> None:
    login('chief')
    assert client.post('/supervision/audit/export', data={'format': 'csv'}).status_code == 400
    token = csrf_token(client, '/supervision/audit')
    response = client.post('/supervision/audit/export', data={'format': 'csv', 'csrf_token': token})
    assert response.status_code == 200 and response.mimetype == 'text/csv'
    assert 'attachment; filename="audit-log-' in response.headers['Content-Disposition']
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip('\ufeff'))))
    assert rows[0][:4] == ['序号', '时间', '操作人', '事件']
    assert {row[5] for row in rows[1:]} <= {two_counties['mine'].number, ''}
    assert any(row[3] == '立案' for row in rows[1:])
    exported = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'audit.exported')).one()
    assert exported.after['rows'] == len(rows) - 1 and exported.after['format'] == 'csv'

    xlsx = client.post('/supervision/audit/export', data={'format': 'xlsx', 'kind': 'case.*', 'csrf_token': token})
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.data), read_only=True).active
    kinds = {row[4] for row in list(sheet.iter_rows(values_only=True))[1:]}
    assert kinds == {'case.started'}

    wrong = client.post('/supervision/audit/export', data={'format': 'pdf', 'csrf_token': token})
    assert wrong.status_code == 302 and '/supervision/audit' in wrong.headers['Location']
    assert '请选择导出格式' in client.get(wrong.headers['Location']).get_data(as_text=True)


def test_exports_mask_sensitive_values_as_the_page_does(client: FlaskClient, login: Callable[[str], FlaskClient],
                                                        session: Session, org: Org, people: dict[str, User],
                                                        two_counties: dict[str, Case]) -> None:
    runtime.start_case(session, 'demo_intake', {'person_name': '赵某某', 'received_on': '2025-09-26',
                                                'id_number': '430922198001010010'},
                       actor=people['staff'], org_unit=org.township)
    session.commit()
    login('chief')
    token = csrf_token(client, '/supervision/audit')
    response = client.post('/supervision/audit/export', data={'format': 'csv', 'kind': 'case.started',
                                                              'csrf_token': token})
    text = response.get_data(as_text=True)
    assert '430922********0010' in text and '430922198001010010' not in text


def test_staff_cannot_export(client: FlaskClient, login: Callable[[str], FlaskClient],
                             two_counties: dict[str, Case]) -> None:
    login('staff')
    token = csrf_token(client, '/tasks')
    assert client.post('/supervision/audit/export', data={'format': 'csv', 'csrf_token': token}).status_code == 403


def _tamper(session: Session, event_id: int) -> None:
    """Change a row behind the append-only trigger, as someone with database access could."""
    session.execute(sa.text('DROP TRIGGER audit_events_no_update'))
    session.execute(sa.text(f"UPDATE audit_events SET note = '篡改' WHERE id = {event_id}"))
    session.execute(sa.text("CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
                            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"))
    session.commit()


def test_verify_page_reports_ok_then_names_the_tampered_row(
        client: FlaskClient, login: Callable[[str], FlaskClient], session: Session,
        two_counties: dict[str, Case]) -> None:
    login('chief')
    assert '开始校验' in client.get('/supervision/audit/verify').get_data(as_text=True)
    assert client.post('/supervision/audit/verify').status_code == 400  # no CSRF token
    token = csrf_token(client, '/supervision/audit/verify')
    ok = client.post('/supervision/audit/verify', data={'csrf_token': token})
    assert ok.status_code == 200 and '审计链完整' in ok.get_data(as_text=True)
    started = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'case.started')).first()
    _tamper(session, started.id)
    broken = html.fromstring(client.post('/supervision/audit/verify', data={'csrf_token': token}).data)
    assert broken.xpath('//*[@data-broken-id]')[0].get('data-broken-id') == str(started.id)
    assert '立案' in broken.text_content() and '内容可能被修改' in broken.text_content()
    checks = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'audit.verified')
                             .order_by(AuditEvent.id)).all()
    assert [c.after['ok'] for c in checks] == [True, False]


def _errored(session: Session, case: Case) -> int:
    instance_id = case.instances[0].id
    runtime.record_fault(session, instance_id, '流程执行出错：测试故障')
    session.commit()
    return instance_id


def test_incidents_list_retry_and_cancel(client: FlaskClient, login: Callable[[str], FlaskClient], session: Session,
                                         two_counties: dict[str, Case], dead_job: Job) -> None:
    instance_id = _errored(session, two_counties['mine'])
    login('chief')
    listing = client.get('/supervision/incidents').get_data(as_text=True)
    assert '流程执行出错：测试故障' in listing and '测试错误' in listing  # the instance and the dead job
    token = csrf_token(client, '/supervision/incidents')
    assert client.post(f'/supervision/incidents/instances/{instance_id}/retry', data={'reason': 'x'}).status_code == 400
    refused = client.post(f'/supervision/incidents/instances/{instance_id}/retry', data={'csrf_token': token})
    assert refused.status_code == 302
    assert '请填写原因。' in client.get('/supervision/incidents').get_data(as_text=True)
    session.expire_all()
    assert session.get(ProcessInstance, instance_id).status == 'error'
    done = client.post(f'/supervision/incidents/instances/{instance_id}/retry',
                       data={'csrf_token': token, 'reason': '故障已排除'})
    assert done.status_code == 302 and done.headers['Location'] == '/supervision/incidents'
    assert '流程已重新运行' in client.get('/supervision/incidents').get_data(as_text=True)
    session.expire_all()
    assert session.get(ProcessInstance, instance_id).status == 'running'
    # Dead jobs are handled from the same page and come back to it.
    back = client.post(f'/supervision/jobs/{dead_job.id}/cancel',
                       data={'csrf_token': token, 'reason': '不再需要', 'return_to': '/supervision/incidents'})
    assert back.headers['Location'] == '/supervision/incidents'

    _errored(session, two_counties['mine'])
    cancelled = client.post(f'/supervision/incidents/instances/{instance_id}/cancel',
                            data={'csrf_token': token, 'reason': '当事人撤回申请'})
    assert cancelled.status_code == 302
    session.expire_all()
    assert session.get(ProcessInstance, instance_id).status == 'suspended'
    assert session.get(Case, two_counties['mine'].id).status == 'cancelled'


def test_incident_actions_outside_the_subtree_are_404_and_for_staff_403(
        client_for: Callable[[str], FlaskClient], session: Session, org: Org, create_member: Callable[..., User],
        two_counties: dict[str, Case]) -> None:
    instance_id = _errored(session, two_counties['mine'])
    create_member('other_chief', 'supervisor', org.other_county)
    other = client_for('other_chief')
    assert '测试故障' not in other.get('/supervision/incidents').get_data(as_text=True)
    token = csrf_token(other, '/supervision/incidents')
    for action in ('retry', 'cancel'):
        response = other.post(f'/supervision/incidents/instances/{instance_id}/{action}',
                              data={'csrf_token': token, 'reason': '越权'})
        assert response.status_code == 404
    assert other.post('/supervision/incidents/instances/999999/retry',
                      data={'csrf_token': token, 'reason': '不存在'}).status_code == 404
    staff = client_for('staff')
    response = staff.post(f'/supervision/incidents/instances/{instance_id}/retry',
                          data={'csrf_token': csrf_token(staff, '/tasks'), 'reason': '越权'})
    assert response.status_code == 403


def test_case_history_shows_every_value_and_note_in_a_disclosure(
        client_for: Callable[[str], FlaskClient], session: Session, people: dict[str, User],
        two_counties: dict[str, Case]) -> None:
    case, task = two_counties['mine'], two_counties['task']
    runtime.complete_task(session, task.id, {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实'},
                          actor=people['staff'], scope=load_scope(session, people['staff']))
    session.commit()
    doc = html.fromstring(client_for('chief').get(f'/cases/{case.id}').data)
    entries = doc.xpath('//section[@id="history"]//ol[@class="timeline"]/li')
    started = [li for li in entries if '立案' in li.xpath('.//span[@class="tl-what"]')[0].text_content()][0]
    details = started.xpath('.//details[@class="tl-details"]')[0]
    rows = {' '.join(tr.xpath('th')[0].text_content().split()): ' '.join(tr.xpath('td')[1].text_content().split())
            for tr in details.xpath('.//tbody/tr')}
    assert rows['当事人姓名'] == '谢某某' and rows['案件编号'] == case.number
    completed = [li for li in entries if '办理任务' in li.text_content()][0]
    values = {' '.join(tr.xpath('th')[0].text_content().split()): [' '.join(td.text_content().split())
                                                                    for td in tr.xpath('td')]
              for tr in completed.xpath('.//details//tbody/tr')}
    assert values['风险等级'] == ['—', '高'] and values['走访次数'] == ['—', '2']
    assert completed.get('id', '').startswith('event-')
    assert '#' in completed.xpath('.//dl[contains(@class, "detail-meta")]')[0].text_content()


def test_case_page_lists_reminders_sent_and_time_per_step(
        client_for: Callable[[str], FlaskClient], session_factory: sessionmaker[Session], clock: FrozenClock,
        assess: HumanTask) -> None:
    # The first rung of the 调查评估 task's ladder is due at 09:00 on 2025-10-10: the worker sends it.
    clock.advance(timedelta(days=14, minutes=1))
    Worker(session_factory, name='w1', clock=clock).run_once()
    doc = html.fromstring(client_for('chief').get(f'/cases/{assess.case_id}').data)
    reminders = doc.xpath('//section[@id="reminders"]//tbody/tr')
    cells = [[' '.join(td.text_content().split()) for td in tr.xpath('td')] for tr in reminders]
    assert {row[3] for row in cells} == {'刘晓燕', '王芳'}  # the task's candidate group at the township
    assert all(row[1] == '到期提醒' and row[2] == assess.title and row[5] == '未读' for row in cells)
    assert all('2025-10-16' in row[4] for row in cells)
    times = doc.xpath('//div[contains(@class, "step-times")]//tbody/tr')
    assert [' '.join(tr.xpath('th')[0].text_content().split()) for tr in times] == [assess.title]
    assert '14 天' in times[0].text_content() and '进行中' in times[0].text_content()


def test_cli_verify_prints_ok_then_the_first_broken_row(app: Flask, session: Session,
                                                          two_counties: dict[str, Case]) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=['audit', 'verify'])
    total = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    assert result.exit_code == 0 and result.output.startswith('OK') and f'共校验 {total} 条记录' in result.output
    started = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'case.started')).first()
    _tamper(session, started.id)
    result = runner.invoke(args=['audit', 'verify', '--batch', '3'])
    assert result.exit_code == 1
    assert f'id={started.id} kind=case.started' in result.output
    assert started.occurred_dt.astimezone(LOCAL_ZONE).strftime('%Y-%m-%d %H:%M:%S') in result.output


@pytest.mark.parametrize('path', ['/supervision/instances', '/supervision/instances?status=x',
                                  '/supervision/audit', '/supervision/audit/verify', '/supervision/incidents'])
def test_pages_work_under_the_csp_and_label_every_input(client: FlaskClient, login: Callable[[str], FlaskClient],
                                                        session: Session, two_counties: dict[str, Case],
                                                        dead_job: Job, path: str) -> None:
    _errored(session, two_counties['mine'])
    login('chief')
    response = client.get(path)
    body = response.get_data(as_text=True)
    assert ' style=' not in body and '<style' not in body and '<script>' not in body
    doc = html.fromstring(body)
    assert set(doc.xpath('//link[@rel="stylesheet"]/@href')) == {'/static/css/app.css', '/static/css/supervision.css'}
    for element in doc.xpath('//input[not(@type="hidden")] | //select | //textarea'):
        assert doc.xpath(f'//label[@for="{element.get("id")}"]'), f'unlabelled {element.get("name")} on {path}'
    english = client.get(path + ('&' if '?' in path else '?') + 'lang=en')
    assert english.status_code == response.status_code
