"""Due dates on human tasks, their reminder and escalation jobs and the jobs' effects, through the real engine."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.clock import FrozenClock, now
from engine.deadlines import explain
from engine.errors import AccessDenied, Conflict, NotFound, ValidationFailed
from engine.jobs import handler_for, registered_kinds
from engine.mail import configure_mail
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.jobs import Job
from engine.models.notifications import Notification
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.reminders import (
    cancel_reminder,
    cancel_task_jobs,
    escalation_queue_clause,
    escalation_target,
    schedule_task_jobs,
    snooze_reminder,
)
from engine.tasks import claim_task, list_tasks
from tests.conftest import executed_statements, rerun_migration
from tests.engine.deadline_support import bj, local, run_due_jobs, set_time, task_jobs
from tests.fixtures.directory import Org

ASSESSMENT = 'tests/engine/bpmn/deadline_assessment.bpmn'
ESCALATED_PATH_REVISION = 'a0b1c2d3e4f6'
BOUNDARY = 'tests/engine/bpmn/deadline_boundary.bpmn'
START = {'person_name': '谢某某', 'commission_received_on': '2025-09-26'}


@pytest.fixture
def people(org: Org, create_member: Callable[..., User]) -> dict[str, User]:
    return {
        'staff': create_member('staff', 'township_staff', org.township),
        'lead': create_member('lead', 'township_staff', org.county),          # holds the group above the task
        'outsider': create_member('outsider', 'township_staff', org.other_township),
        'county_sup': create_member('county_sup', 'supervisor', org.county),
        'city_sup': create_member('city_sup', 'supervisor', org.city),
        'prov_sup': create_member('prov_sup', 'supervisor', org.province),
    }


def _start(session: Session, org: Org, people: dict[str, User], **data: Any) -> HumanTask:
    _, tasks = runtime.start_case(session, 'deadline_assessment', {**START, **data}, actor=people['staff'],
                                  org_unit=org.township)
    session.commit()
    [task] = tasks
    return task


@pytest.fixture
def assess(session: Session, org: Org, people: dict[str, User], clock: FrozenClock,
           deploy_file: Callable[[str], object]) -> HumanTask:
    deploy_file(ASSESSMENT)
    return _start(session, org, people)


def _schedule(session: Session, task_id: int) -> list[tuple[str, str | None, str | None]]:
    return [(job.kind, job.payload.get('offset'), local(job.due_dt)) for job in task_jobs(session, task_id)
            if job.status == 'pending']


def _notified(session: Session, kind: str = 'reminder') -> list[tuple[str, str]]:
    rows = session.execute(sa.select(User.username, Notification.title).join(User, User.id == Notification.user_id)
                           .where(Notification.kind == kind).order_by(Notification.id)).all()
    return [(row[0], row[1]) for row in rows]


def _audits(session: Session, kind: str) -> list[AuditEvent]:
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


def _job(session: Session, task: HumanTask, offset: str | None, kind: str = 'reminder') -> Job:
    return next(job for job in task_jobs(session, task.id) if job.kind == kind and job.payload.get('offset') == offset)


# -- due dates and scheduled jobs -----------------------------------------------------------------------

def test_task_gets_its_legal_due_date_and_rule(session: Session, assess: HumanTask) -> None:
    task = session.get(HumanTask, assess.id)
    assert task is not None and local(task.due_dt) == '2025-10-16 23:59:59'
    assert task.due_rule is not None and task.due_rule['start'] == '2025-09-26'
    assert explain(task.due_rule) == ('10 个工作日，自 2025-09-26 收到委托函起算（社区矫正法实施办法 §14）'
                                      '→ 2025-10-16 到期')
    assert _schedule(session, task.id) == [
        ('reminder', '-5wd', '2025-10-10 09:00:00'),
        ('reminder', '-2wd', '2025-10-14 09:00:00'),
        ('reminder', '0', '2025-10-16 09:00:00'),
        ('escalation', None, '2025-10-16 23:59:59'),
    ]
    keys = [job.key for job in task_jobs(session, task.id)]
    assert keys[0] == f'reminder:{task.id}:-5wd:2025-10-16T23:59:59+08:00'
    assert keys[-1] == f'escalation:{task.id}:2025-10-16T23:59:59+08:00'
    assert {job.instance_id for job in task_jobs(session, task.id)} == {task.instance_id}


def test_expedited_case_skips_rungs_already_behind(session: Session, org: Org, people: dict[str, User],
                                                  clock: FrozenClock, deploy_file: Callable[[str], object]) -> None:
    deploy_file(ASSESSMENT)
    task = _start(session, org, people, expedited=True)
    assert local(task.due_dt) == '2025-10-10 23:59:59'
    # -5wd would be 2025-09-26 09:00, the moment the task was created.
    assert _schedule(session, task.id) == [
        ('reminder', '-2wd', '2025-09-30 09:00:00'),
        ('reminder', '0', '2025-10-10 09:00:00'),
        ('escalation', None, '2025-10-10 23:59:59'),
    ]


def test_task_without_deadline_has_no_due_date_or_jobs(session: Session, org: Org, people: dict[str, User],
                                                       clock: FrozenClock,
                                                       deploy_legacy: Callable[..., object]) -> None:
    # 归档's deadline is the fixture's only 365-day one; versions deployed before deadlines were
    # required still run tasks without one.
    deploy_legacy(ASSESSMENT, remove=['<camunda:property name="deadline" value="365 calendar_days" />'])
    assess = _start(session, org, people)
    _, [archive] = runtime.complete_task(session, assess.id, {'opinion': '适用社区矫正'}, actor=people['staff'],
                                         scope=load_scope(session, people['staff']))
    session.commit()
    assert archive.bpmn_id == 'archive' and archive.due_dt is None and archive.due_rule is None
    assert task_jobs(session, archive.id) == []


def test_handlers_are_registered() -> None:
    assert {'reminder', 'escalation'} <= registered_kinds()


# -- reminders ------------------------------------------------------------------------------------------

def test_reminder_goes_to_candidates_at_or_above_the_unit_once(session: Session, assess: HumanTask,
                                                               clock: FrozenClock) -> None:
    set_time(clock, '2025-10-10 09:00:00')
    [job] = run_due_jobs(session)
    assert job.payload['offset'] == '-5wd'
    title = '待办提醒：调查评估 将于 2025-10-16 到期（剩 5 个工作日）'
    assert _notified(session) == [('staff', title), ('lead', title)]
    [sent] = _audits(session, 'reminder.sent')
    assert sent.after is not None and sent.after['recipients'] == ['staff', 'lead'] and sent.actor_id is None
    assert sent.human_task_id == assess.id and sent.after['offset'] == '-5wd'

    before = (session.scalar(sa.select(sa.func.count()).select_from(Notification)),
              session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)))
    handler_for('reminder')(session, job)  # a worker that crashed before marking it done runs it again
    session.commit()
    after = (session.scalar(sa.select(sa.func.count()).select_from(Notification)),
             session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)))
    assert after == before


def test_reminder_goes_to_the_assignee_once_claimed(session: Session, assess: HumanTask, clock: FrozenClock,
                                                    people: dict[str, User]) -> None:
    claim_task(session, assess.id, actor=people['staff'], scope=load_scope(session, people['staff']))
    session.commit()
    set_time(clock, '2025-10-10 09:00:00')
    run_due_jobs(session)
    set_time(clock, '2025-10-14 09:00:00')
    run_due_jobs(session)
    assert _notified(session) == [('staff', '待办提醒：调查评估 将于 2025-10-16 到期（剩 5 个工作日）'),
                                  ('staff', '待办提醒：调查评估 将于 2025-10-16 到期（剩 2 个工作日）')]


def test_a_worker_catching_up_sends_only_the_latest_rung(session: Session, assess: HumanTask,
                                                         clock: FrozenClock) -> None:
    set_time(clock, '2025-10-14 09:30:00')
    assert [job.payload['offset'] for job in run_due_jobs(session)] == ['-5wd', '-2wd']
    assert _notified(session) == [('staff', '待办提醒：调查评估 将于 2025-10-16 到期（剩 2 个工作日）'),
                                  ('lead', '待办提醒：调查评估 将于 2025-10-16 到期（剩 2 个工作日）')]
    assert len(_audits(session, 'reminder.sent')) == 1


def test_reminder_on_the_due_day(session: Session, assess: HumanTask, clock: FrozenClock) -> None:
    set_time(clock, '2025-10-16 09:00:00')
    handler_for('reminder')(session, _job(session, assess, '0'))
    session.commit()
    assert ('staff', '待办提醒：调查评估 将于 2025-10-16 到期（今天到期）') in _notified(session)


def test_completion_cancels_pending_jobs(session: Session, assess: HumanTask, clock: FrozenClock,
                                         people: dict[str, User]) -> None:
    set_time(clock, '2025-10-10 10:00:00')
    run_due_jobs(session)
    runtime.complete_task(session, assess.id, {'opinion': '同意'}, actor=people['staff'],
                          scope=load_scope(session, people['staff']))
    session.commit()
    statuses = [(job.payload.get('offset'), job.status) for job in task_jobs(session, assess.id)]
    assert statuses == [('-5wd', 'done'), ('-2wd', 'cancelled'), ('0', 'cancelled'), (None, 'cancelled')]
    set_time(clock, '2025-10-20 09:00:00')
    assert run_due_jobs(session) == []
    handler_for('escalation')(session, _job(session, assess, None, 'escalation'))  # even if run anyway
    session.commit()
    assert not session.get(HumanTask, assess.id).is_escalated  # type: ignore[union-attr]
    assert len(_notified(session)) == 2


def test_cancelling_reaches_the_jobs_the_session_holds_and_those_not_yet_written(session: Session,
                                                                                  assess: HumanTask) -> None:
    held = task_jobs(session, assess.id)
    held[0].status = 'done'  # changed in this transaction, not yet flushed: it stays done
    extra = Job(kind='reminder', key=f'reminder:{assess.id}:extra', instance_id=assess.instance_id,
                human_task_id=assess.id, due_dt=now() + timedelta(days=1), status='pending', attempts=0,
                payload={}, created_dt=now())
    other = Job(kind='message', key='message:unrelated', instance_id=assess.instance_id, human_task_id=assess.id,
                due_dt=now(), status='pending', attempts=0, payload={}, created_dt=now())
    session.add_all([extra, other])
    assert cancel_task_jobs(session, assess) == 4  # three rungs left and the one just added
    assert [job.status for job in held] == ['done', 'cancelled', 'cancelled', 'cancelled']
    assert extra.status == 'cancelled' and extra.done_dt is not None
    assert other.status == 'pending'  # not a reminder or an escalation
    session.commit()
    stored = {job.key: job.status for job in task_jobs(session, assess.id)}
    assert stored == {held[0].key: 'done', **{job.key: 'cancelled' for job in [*held[1:], extra]}}


def test_task_cancelled_by_the_engine_cancels_its_jobs(session: Session, org: Org, people: dict[str, User],
                                                       clock: FrozenClock,
                                                       deploy_file: Callable[[str], object]) -> None:
    deploy_file(BOUNDARY)
    _, [task] = runtime.start_case(session, 'deadline_boundary', {}, actor=people['staff'], org_unit=org.township)
    session.commit()
    assert local(task.due_dt) == '2025-09-28 09:00:00'  # 48 hours, straight through the weekend
    assert _schedule(session, task.id) == [('reminder', '-4h', '2025-09-28 05:00:00'),
                                           ('escalation', None, '2025-09-28 09:00:00')]
    clock.advance(timedelta(hours=2))
    runtime.fire_timers(session, task.instance_id)  # the interrupting boundary timer withdraws the task
    session.commit()
    session.refresh(task)
    assert task.status == 'cancelled'
    assert {job.status for job in task_jobs(session, task.id)} == {'cancelled'}


def test_stale_job_does_nothing(session: Session, assess: HumanTask, clock: FrozenClock) -> None:
    task = session.get(HumanTask, assess.id)
    assert task is not None and task.due_dt is not None
    job = _job(session, task, '-5wd')
    task.due_dt = task.due_dt + timedelta(days=3)  # the due time moved and this job was not rescheduled
    session.commit()
    set_time(clock, '2025-10-10 09:00:00')
    handler_for('reminder')(session, job)
    session.commit()
    assert _notified(session) == []


def test_due_change_reschedules_and_a_returning_due_revives_jobs(session: Session, assess: HumanTask) -> None:
    task = session.get(HumanTask, assess.id)
    assert task is not None and task.due_dt is not None
    original = task.due_dt
    task.due_dt = original + timedelta(days=1)
    schedule_task_jobs(session, task)
    session.commit()
    assert [s[2] for s in _schedule(session, task.id)] == ['2025-10-11 09:00:00', '2025-10-15 09:00:00',
                                                           '2025-10-17 09:00:00', '2025-10-17 23:59:59']
    task.due_dt = original
    schedule_task_jobs(session, task)  # the old keys come back to life instead of colliding
    session.commit()
    assert [s[2] for s in _schedule(session, task.id)] == ['2025-10-10 09:00:00', '2025-10-14 09:00:00',
                                                           '2025-10-16 09:00:00', '2025-10-16 23:59:59']
    assert len(task_jobs(session, task.id)) == 8


# -- escalation -----------------------------------------------------------------------------------------

def test_the_migration_gives_escalated_tasks_their_units_path(session: Session, assess: HumanTask, clock: FrozenClock,
                                                             org: Org) -> None:
    set_time(clock, '2025-10-17 00:00:00')
    handler_for('escalation')(session, _job(session, assess, None, 'escalation'))
    rerun_migration(session, ESCALATED_PATH_REVISION)
    task = session.get(HumanTask, assess.id)
    assert task is not None and task.escalated_org_path == org.city.path
    queue = session.scalars(sa.select(HumanTask.id).where(escalation_queue_clause(
        load_scope(session, session.scalars(sa.select(User).where(User.username == 'city_sup')).one())))).all()
    assert queue == [assess.id]


def _escalate_to_the_city(session: Session, assess: HumanTask, org: Org) -> list[int]:
    """360 more open tasks of the case, one in ten of them escalated to the city, and as many completed; return
    the escalated ones in due order."""
    base = {column: getattr(assess, column) for column in ('instance_id', 'case_id', 'bpmn_id', 'title',
                                                            'org_unit_id', 'org_path', 'created_dt')}
    escalated = {'is_escalated': True, 'escalated_to_group': 'supervisor', 'escalated_org_unit_id': org.city.id,
                 'escalated_org_path': org.city.path}
    session.execute(sa.insert(HumanTask), [
        {**base, 'spiff_task_id': f'extra-{n}', 'status': 'completed' if n % 2 else 'open',
         'due_dt': now() + timedelta(hours=720 - n), **(escalated if n % 20 == 0 else {})} for n in range(720)])
    session.commit()
    return list(session.scalars(sa.select(HumanTask.id).where(HumanTask.is_escalated.is_(True))
                                .order_by(HumanTask.due_dt, HumanTask.id)))


@pytest.mark.postgres
def test_the_planner_counts_a_provinces_escalation_queue(session: Session, assess: HumanTask, org: Org) -> None:
    # Alone, each escalation clause keeps about a tenth, and their product would put the queue at a row or none.
    _escalate_to_the_city(session, assess, org)
    session.execute(sa.text('ANALYZE human_tasks'))
    scope = load_scope(session, session.scalars(sa.select(User).where(User.username == 'prov_sup')).one())
    query = sa.select(HumanTask.id).where(escalation_queue_clause(scope))
    sql = str(query.compile(session.get_bind(), compile_kwargs={'literal_binds': True}))
    [[plan]] = session.execute(sa.text(f'EXPLAIN (FORMAT JSON) {sql}')).one()
    actual = len(session.scalars(query).all())
    assert actual == 36
    assert actual / 2 <= plan['Plan']['Plan Rows'] <= actual * 2


def test_a_province_walks_its_escalation_queue_in_due_order_and_a_county_reads_its_range(
        session: Session, assess: HumanTask, org: Org, people: dict[str, User]) -> None:
    escalated = _escalate_to_the_city(session, assess, org)
    assert len(escalated) == 36
    sqlite = session.get_bind().dialect.name == 'sqlite'
    for user, expected, index in (('prov_sup', escalated, 'ix_human_tasks_open_escalated_due (escalated_to_group=?)'),
                                  ('city_sup', escalated, 'ix_human_tasks_open_escalated_due (escalated_to_group=?)'),
                                  ('county_sup', [], 'ix_human_tasks_open_escalated (escalated_to_group=? AND '
                                                     'escalated_org_path>? AND escalated_org_path<?)')):
        scope = load_scope(session, people[user])
        with executed_statements(session) as statements:
            page = list_tasks(session, scope, 'escalated')
        assert [task.id for task in page.items] == expected
        if sqlite:  # PostgreSQL chooses by its statistics (test_the_planner_counts_a_provinces_escalation_queue)
            [(statement, parameters)] = [s for s in statements if 'ORDER BY' in s[0]]
            plan = [row[3] for row in session.connection().exec_driver_sql(f'EXPLAIN QUERY PLAN {statement}',
                                                                           parameters)]
            assert plan == [f'SEARCH human_tasks USING INDEX {index}'] + ([] if index.startswith(
                'ix_human_tasks_open_escalated_due') else ['USE TEMP B-TREE FOR ORDER BY']), (user, plan)


def test_overdue_task_escalates_to_the_city_supervisor_once(session: Session, assess: HumanTask, clock: FrozenClock,
                                                            org: Org, people: dict[str, User]) -> None:
    job = _job(session, assess, None, 'escalation')
    set_time(clock, '2025-10-16 12:00:00')
    handler_for('escalation')(session, job)  # not overdue yet: nothing
    session.commit()
    assert not session.get(HumanTask, assess.id).is_escalated  # type: ignore[union-attr]

    set_time(clock, '2025-10-17 00:00:00')
    handler_for('escalation')(session, job)
    session.commit()
    task = session.get(HumanTask, assess.id)
    assert task is not None and task.is_escalated and local(task.escalated_dt) == '2025-10-17 00:00:00'
    assert task.escalated_to_group == 'supervisor' and task.escalated_org_unit_id == org.city.id
    assert task.escalated_org_path == org.city.path  # the city's queue is a range of it
    case = session.get(Case, task.case_id)
    assert case is not None
    assert _notified(session, 'escalation') == [
        ('city_sup', f'超期升级：调查评估（{case.number}）已于 2025-10-16 到期未办结')]
    [event] = _audits(session, 'task.escalated')
    assert event.after is not None and event.after['org_unit'] == org.city.code
    assert event.after['recipients'] == ['city_sup'] and event.before == {'is_escalated': False}

    counts = (session.scalar(sa.select(sa.func.count()).select_from(Notification)),
              session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)))
    handler_for('escalation')(session, job)
    session.commit()
    assert counts == (session.scalar(sa.select(sa.func.count()).select_from(Notification)),
                      session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)))

    def queue(user: str) -> list[int]:
        clause = escalation_queue_clause(load_scope(session, people[user]))
        return list(session.scalars(sa.select(HumanTask.id).where(clause)))
    assert queue('city_sup') == [task.id] and queue('prov_sup') == [task.id]
    assert queue('county_sup') == [] and queue('staff') == []


def test_escalation_target_levels(session: Session, assess: HumanTask, org: Org, people: dict[str, User]) -> None:
    task = session.get(HumanTask, assess.id)
    assert task is not None

    def target(group: str, level: str) -> tuple[str, list[str]]:
        unit, users = escalation_target(session, task, group, level)
        return unit.code, [u.username for u in users]
    # Nobody supervises at the township itself: the nearest unit above with a supervisor is told.
    assert target('supervisor', 'same') == (org.county.code, ['county_sup'])
    assert target('supervisor', 'parent') == (org.county.code, ['county_sup'])
    assert target('supervisor', 'county') == (org.county.code, ['county_sup'])
    assert target('supervisor', 'city') == (org.city.code, ['city_sup'])
    assert target('supervisor', 'province') == (org.province.code, ['prov_sup'])
    assert target('township_staff', 'same') == (org.township.code, ['staff'])
    assert target('nobody', 'city') == (org.city.code, [])


# -- supervisors: snooze and cancel ---------------------------------------------------------------------

def test_snooze_reminder(session: Session, assess: HumanTask, clock: FrozenClock, people: dict[str, User]) -> None:
    job = _job(session, assess, '-5wd')
    sup = people['county_sup']
    snooze_reminder(session, job.id, bj('2025-10-13 09:00:00'), '国庆后统一提醒', actor=sup,
                    scope=load_scope(session, sup))
    session.commit()
    assert local(job.due_dt) == '2025-10-13 09:00:00' and job.status == 'pending'
    [event] = _audits(session, 'reminder.snoozed')
    assert event.note == '国庆后统一提醒' and event.actor_id == sup.id
    assert event.before == {'due_dt': '2025-10-10T01:00:00+00:00'}
    set_time(clock, '2025-10-10 09:00:00')
    assert run_due_jobs(session) == []
    set_time(clock, '2025-10-13 09:00:00')
    assert [j.id for j in run_due_jobs(session)] == [job.id]
    assert _notified(session)[0][1] == '待办提醒：调查评估 将于 2025-10-16 到期（剩 3 个工作日）'


def test_snooze_and_cancel_are_checked(session: Session, assess: HumanTask, people: dict[str, User]) -> None:
    job = _job(session, assess, '-5wd')
    sup = people['county_sup']
    with pytest.raises(AccessDenied):
        snooze_reminder(session, job.id, bj('2025-10-13 09:00:00'), '理由', actor=people['staff'],
                        scope=load_scope(session, people['staff']))
    with pytest.raises(NotFound):
        cancel_reminder(session, job.id, '理由', actor=people['outsider'],
                        scope=load_scope(session, people['outsider']))
    with pytest.raises(ValidationFailed):
        snooze_reminder(session, job.id, bj('2025-10-13 09:00:00'), ' ', actor=sup, scope=load_scope(session, sup))
    with pytest.raises(ValidationFailed):
        snooze_reminder(session, job.id, now() - timedelta(hours=1), '理由', actor=sup)
    escalation = _job(session, assess, None, 'escalation')
    with pytest.raises(NotFound):
        cancel_reminder(session, escalation.id, '理由', actor=sup)
    session.rollback()


def test_cancel_reminder_for_good(session: Session, assess: HumanTask, clock: FrozenClock,
                                  people: dict[str, User]) -> None:
    job = _job(session, assess, '-2wd')
    sup = people['city_sup']
    cancel_reminder(session, job.id, '当事人已到所说明情况', actor=sup, scope=load_scope(session, sup))
    session.commit()
    assert job.status == 'cancelled'
    [event] = _audits(session, 'reminder.cancelled')
    assert event.note == '当事人已到所说明情况' and event.after == {'job_id': job.id, 'status': 'cancelled'}
    task = session.get(HumanTask, assess.id)
    assert task is not None
    schedule_task_jobs(session, task)  # rescheduling (a due-date change) does not bring it back
    session.commit()
    session.refresh(job)
    assert job.status == 'cancelled'
    with pytest.raises(Conflict):
        cancel_reminder(session, job.id, '再次取消', actor=sup)
    set_time(clock, '2025-10-16 10:00:00')
    assert [j.payload['offset'] for j in run_due_jobs(session)] == ['-5wd', '0']


# -- the clock moved across the National Day holiday week -----------------------------------------------

def test_holiday_week_reminders_fire_in_order(session: Session, org: Org, people: dict[str, User],
                                              clock: FrozenClock, deploy_file: Callable[[str], object]) -> None:
    deploy_file(ASSESSMENT)
    normal = _start(session, org, people)
    fast = _start(session, org, people, expedited=True)
    name = {normal.id: 'normal', fast.id: 'fast'}
    fired: list[tuple[str, str, str | None, str | None]] = []
    while clock.now() < bj('2025-10-18 00:00:00'):
        clock.advance(timedelta(hours=1))
        for job in run_due_jobs(session):
            fired.append((name[job.human_task_id or 0], job.kind, job.payload.get('offset'), local(clock.now())))
    assert fired == [
        ('fast', 'reminder', '-2wd', '2025-09-30 09:00:00'),
        ('normal', 'reminder', '-5wd', '2025-10-10 09:00:00'),   # nothing during 10-01..10-08
        ('fast', 'reminder', '0', '2025-10-10 09:00:00'),
        ('fast', 'escalation', None, '2025-10-11 00:00:00'),
        ('normal', 'reminder', '-2wd', '2025-10-14 09:00:00'),
        ('normal', 'reminder', '0', '2025-10-16 09:00:00'),
        ('normal', 'escalation', None, '2025-10-17 00:00:00'),
    ]
    titles = [title for user, title in _notified(session) if user == 'staff']
    assert titles == ['待办提醒：调查评估 将于 2025-10-10 到期（剩 2 个工作日）',
                      '待办提醒：调查评估 将于 2025-10-16 到期（剩 5 个工作日）',
                      '待办提醒：调查评估 将于 2025-10-10 到期（今天到期）',
                      '待办提醒：调查评估 将于 2025-10-16 到期（剩 2 个工作日）',
                      '待办提醒：调查评估 将于 2025-10-16 到期（今天到期）']
    assert [e.human_task_id for e in _audits(session, 'task.escalated')] == [fast.id, normal.id]


# -- e-mail ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


class _Sink:
    """Collects what the SMTP server receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode('utf-8')))
        return '250 OK'


