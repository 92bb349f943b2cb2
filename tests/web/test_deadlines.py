"""Due dates in words, the deadline panel of the task page, the 升级给我 tab, supervisors' snooze and cancel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.calendar import WorkCalendar
from engine.clock import LOCAL_ZONE, FrozenClock
from engine.models.audit import AuditEvent
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.engine.deadline_support import bj, local, run_due_jobs, set_time, task_jobs
from tests.web.conftest import page, post_form, text_of
from web.core.templating import describe_due

Clients = Callable[[str], FlaskClient]
RULE_ZH = '10 个工作日，自 2025-09-26 收到委托函起算（社区矫正法实施办法 §14）→ 2025-10-16 到期'


def _reminder(session: Session, task: HumanTask, offset: str) -> Job:
    return next(job for job in task_jobs(session, task.id) if job.payload.get('offset') == offset)


def _escalation(session: Session, task: HumanTask) -> Job:
    return next(job for job in task_jobs(session, task.id) if job.kind == 'escalation')


def _counts(client: FlaskClient) -> dict[str, int]:
    """The tabs' counts as a reader sees them: a supervisor's wide ones as the page's script fills them in."""
    [nav] = page(client.get('/tasks')).xpath('//nav[contains(@class, "tabs")]')
    url = nav.get('data-counts-url')
    later = client.get(url).get_json()['counts'] if url else {}
    shown = {tab.get('href').split('view=')[1]: tab.xpath('.//span[@class="count"]')[0].text for tab in nav.xpath('a')}
    return {view: later[view] if text == '…' else int(text) for view, text in shown.items()}


# -- the words -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(('due', 'at', 'text', 'tone'), [
    ('2025-10-16 23:59:59', '2025-09-26 09:00', '剩 10 个工作日', 'later'),   # over the National Day week
    ('2025-10-16 23:59:59', '2025-10-14 09:00', '剩 2 个工作日', 'soon'),
    ('2025-10-16 23:59:59', '2025-10-16 09:00', '今天到期', 'today'),
    ('2025-10-16 23:59:59', '2025-10-17 00:00', '逾期 1 天', 'overdue'),
    ('2025-10-16 23:59:59', '2025-10-20 08:00', '逾期 4 天', 'overdue'),
    ('2025-10-16 10:00:00', '2025-10-16 11:00', '已逾期', 'overdue'),      # an hour deadline missed today
    ('2025-10-04 10:00:00', '2025-10-03 10:00', '剩 1 天', 'soon'),        # hours ending in the holiday week
])
def test_due_words(app: Flask, due: str, at: str, text: str, tone: str) -> None:
    with app.test_request_context('/'):
        status = describe_due(bj(due), bj(at), WorkCalendar(), LOCAL_ZONE)
    assert (status.text, status.tone, status.overdue) == (text, tone, tone == 'overdue')


def test_due_words_in_english(app: Flask) -> None:
    with app.test_request_context('/?lang=en'):
        from flask import session
        session['lang'] = 'en'
        words = [describe_due(bj(due), bj(at), WorkCalendar(), LOCAL_ZONE).text for due, at in (
            ('2025-10-16 23:59:59', '2025-10-15 09:00'), ('2025-10-16 23:59:59', '2025-09-26 09:00'),
            ('2025-10-16 23:59:59', '2025-10-18 09:00'), ('2025-10-16 23:59:59', '2025-10-16 09:00'))]
    assert words == ['1 working day left', '10 working days left', '2 days overdue', 'Due today']


def test_working_days_follow_the_units_calendar(app: Flask) -> None:
    # The county declared 2025-10-15 a local rest day: one working day fewer before the 16th.
    calendar = WorkCalendar({datetime(2025, 10, 15).date(): False})
    with app.test_request_context('/'):
        assert describe_due(bj('2025-10-16 23:59:59'), bj('2025-10-13 09:00'), calendar, LOCAL_ZONE).text == \
            '剩 2 个工作日'


# -- the task page -------------------------------------------------------------------------------------

