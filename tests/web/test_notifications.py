"""The unread counter on every page, the notification list, opening one, marking all read; only one's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.clock import FrozenClock, now
from engine.models.cases import Case
from engine.models.notifications import Notification
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.engine.deadline_support import run_due_jobs, set_time
from tests.web.conftest import page, post_form, text_of

Clients = Callable[[str], FlaskClient]


def _notify(session: Session, user: User, title: str, *, task: HumanTask | None = None, read: bool = False,
            kind: str = 'reminder', age: int = 0) -> Notification:
    note = Notification(user_id=user.id, kind=kind, title=title, body=f'{title}的详细说明',
                        case_id=task.case_id if task else None, human_task_id=task.id if task else None,
                        created_dt=now() - timedelta(minutes=age), read_dt=now() if read else None)
    session.add(note)
    session.commit()
    return note


def _badge(client: FlaskClient, path: str = '/tasks') -> str | None:
    link = page(client.get(path)).xpath('//a[contains(@class, "notify-link")]')[0]
    counts = link.xpath('.//span[contains(@class, "count")]/text()')
    return counts[0] if counts else None


@contextmanager
def _statements(app: Flask) -> Iterator[list[str]]:
    """Collect the SQL the app's engine runs meanwhile."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    engine = app.extensions['fengqiao_db_engine']
    sa.event.listen(engine, 'before_cursor_execute', record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, 'before_cursor_execute', record)