@pytest.fixture
def smtp_sink() -> Iterator[tuple[_Sink, int]]:
    from aiosmtpd.controller import Controller

    sink, port = _Sink(), _free_port()
    controller = Controller(sink, hostname='127.0.0.1', port=port)
    controller.start()
    configure_mail('127.0.0.1', port, 'fengqiao@example.org')
    try:
        yield sink, port
    finally:
        configure_mail(None)
        controller.stop()


def test_reminder_and_escalation_are_mailed(session: Session, assess: HumanTask, clock: FrozenClock,
                                            people: dict[str, User], smtp_sink: tuple[_Sink, int]) -> None:
    sink, _ = smtp_sink
    people['staff'].email = 'staff@example.org'
    people['city_sup'].email = 'city@example.org'  # lead has no address: in-app only
    session.commit()
    set_time(clock, '2025-10-10 09:00:00')
    run_due_jobs(session)
    set_time(clock, '2025-10-17 00:00:00')
    handler_for('escalation')(session, _job(session, assess, None, 'escalation'))
    session.commit()
    assert [(frm, to) for frm, to, _ in sink.messages] == [('fengqiao@example.org', ['staff@example.org']),
                                                           ('fengqiao@example.org', ['city@example.org'])]
    assert 'Subject:' in sink.messages[0][2]
    [sent] = _audits(session, 'reminder.sent')
    assert sent.after is not None and sent.after['emailed'] == ['staff@example.org']
    assert sent.after['email_failed'] == []


def test_unreachable_smtp_server_does_not_lose_the_in_app_reminder(session: Session, assess: HumanTask,
                                                                   clock: FrozenClock, people: dict[str, User]) -> None:
    people['staff'].email = 'staff@example.org'
    session.commit()
    configure_mail('127.0.0.1', _free_port(), 'fengqiao@example.org', timeout=2)
    try:
        set_time(clock, '2025-10-10 09:00:00')
        run_due_jobs(session)
    finally:
        configure_mail(None)
    [sent] = _audits(session, 'reminder.sent')
    assert sent.after is not None and sent.after['email_failed'] == ['staff@example.org']
    assert len(_notified(session)) == 2