def test_task_page_explains_the_due_date_and_lists_the_reminders(client_for: Clients, assess: HumanTask) -> None:
    doc = page(client_for('staff').get(f'/tasks/{assess.id}'))
    panel = doc.xpath('//section[@id="reminders"]')[0]
    assert text_of(panel.xpath('.//dd[@class="rule"]')[0]) == RULE_ZH
    due = panel.xpath('.//span[contains(@class, "due ")]')[0]
    assert 'due-later' in due.get('class')
    assert text_of(due) == '2025年10月16日 剩 10 个工作日'
    jobs = [text_of(li) for li in panel.xpath('.//ul[@class="job-list"]/li')]
    assert jobs == [
        '2025年10月10日 09:00 到期提醒 通知对象 township_staff（2 人）',
        '2025年10月14日 09:00 到期提醒 通知对象 township_staff（2 人）',
        '2025年10月16日 09:00 到期提醒 通知对象 township_staff（2 人）',
        '2025年10月16日 23:59 超期升级 通知对象 桃江县司法局 · 邓志刚',
    ]
    assert panel.xpath('.//form') == []  # staff may not adjust reminders


def test_reminders_go_to_the_assignee_once_claimed(client_for: Clients, assess: HumanTask) -> None:
    staff = client_for('staff')
    post_form(staff, f'/tasks/{assess.id}/claim', {})
    jobs = [text_of(li) for li in page(staff.get(f'/tasks/{assess.id}')).xpath('//ul[@class="job-list"]/li')]
    assert jobs[0].endswith('通知对象 刘晓燕')


def test_task_page_in_english(client_for: Clients, assess: HumanTask) -> None:
    staff = client_for('staff')
    staff.get('/tasks?lang=en')
    doc = page(staff.get(f'/tasks/{assess.id}'))
    assert text_of(doc.xpath('//dd[@class="rule"]')[0]) == ('10 working days from 收到委托函 on 2025-09-26 '
                                                           '(社区矫正法实施办法 §14) → due 2025-10-16')
    assert '10 working days left' in text_of(doc.xpath('//section[@id="reminders"]')[0])


def test_supervisor_sees_the_adjust_forms(client_for: Clients, assess: HumanTask) -> None:
    doc = page(client_for('chief').get(f'/tasks/{assess.id}'))
    forms = doc.xpath('//section[@id="reminders"]//form')
    assert len(forms) == 6  # snooze and cancel for each of the three reminders, none for the escalation
    assert all(form.xpath('.//input[@name="csrf_token"]') for form in forms)
    assert doc.xpath('//details[@class="job-adjust"][@open]') == []


# -- lists ---------------------------------------------------------------------------------------------

def test_lists_show_time_left_and_overdue_rows_stand_out(client_for: Clients, assess: HumanTask,
                                                         clock: FrozenClock) -> None:
    staff = client_for('staff')
    row = page(staff.get('/tasks?view=group')).xpath('//tbody/tr')[0]
    assert 'row-overdue' not in (row.get('class') or '')
    assert text_of(row.xpath('td')[5]) == '2025年10月16日 剩 10 个工作日'
    set_time(clock, '2025-10-20 10:00:00')
    row = page(staff.get('/tasks?view=group')).xpath('//tbody/tr')[0]
    assert 'row-overdue' in row.get('class')
    assert text_of(row.xpath('td')[5]) == '2025年10月16日 逾期 4 天'
    assert row.xpath('td')[5].xpath('.//span[contains(@class, "due-overdue")]')
    case_page = text_of(page(staff.get(f'/cases/{assess.case_id}')))
    assert '逾期 4 天' in case_page


