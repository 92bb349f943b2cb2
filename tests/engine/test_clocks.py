"""Pausable case clocks: the mediation example through the engine, and the clock operations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.calendar import WorkCalendar
from engine.clock import FrozenClock
from engine.clocks import case_clock, extend_clock, pause_clock, resume_clock, start_clock, stop_clock
from engine.deadlines import explain
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.calendar import CaseClock
from engine.models.cases import Case
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.engine.deadline_support import local, run_due_jobs, set_time, task_jobs
from tests.fixtures.directory import Org

MEDIATION = 'tests/engine/bpmn/mediation_clock.bpmn'
D = date.fromisoformat


@pytest.fixture
def people(org: Org, create_member: Callable[..., User]) -> dict[str, User]:
    return {
        'mediator': create_member('mediator', 'mediator', org.county),
        'county_sup': create_member('county_sup', 'supervisor', org.county),
    }


def _complete(session: Session, task: HumanTask, user: User, **data: Any) -> dict[str, HumanTask]:
    _, tasks = runtime.complete_task(session, task.id, data, actor=user, scope=load_scope(session, user))
    session.commit()
    return {t.bpmn_id: t for t in tasks}


@pytest.fixture
def accepted(session: Session, org: Org, people: dict[str, User], clock: FrozenClock,
             deploy_file: Callable[[str], object]) -> tuple[Case, dict[str, HumanTask]]:
    """A mediation case accepted on 2025-09-26: the mediation clock runs, 调解 and 申请鉴定 are open."""
    deploy_file(MEDIATION)
    case, [accept] = runtime.start_case(session, 'mediation_clock', {'applied_on': '2025-09-25'},
                                        actor=people['mediator'], org_unit=org.county)
    session.commit()
    # 受理 has its own deadline: 3 working days from the application (Sunday 09-28 is a 调休 working day)
    assert local(accept.due_dt) == '2025-09-29 23:59:59'
    return case, _complete(session, accept, people['mediator'], accepted_on='2025-09-26')


def _pending(session: Session, task: HumanTask) -> list[tuple[str, str | None, str | None]]:
    return [(job.kind, job.payload.get('offset'), local(job.due_dt)) for job in task_jobs(session, task.id)
            if job.status == 'pending']


def _kinds(session: Session, case: Case, prefix: str) -> list[str]:
    return list(session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.case_id == case.id,
                                                                 AuditEvent.kind.startswith(prefix))
                                .order_by(AuditEvent.id)))


def test_mediation_clock_pauses_for_the_appraisal_and_is_extended(
        session: Session, accepted: tuple[Case, dict[str, HumanTask]], clock: FrozenClock,
        people: dict[str, User]) -> None:
    case, tasks = accepted
    mediator = people['mediator']
    mediate = tasks['mediate']
    assert local(mediate.due_dt) == '2025-11-13 23:59:59'
    assert mediate.due_rule is not None
    assert explain(mediate.due_rule) == ('30 个工作日，自 2025-09-26 受理起算（医疗纠纷预防和处理条例 §38）'
                                         '→ 2025-11-13 到期')
    assert _pending(session, mediate) == [('reminder', '-5wd', '2025-11-06 09:00:00'),
                                          ('reminder', '-1wd', '2025-11-12 09:00:00'),
                                          ('reminder', '0', '2025-11-13 09:00:00'),
                                          ('escalation', None, '2025-11-13 23:59:59')]

    # 2025-10-20: the appraisal is commissioned; the clock stops (10-20 itself still counts).
    set_time(clock, '2025-10-20 09:00:00')
    tasks = _complete(session, tasks['request_appraisal'], mediator)
    session.refresh(mediate)
    mediation = case_clock(session, case.id, 'mediation')
    assert mediation is not None and mediation.status == 'paused' and mediation.paused_since == D('2025-10-20')
    assert mediate.due_dt is None and _pending(session, mediate) == []
    assert mediate.due_rule is not None
    assert explain(mediate.due_rule).endswith('，自 2025-10-20 起暂停计时 → 暂停中，恢复后重新计算到期日')

    # 2025-10-27: the appraisal report arrives; the remaining working days carry over from the day after.
    set_time(clock, '2025-10-27 09:00:00')
    tasks = _complete(session, tasks['appraisal'], mediator)
    session.refresh(mediate)
    assert local(mediate.due_dt) == '2025-11-20 23:59:59'
    assert mediate.due_rule is not None and mediate.due_rule['paused_days'] == 5
    assert WorkCalendar().working_days_between(D('2025-11-13'), D('2025-11-20')) == 5  # moved by exactly that
    assert explain(mediate.due_rule) == ('30 个工作日，自 2025-09-26 受理起算（医疗纠纷预防和处理条例 §38），'
                                         '其间暂停 2025-10-20 至 2025-10-27 → 2025-11-20 到期')
    assert _pending(session, mediate) == [('reminder', '-5wd', '2025-11-13 09:00:00'),
                                          ('reminder', '-1wd', '2025-11-19 09:00:00'),
                                          ('reminder', '0', '2025-11-20 09:00:00'),
                                          ('escalation', None, '2025-11-20 23:59:59')]

    # 2025-10-28: the parties agree to extend to 2025-12-05.
    set_time(clock, '2025-10-28 09:00:00')
    tasks = _complete(session, tasks['agree_extension'], mediator, agreed_due_on='2025-12-05',
                      extension_reason='双方同意延长调解期限')
    session.refresh(mediate)
    assert local(mediate.due_dt) == '2025-12-05 23:59:59'
    assert mediate.due_rule is not None
    assert explain(mediate.due_rule).endswith('，经协商延长至 2025-12-05（双方同意延长调解期限）→ 2025-12-05 到期')
    assert _pending(session, mediate)[-1] == ('escalation', None, '2025-12-05 23:59:59')

    set_time(clock, '2025-11-20 09:00:00')
    assert run_due_jobs(session) == []  # the superseded ladders were cancelled
    tasks = _complete(session, mediate, mediator)
    assert _pending(session, mediate) == []
    _complete(session, tasks['close'], mediator)
    mediation = case_clock(session, case.id, 'mediation')
    assert mediation is not None and mediation.status == 'stopped'
    assert mediation.pauses == [['2025-10-20', '2025-10-27']]

    assert _kinds(session, case, 'clock.') == ['clock.started', 'clock.paused', 'clock.resumed', 'clock.extended',
                                               'clock.stopped']
    changes = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'task.due_changed',
                                                          AuditEvent.human_task_id == mediate.id)
                              .order_by(AuditEvent.id)).all()
    assert [e.after['due_dt'] if e.after else None for e in changes] == [
        None, '2025-11-20T15:59:59+00:00', '2025-12-05T15:59:59+00:00']
    extended = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'clock.extended')).one()
    assert extended.note == '双方同意延长调解期限' and extended.actor_id == mediator.id


def _mediation(session: Session, case: Case) -> CaseClock:
    clock = case_clock(session, case.id, 'mediation')
    assert clock is not None
    return clock


def test_pause_and_resume_on_the_same_day_changes_nothing(session: Session,
                                                         accepted: tuple[Case, dict[str, HumanTask]],
                                                         clock: FrozenClock) -> None:
    case, tasks = accepted
    set_time(clock, '2025-10-15 09:00:00')
    pause_clock(session, case, 'mediation', actor=None)
    resume_clock(session, case, 'mediation', actor=None)  # the job keys come back instead of colliding
    session.commit()
    assert local(_mediation(session, case).due_dt) == '2025-11-13 23:59:59'
    session.refresh(tasks['mediate'])
    assert local(tasks['mediate'].due_dt) == '2025-11-13 23:59:59'
    assert len(_pending(session, tasks['mediate'])) == 4 and len(task_jobs(session, tasks['mediate'].id)) == 4


def test_resuming_on_a_rest_day_resumes_on_the_next_working_day(session: Session,
                                                                 accepted: tuple[Case, dict[str, HumanTask]]) -> None:
    case, _ = accepted
    pause_clock(session, case, 'mediation', actor=None, on=D('2025-10-17'))    # Friday, still counted
    resume_clock(session, case, 'mediation', actor=None, on=D('2025-10-18'))   # Saturday: as if Monday
    session.commit()
    assert local(_mediation(session, case).due_dt) == '2025-11-14 23:59:59'


def test_calendar_day_clock_pauses_and_rolls(session: Session, accepted: tuple[Case, dict[str, HumanTask]]) -> None:
    case, _ = accepted
    review = start_clock(session, case, 'review', 15, 'calendar_days', D('2025-09-25'), actor=None)
    assert local(review.due_dt) == '2025-10-10 23:59:59'
    pause_clock(session, case, 'review', actor=None, on=D('2025-09-28'))
    assert review.due_dt is None
    resume_clock(session, case, 'review', actor=None, on=D('2025-10-03'))   # 5 days out
    assert local(review.due_dt) == '2025-10-15 23:59:59'
    short = start_clock(session, case, 'short', 10, 'calendar_days', D('2025-09-25'), actor=None)
    assert local(short.due_dt) == '2025-10-09 23:59:59' and short.due_rule is not None
    assert short.due_rule['rolled_from'] == '2025-10-05'
    session.commit()


def test_pause_after_an_extension_moves_the_agreed_day(session: Session, accepted: tuple[Case, dict[str, HumanTask]],
                                                       clock: FrozenClock) -> None:
    case, _ = accepted
    set_time(clock, '2025-10-28 09:00:00')
    extend_clock(session, case, 'mediation', D('2025-12-05'), '协商一致', actor=None)
    pause_clock(session, case, 'mediation', actor=None, on=D('2025-11-03'))
    resume_clock(session, case, 'mediation', actor=None, on=D('2025-11-05'))
    session.commit()
    assert local(_mediation(session, case).due_dt) == '2025-12-09 23:59:59'


def test_stopping_a_paused_clock_closes_the_pause_and_clears_task_due_dates(
        session: Session, accepted: tuple[Case, dict[str, HumanTask]], clock: FrozenClock) -> None:
    case, tasks = accepted
    set_time(clock, '2025-10-20 09:00:00')
    pause_clock(session, case, 'mediation', actor=None)
    set_time(clock, '2025-10-22 09:00:00')
    stop_clock(session, case, 'mediation', actor=None, note='调解终止')
    session.commit()
    mediation = _mediation(session, case)
    assert mediation.status == 'stopped' and mediation.pauses == [['2025-10-20', '2025-10-22']]
    assert local(mediation.due_dt) == '2025-11-17 23:59:59'
    session.refresh(tasks['mediate'])
    assert tasks['mediate'].due_dt is None and _pending(session, tasks['mediate']) == []
    assert tasks['mediate'].due_rule is not None and '已停止计时' in explain(tasks['mediate'].due_rule)


def test_illegal_moves_are_refused(session: Session, accepted: tuple[Case, dict[str, HumanTask]]) -> None:
    case, _ = accepted
    with pytest.raises(Conflict):
        resume_clock(session, case, 'mediation', actor=None)
    with pytest.raises(Conflict):
        start_clock(session, case, 'mediation', 30, 'working_days', D('2025-09-26'), actor=None)
    with pytest.raises(NotFound):
        pause_clock(session, case, 'nonexistent', actor=None)
    with pytest.raises(ValidationFailed):
        start_clock(session, case, 'hourly', 48, 'hours', D('2025-09-26'), actor=None)
    with pytest.raises(ValidationFailed):
        extend_clock(session, case, 'mediation', D('2025-12-05'), '  ', actor=None)
    with pytest.raises(ValidationFailed):
        extend_clock(session, case, 'mediation', D('2025-09-01'), '协商', actor=None)
    pause_clock(session, case, 'mediation', actor=None)
    with pytest.raises(Conflict):
        pause_clock(session, case, 'mediation', actor=None)
    stop_clock(session, case, 'mediation', actor=None)
    with pytest.raises(Conflict):
        stop_clock(session, case, 'mediation', actor=None)
    with pytest.raises(Conflict):
        extend_clock(session, case, 'mediation', D('2025-12-05'), '协商', actor=None)
    session.rollback()


def test_task_on_a_clock_not_started_yet(session: Session, accepted: tuple[Case, dict[str, HumanTask]]) -> None:
    from engine.clocks import task_due
    case, _ = accepted
    due, rule = task_due(session, case, case.org_path, {'clock': 'later', 'reminders': '0'}, {}, case.created_dt)
    assert due is None and rule is not None and rule['status'] == 'not_started'
    assert explain(rule) == '取自案件期限“later”，尚未开始计时'