def test_unread_counter_on_every_page_counts_only_my_unread(client_for: Clients, session: Session,
                                                            demo_case: tuple[Case, HumanTask],
                                                            people: dict[str, User]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    assert _badge(staff) is None
    _notify(session, people['staff'], '提醒一', task=task)
    _notify(session, people['staff'], '提醒二', task=task)
    _notify(session, people['staff'], '已读的', task=task, read=True)
    _notify(session, people['staff2'], '别人的', task=task)
    for path in ('/tasks', f'/tasks/{task.id}', f'/cases/{case.id}', '/cases', '/notifications', '/cases/999'):
        assert _badge(staff, path) == '2', path
    assert _badge(client_for('staff2')) == '1'


def test_the_counter_is_one_indexed_count(app: Flask, client_for: Clients, session: Session,
                                          people: dict[str, User]) -> None:
    staff = client_for('staff')
    _notify(session, people['staff'], '提醒')
    with _statements(app) as seen:
        staff.get('/tasks')
    queries = [s for s in seen if 'notifications' in s]
    assert len(queries) == 1
    assert 'count(' in queries[0].lower() and 'read_dt IS NULL' in queries[0]
    if session.get_bind().dialect.name == 'sqlite':
        plan = ' '.join(str(row[-1]) for row in session.execute(sa.text(
            'EXPLAIN QUERY PLAN SELECT count(*) FROM notifications WHERE user_id = 1 AND read_dt IS NULL')))
        # an index on user_id (SQLite may pick the plain one or the partial unread one), never a table scan
        assert 'SEARCH notifications USING' in plan and 'INDEX ix_notifications_' in plan, plan


def test_list_shows_my_notifications_newest_first_with_paging(client_for: Clients, session: Session,
                                                              people: dict[str, User],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for age, title in ((30, '最早'), (20, '其次'), (10, '最新')):
        _notify(session, people['staff'], title, age=age, read=title == '其次')
    _notify(session, people['staff2'], '别人的')
    staff = client_for('staff')
    doc = page(staff.get('/notifications'))
    items = doc.xpath('//ol[@class="notice-list"]/li')
    assert [text_of(li.xpath('.//button[contains(@class, "notice-title")]')[0]) for li in items] == \
        ['最新', '其次', '最早']
    assert ['notice-unread' in li.get('class') for li in items] == [True, False, True]
    assert '2 条未读' in text_of(doc.xpath('//h1')[0])
    assert '别人的' not in text_of(doc)
    monkeypatch.setattr('web.notifications.controllers.PAGE_SIZE', 2)
    first = page(staff.get('/notifications'))
    older = first.xpath('//a[@rel="next"]/@href')[0]
    assert 'before=' in older
    second = page(staff.get(older))
    assert [text_of(b) for b in second.xpath('//button[contains(@class, "notice-title")]')] == ['最早']
    assert second.xpath('//a[@rel="next"]') == []
    assert staff.get('/notifications?before=x').status_code == 400


def test_opening_marks_read_and_goes_to_the_task(client_for: Clients, session: Session,
                                                 demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> None:
    _, task = demo_case
    note = _notify(session, people['staff'], '请办理', task=task)
    staff = client_for('staff')
    response = post_form(staff, f'/notifications/{note.id}/read', {})
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{task.id}'
    session.expire_all()
    assert session.get(Notification, note.id).read_dt is not None
    assert _badge(staff) is None


def test_a_task_out_of_reach_leads_to_the_case_or_the_list(client_for: Clients, session: Session,
                                                          demo_case: tuple[Case, HumanTask],
                                                          people: dict[str, User]) -> None:
    case, task = demo_case
    # the officer at the county sees the township's case, but not the township staff's task
    officer_note = _notify(session, people['officer'], '案件动态', task=task)
    outsider_note = _notify(session, people['outsider'], '不可见', task=task)
    response = post_form(client_for('officer'), f'/notifications/{officer_note.id}/read', {})
    assert response.headers['Location'] == f'/cases/{case.id}'
    response = post_form(client_for('outsider'), f'/notifications/{outsider_note.id}/read', {})
    assert response.headers['Location'] == '/notifications'


def test_someone_elses_notification_is_404_and_stays_unread(client_for: Clients, session: Session,
                                                            people: dict[str, User]) -> None:
    note = _notify(session, people['staff2'], '别人的')
    staff = client_for('staff')
    assert post_form(staff, f'/notifications/{note.id}/read', {}).status_code == 404
    assert post_form(staff, '/notifications/999/read', {}).status_code == 404
    session.expire_all()
    assert session.get(Notification, note.id).read_dt is None


def test_mark_all_read_marks_only_mine(client_for: Clients, session: Session, people: dict[str, User]) -> None:
    mine = [_notify(session, people['staff'], f'提醒{i}') for i in range(3)]
    theirs = _notify(session, people['staff2'], '别人的')
    staff = client_for('staff')
    response = post_form(staff, '/notifications/read-all', {}, token_from='/notifications')
    assert response.status_code == 302 and response.headers['Location'] == '/notifications'
    doc = page(staff.get('/notifications'))
    assert text_of(doc.xpath('//div[contains(@class, "alert-success")]')[0]) == '已将 3 条通知标为已读。'
    assert doc.xpath('//form[contains(@action, "read-all")]') == []  # nothing left to mark
    session.expire_all()
    assert all(session.get(Notification, n.id).read_dt is not None for n in mine)
    assert session.get(Notification, theirs.id).read_dt is None


def test_writes_need_csrf_and_login(client: FlaskClient, client_for: Clients, session: Session,
                                    people: dict[str, User]) -> None:
    note = _notify(session, people['staff'], '提醒')
    assert client_for('staff').post(f'/notifications/{note.id}/read').status_code == 400
    assert client_for('staff').post('/notifications/read-all').status_code == 400
    assert client.get('/notifications').status_code == 302
    session.expire_all()
    assert session.get(Notification, note.id).read_dt is None


def test_a_reminder_from_the_worker_reaches_the_counter_and_the_task(client_for: Clients, session: Session,
                                                                     assess: HumanTask, clock: FrozenClock) -> None:
    staff = client_for('staff')
    set_time(clock, '2025-10-10 09:00:00')
    run_due_jobs(session)
    assert _badge(staff) == '1'
    doc = page(staff.get('/notifications'))
    [item] = doc.xpath('//ol[@class="notice-list"]/li')
    assert text_of(item.xpath('.//button')[0]) == '待办提醒：调查评估 将于 2025-10-16 到期（剩 5 个工作日）'
    assert '到期提醒' in text_of(item.xpath('.//div[@class="notice-meta"]')[0])
    action = item.xpath('.//form/@action')[0]
    assert post_form(staff, action, {}, token_from='/notifications').headers['Location'] == f'/tasks/{assess.id}'


def test_notifications_page_in_english(client_for: Clients, session: Session, people: dict[str, User]) -> None:
    _notify(session, people['staff'], '提醒', kind='escalation')
    staff = client_for('staff')
    body = text_of(page(staff.get('/notifications?lang=en')))
    assert 'Notifications' in body and '1 unread' in body and 'Escalated as overdue' in body
    assert 'Mark all as read' in body