def test_escalated_tasks_reach_the_supervisors_tab_flagged(client_for: Clients, session: Session,
                                                           assess: HumanTask, clock: FrozenClock) -> None:
    chief = client_for('chief')
    assert _counts(chief)['escalated'] == 0
    set_time(clock, '2025-10-17 09:00:00')
    run_due_jobs(session)
    assert _counts(chief)['escalated'] == 1
    doc = page(chief.get('/tasks?view=escalated'))
    assert doc.xpath('//nav[contains(@class, "tabs")]/a[@aria-current="page"]/text()')[0].strip() == '升级给我'
    [row] = doc.xpath('//tbody/tr')
    assert 'row-escalated' in row.get('class') and '已升级' in text_of(row)
    # staff see the task flagged in their queue, but it is not escalated to them
    staff = client_for('staff')
    assert _counts(staff)['escalated'] == 0
    assert '已升级' in text_of(page(staff.get('/tasks?view=group')).xpath('//tbody/tr')[0])
    panel = text_of(page(staff.get(f'/tasks/{assess.id}')).xpath('//section[@id="reminders"]')[0])
    assert '超期升级 已升级 2025年10月17日 09:00 → 桃江县司法局' in panel


def test_empty_escalated_tab(client_for: Clients, chief: User) -> None:
    assert '暂无升级给您的超期任务' in text_of(page(client_for('chief').get('/tasks?view=escalated')))


# -- snooze and cancel -----------------------------------------------------------------------------------

def test_supervisor_snoozes_a_reminder(client_for: Clients, session: Session, assess: HumanTask,
                                       chief: User) -> None:
    job = _reminder(session, assess, '-5wd')
    chief_client = client_for('chief')
    response = post_form(chief_client, f'/tasks/{assess.id}/reminders/{job.id}/snooze',
                         {'until': '2025-10-13T10:30', 'reason': '节后统一提醒'})
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{assess.id}#reminders'
    session.expire_all()
    assert local(session.get(Job, job.id).due_dt) == '2025-10-13 10:30:00'
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'reminder.snoozed')).one()
    assert event.note == '节后统一提醒' and event.actor_id == chief.id
    doc = page(chief_client.get(f'/tasks/{assess.id}'))
    assert '提醒已推迟' in text_of(doc.xpath('//div[contains(@class, "alert-success")]')[0])
    first = text_of(doc.xpath('//ul[@class="job-list"]/li')[0])
    assert first.startswith('2025年10月13日 10:30 到期提醒') and '已推迟：节后统一提醒' in first


def test_snooze_errors_stand_beside_the_fields_and_change_nothing(client_for: Clients, session: Session,
                                                                  assess: HumanTask) -> None:
    job = _reminder(session, assess, '-2wd')
    chief = client_for('chief')
    response = post_form(chief, f'/tasks/{assess.id}/reminders/{job.id}/snooze', {'until': '明天', 'reason': ' '})
    assert response.status_code == 400
    doc = page(response)
    [details] = doc.xpath('//details[@open]')
    form = details.xpath('.//form[contains(@action, "/snooze")]')[0]
    assert text_of(form.xpath('.//div[.//input[@name="until"]]//p[@class="field-error"]')[0]) == \
        '请按“年-月-日 时:分”填写日期和时间。'
    assert text_of(form.xpath('.//div[.//input[@name="reason"]]//p[@class="field-error"]')[0]) == '请填写原因。'
    assert form.xpath('.//input[@name="until"]/@value') == ['明天']
    assert form.xpath('.//input[@name="until"]/@aria-invalid') == ['true']
    # the cancel form of the same reminder and the other reminders' forms carry no errors
    assert len(doc.xpath('//p[@class="field-error"]')) == 2
    # a time already past: the engine's own check, beside the field too
    response = post_form(chief, f'/tasks/{assess.id}/reminders/{job.id}/snooze',
                         {'until': '2025-09-01T09:00', 'reason': '推迟'})
    assert response.status_code == 400
    assert '请填写一个将来的时间。' in text_of(page(response).xpath('//div[.//input[@name="until"]]')[0])
    session.expire_all()
    assert local(session.get(Job, job.id).due_dt) == '2025-10-14 09:00:00'
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                          .where(AuditEvent.kind == 'reminder.snoozed')) == 0


