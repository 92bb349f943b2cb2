"""Incidents: an instance whose timer failed goes to ``error``; a supervisor of its unit retries it (it runs on
once the cause is gone, or keeps only the new error) or cancels it (tasks, jobs and the case with it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.audit import verify_chain
from engine.clock import FrozenClock
from engine.directory import create_org_unit
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.incidents import REASON_MAX, cancel_instance, list_errored_instances, retry_instance
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import Worker
from tests.fixtures.directory import Org

INCIDENT = 'tests/engine/bpmn/incident_unit.bpmn'
DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
TARGET = '430922199'  # a township of the county that does not exist yet


def _worker(session_factory: sessionmaker[Session], clock: FrozenClock, max_attempts: int = 5) -> Worker:
    return Worker(session_factory, name='w1', batch_size=10, lock_seconds=60, max_attempts=max_attempts,
                  clock=clock, retry_base_seconds=30)


def _kinds(session: Session) -> list[str]:
    return list(session.scalars(sa.select(AuditEvent.kind).order_by(AuditEvent.id)))


@pytest.fixture
def failed(session: Session, session_factory: sessionmaker[Session], org: Org, people: dict[str, User],
           clock: FrozenClock, deploy_file: Callable[[str], object]) -> ProcessInstance:
    """An incident_unit instance whose timer fired into a task at a unit that does not exist: in error."""
    deploy_file(INCIDENT)
    case, [task] = runtime.start_case(session, 'incident_unit', {'target_unit': TARGET}, actor=people['staff'],
                                      org_unit=org.township)
    runtime.complete_task(session, task.id, {}, actor=people['staff'], scope=load_scope(session, people['staff']))
    session.commit()
    clock.advance(timedelta(hours=1, minutes=1))
    assert _worker(session_factory, clock).run_once() == 1
    session.expire_all()
    instance = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)).one()
    assert instance.status == 'error' and TARGET in (instance.error_message or '')
    return instance


def _timer_job(session: Session, instance: ProcessInstance) -> Job:
    return session.scalars(sa.select(Job).where(Job.instance_id == instance.id, Job.kind == 'timer')).one()


def test_instance_in_error_is_listed_for_supervisors_of_its_unit_only(
        session: Session, failed: ProcessInstance, org: Org, people: dict[str, User],
        create_member: Callable[..., User]) -> None:
    other = create_member('other_chief', 'supervisor', org.other_county)
    province = create_member('province_chief', 'supervisor', org.province)
    assert [i.id for i, _ in list_errored_instances(session, load_scope(session, people['chief']))] == [failed.id]
    assert [i.id for i, _ in list_errored_instances(session, load_scope(session, province))] == [failed.id]
    assert list_errored_instances(session, load_scope(session, other)) == []
    assert list_errored_instances(session, load_scope(session, people['staff'])) == []
    fault = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'instance.fault')).one()
    assert fault.org_path == org.township.path and fault.after == {'status': 'error'}


def test_retry_after_the_cause_is_gone_runs_the_instance_on(
        session: Session, failed: ProcessInstance, org: Org, people: dict[str, User]) -> None:
    target = create_org_unit(session, TARGET, '新设司法所', 'township', org.county)
    session.commit()
    outcome = retry_instance(session, failed.id, actor=people['chief'], reason='已新设接收机构',
                             scope=load_scope(session, people['chief']))
    session.commit()
    session.expire_all()
    assert outcome.ok and outcome.error is None
    instance = session.get(ProcessInstance, failed.id)
    assert instance.status == 'running' and instance.error_message is None and instance.error_dt is None
    receive = session.scalars(sa.select(HumanTask).where(HumanTask.bpmn_id == 'receive')).one()
    assert receive.org_unit_id == target.id and receive.status == 'open'
    assert _timer_job(session, instance).status == 'done'  # the timer fired in the retry, its job is settled
    retried = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'instance.retried')).one()
    assert retried.actor_id == people['chief'].id and retried.note == '已新设接收机构'
    assert retried.before['status'] == 'error' and retried.after['status'] == 'running'
    created = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'task.created',
                                                          AuditEvent.human_task_id == receive.id)).one()
    assert created.actor_id == people['chief'].id
    assert verify_chain(session).ok


def test_retry_that_fails_again_keeps_only_the_new_error(
        session: Session, failed: ProcessInstance, people: dict[str, User], clock: FrozenClock) -> None:
    state, tasks_before = failed.state, session.scalar(sa.select(sa.func.count()).select_from(HumanTask))
    kinds_before = _kinds(session)
    clock.advance(timedelta(minutes=5))
    outcome = retry_instance(session, failed.id, actor=people['chief'], reason='再试一次',
                             scope=load_scope(session, people['chief']))
    session.commit()
    session.expire_all()
    assert not outcome.ok and TARGET in (outcome.error or '')
    instance = session.get(ProcessInstance, failed.id)
    assert instance.status == 'error' and instance.state == state and instance.error_dt == clock.now()
    assert session.scalar(sa.select(sa.func.count()).select_from(HumanTask)) == tasks_before
    assert _timer_job(session, instance).status == 'pending'  # untouched by the rolled-back attempt
    # Nothing of the attempt (no task.created, no instance.retried) was written: the fault and the failed retry.
    assert _kinds(session) == [*kinds_before, 'instance.fault', 'instance.retry_failed']
    failed_again = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'instance.retry_failed')).one()
    assert failed_again.note == '再试一次' and TARGET in failed_again.after['error']
    assert verify_chain(session).ok


def test_retry_puts_dead_timer_jobs_back_and_settles_them(
        session: Session, session_factory: sessionmaker[Session], org: Org, people: dict[str, User],
        clock: FrozenClock, deploy_file: Callable[[str], object]) -> None:
    deploy_file(INCIDENT)
    case, [task] = runtime.start_case(session, 'incident_unit', {'target_unit': TARGET}, actor=people['staff'],
                                      org_unit=org.township)
    runtime.complete_task(session, task.id, {}, actor=people['staff'], scope=load_scope(session, people['staff']))
    session.commit()
    clock.advance(timedelta(hours=2))
    _worker(session_factory, clock, max_attempts=1).run_once()
    session.expire_all()
    instance = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)).one()
    assert instance.status == 'error' and _timer_job(session, instance).status == 'dead'
    create_org_unit(session, TARGET, '新设司法所', 'township', org.county)
    session.commit()
    outcome = retry_instance(session, instance.id, actor=people['chief'], reason='机构已建立',
                             scope=load_scope(session, people['chief']))
    session.commit()
    session.expire_all()
    assert outcome.ok and outcome.jobs_requeued == 1
    assert _timer_job(session, instance).status == 'done'


def test_retry_and_cancel_need_a_reason_and_an_instance_in_error(
        session: Session, failed: ProcessInstance, people: dict[str, User], org: Org) -> None:
    scope = load_scope(session, people['chief'])
    for action in (retry_instance, cancel_instance):
        for reason, message in (('  ', '请填写原因。'), ('长' * (REASON_MAX + 1), '原因最多 500 个字。')):
            with pytest.raises(ValidationFailed) as refused:
                action(session, failed.id, actor=people['chief'], reason=reason, scope=scope)
            assert refused.value.fields == {'reason': [message]}
            session.rollback()
    case, _ = runtime.start_case(session, 'incident_unit', {'target_unit': TARGET}, actor=people['staff'],
                                 org_unit=org.township)
    session.commit()
    with pytest.raises(Conflict):
        retry_instance(session, case.instances[0].id, actor=people['chief'], reason='试试', scope=scope)
    session.rollback()
    with pytest.raises(Conflict):
        cancel_instance(session, case.instances[0].id, actor=people['chief'], reason='试试', scope=scope)


def test_outsiders_get_not_found(session: Session, failed: ProcessInstance, org: Org, people: dict[str, User],
                                 create_member: Callable[..., User]) -> None:
    other = create_member('other_chief', 'supervisor', org.other_county)
    for user in (other, people['staff'], people['officer']):
        scope = load_scope(session, user)
        for action in (retry_instance, cancel_instance):
            with pytest.raises(NotFound):
                action(session, failed.id, actor=user, reason='越权', scope=scope)
            session.rollback()
    with pytest.raises(NotFound):
        retry_instance(session, 999_999, actor=people['chief'], reason='不存在',
                       scope=load_scope(session, people['chief']))
    session.rollback()
    session.expire_all()
    assert session.get(ProcessInstance, failed.id).status == 'error'


def test_a_minors_instance_is_handled_from_its_county_down_only(session: Session, failed: ProcessInstance,
                                                                 org: Org, people: dict[str, User],
                                                                 create_member: Callable[..., User]) -> None:
    failed.case.is_minor = True  # 社区矫正法 §54
    session.commit()
    city = create_member('city_chief', 'supervisor', org.city)
    assert failed.id not in {i.id for i, *_ in list_errored_instances(session, load_scope(session, city))}
    with pytest.raises(NotFound):
        cancel_instance(session, failed.id, actor=city, reason='越级', scope=load_scope(session, city))
    session.rollback()
    county = load_scope(session, people['chief'])
    assert failed.id in {i.id for i, *_ in list_errored_instances(session, county)}
    cancel_instance(session, failed.id, actor=people['chief'], reason='县级处理', scope=county)
    session.commit()
    assert session.get(ProcessInstance, failed.id).status != 'error'


def test_cancel_stops_the_instance_its_tasks_and_jobs_and_the_case(
        session: Session, org: Org, people: dict[str, User], deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    case, [task] = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                      actor=people['staff'], org_unit=org.township)
    session.commit()
    instance = case.instances[0]
    # A failed command on the instance (the web layer records it so after rolling the command back).
    runtime.record_fault(session, instance.id, '流程执行出错：测试')
    session.commit()
    reminders = session.scalars(sa.select(Job).where(Job.human_task_id == task.id, Job.status == 'pending')).all()
    assert reminders  # the register task's escalation at least
    cancel_instance(session, instance.id, actor=people['chief'], reason='当事人已死亡，终止办理',
                    scope=load_scope(session, people['chief']))
    session.commit()
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == 'suspended'
    assert session.get(HumanTask, task.id).status == 'cancelled'
    assert {job.status for job in session.scalars(sa.select(Job).where(Job.human_task_id == task.id))} == {'cancelled'}
    case = session.get(Case, case.id)
    assert case.status == 'cancelled' and case.closed_dt is not None
    by_chief = sa.select(AuditEvent).where(AuditEvent.actor_id == people['chief'].id)
    events = {e.kind: e for e in session.scalars(by_chief)}
    assert set(events) == {'task.cancelled', 'instance.cancelled', 'case.cancelled'}
    assert all(e.note == '当事人已死亡，终止办理' for e in events.values())
    assert events['instance.cancelled'].after == {'status': 'suspended', 'tasks_cancelled': 1,
                                                  'jobs_cancelled': 0}
    assert events['case.cancelled'].org_path == org.township.path


def test_cancel_withdraws_the_waiting_timer(session: Session, failed: ProcessInstance, people: dict[str, User]) -> None:
    cancel_instance(session, failed.id, actor=people['chief'], reason='不再移送',
                    scope=load_scope(session, people['chief']))
    session.commit()
    session.expire_all()
    instance = session.get(ProcessInstance, failed.id)
    assert instance.status == 'suspended' and instance.next_timer_dt is None
    assert _timer_job(session, instance).status == 'cancelled'