def test_supervisor_cancels_a_reminder_with_a_reason(client_for: Clients, session: Session,
                                                     assess: HumanTask) -> None:
    job = _reminder(session, assess, '0')
    chief = client_for('chief')
    response = post_form(chief, f'/tasks/{assess.id}/reminders/{job.id}/cancel', {'reason': ''})
    assert response.status_code == 400
    form = page(response).xpath('//form[contains(@action, "/cancel")][.//p[@class="field-error"]]')[0]
    assert form.get('action') == f'/tasks/{assess.id}/reminders/{job.id}/cancel'
    assert text_of(form.xpath('.//p[@class="field-error"]')[0]) == '请填写原因。'
    response = post_form(chief, f'/tasks/{assess.id}/reminders/{job.id}/cancel', {'reason': '当事人已到案'})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Job, job.id).status == 'cancelled'
    assert session.scalars(sa.select(AuditEvent.note).where(AuditEvent.kind == 'reminder.cancelled')).one() == \
        '当事人已到案'
    jobs = page(chief.get(f'/tasks/{assess.id}')).xpath('//ul[@class="job-list"]/li')
    assert len(jobs) == 3  # the cancelled reminder is no longer upcoming


def test_a_reminder_already_sent_cannot_be_cancelled(client_for: Clients, session: Session, assess: HumanTask,
                                                     clock: FrozenClock) -> None:
    job = _reminder(session, assess, '-5wd')
    set_time(clock, '2025-10-10 09:30:00')
    run_due_jobs(session)
    chief = client_for('chief')
    response = post_form(chief, f'/tasks/{assess.id}/reminders/{job.id}/cancel', {'reason': '重复'})
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{assess.id}#reminders'
    flash = page(chief.get(response.headers['Location'])).xpath('//div[contains(@class, "alert-error")]')[0]
    assert text_of(flash) == '该提醒已发送或已取消。'


@pytest.mark.parametrize(('who', 'target', 'status'), [
    ('staff', 'reminder', 403),          # sees the task, does not supervise its unit
    ('outsider', 'reminder', 404),       # does not see the task
    ('chief', 'escalation', 404),        # only reminders can be adjusted
    ('chief', 'other_task', 404),        # a reminder of another task under this task's URL
])
@pytest.mark.parametrize('action', ['snooze', 'cancel'])
def test_reminder_actions_access(client_for: Clients, session: Session, assess: HumanTask, who: str, target: str,
                                 status: int, action: str, org: object, people: dict[str, User]) -> None:
    from engine import runtime
    job = _escalation(session, assess) if target == 'escalation' else _reminder(session, assess, '-2wd')
    task_id = assess.id
    if target == 'other_task':
        _, [other] = runtime.start_case(session, 'web_assessment', {'commission_received_on': '2025-09-29'},
                                        actor=people['staff'], org_unit=people['staff'].org_unit)
        session.commit()
        task_id = other.id
    response = post_form(client_for(who), f'/tasks/{task_id}/reminders/{job.id}/{action}',
                         {'until': '2025-10-13T09:00', 'reason': '测试'})
    assert response.status_code == status
    session.expire_all()
    assert session.get(Job, job.id).status == 'pending' and session.get(Job, job.id).due_dt == job.due_dt


def test_reminder_actions_need_csrf(client_for: Clients, session: Session, assess: HumanTask) -> None:
    job = _reminder(session, assess, '-2wd')
    response = client_for('chief').post(f'/tasks/{assess.id}/reminders/{job.id}/cancel', data={'reason': 'x'})
    assert response.status_code == 400
    session.expire_all()
    assert session.get(Job, job.id).status == 'pending'


def test_due_soon_window_is_unchanged(client_for: Clients, assess: HumanTask, clock: FrozenClock) -> None:
    set_time(clock, '2025-10-14 09:00:00')
    assert _counts(client_for('staff'))['due_soon'] == 1
    clock.advance(timedelta(days=3))
    assert _counts(client_for('staff'))['overdue'] == 1
