"""The engine's commands through the real database: start, complete, guards, conflicts, audit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.audit import verify_chain
from engine.definitions import deploy
from engine.errors import AccessDenied, Conflict, NotFound, ValidationFailed, WorkflowFault
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org

BPMN = Path(__file__).parent / 'bpmn'
DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试'}
REGISTER = {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实'}


@pytest.fixture
def demo_case(session: Session, org: Org, people: dict[str, User],
              deploy_file: Callable[[str], object]) -> tuple[Case, list[HumanTask]]:
    deploy_file(DEMO)
    case, tasks = runtime.start_case(session, 'demo_intake', START, actor=people['staff'], org_unit=org.township)
    session.commit()
    return case, tasks


def _complete(session: Session, task: HumanTask, data: dict[str, object], user: User) -> list[HumanTask]:
    _, tasks = runtime.complete_task(session, task.id, data, actor=user, scope=load_scope(session, user))
    session.commit()
    return tasks


def test_start_case_creates_case_instance_and_first_task(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                                         org: Org) -> None:
    case, tasks = demo_case
    assert case.number.startswith('YS-') and len(case.public_code) >= 16
    assert case.person_name == '谢某某' and case.start_event_on.isoformat() == '2025-09-26'
    assert [t.bpmn_id for t in tasks] == ['register']
    task = tasks[0]
    assert task.candidate_group == 'township_staff'  # from the lane
    assert task.org_unit_id == org.township.id and task.status == 'open'
    instance = session.scalars(sa.select(ProcessInstance)).one()
    assert instance.status == 'running'
    assert 'spec' not in instance.state and 'subprocess_specs' not in instance.state


def test_complete_moves_case_to_county_and_closes_on_approval(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                                              people: dict[str, User]) -> None:
    case, tasks = demo_case
    next_tasks = _complete(session, tasks[0], REGISTER, people['staff'])
    assert [(t.bpmn_id, t.candidate_group) for t in next_tasks] == [('review', 'county_officer')]
    done = session.get(HumanTask, tasks[0].id)
    assert done.status == 'completed' and done.completed_by_id == people['staff'].id
    final = _complete(session, next_tasks[0], {'approved': 'true', 'review_opinion': '同意'}, people['officer'])
    assert final == []
    session.refresh(case)
    assert case.status == 'closed'
    assert session.scalars(sa.select(ProcessInstance.status)).one() == 'completed'


def test_a_completion_writes_its_rows_in_two_flushes(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                                    people: dict[str, User]) -> None:
    # One for the task rows (the new task needs its id), one at the save: the reads in between (open rows,
    # calendar overrides, pending timers, the jobs' UPDATE) need none of what is pending.
    case, tasks = demo_case
    flushed: list[list[str]] = []

    def note(flushing: Session, *args: object) -> None:
        flushed.append(sorted(type(held).__name__ for held in (*flushing.new, *flushing.dirty)))

    sa.event.listen(session, 'before_flush', note)
    try:
        _, next_tasks = runtime.complete_task(session, tasks[0].id, REGISTER, actor=people['staff'],
                                              scope=load_scope(session, people['staff']))
    finally:
        sa.event.remove(session, 'before_flush', note)
    assert len(flushed) == 2
    assert flushed[0] == ['HumanTask', 'HumanTask'] and {'Job', 'ProcessInstance'} == set(flushed[1])
    session.commit()
    assert [t.bpmn_id for t in next_tasks] == ['review']
    stored = dict(session.execute(sa.select(HumanTask.bpmn_id, HumanTask.status)).tuples().all())
    assert stored == {'register': 'completed', 'review': 'open'}
    kinds = session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.case_id == case.id)).all()
    assert 'task.cancelled' not in kinds and kinds.count('task.created') == 2


def test_rejection_loops_back_to_township(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                          people: dict[str, User]) -> None:
    _, tasks = demo_case
    review = _complete(session, tasks[0], REGISTER, people['staff'])
    again = _complete(session, review[0], {'approved': 'false', 'review_opinion': '补充材料'}, people['officer'])
    assert [t.bpmn_id for t in again] == ['register']


def test_state_survives_reload_between_steps(session: Session, session_factory: sessionmaker[Session],
                                             demo_case: tuple[Case, list[HumanTask]], people: dict[str, User]) -> None:
    _, tasks = demo_case
    with session_factory() as other:
        staff = other.get(User, people['staff'].id)
        _, after = runtime.complete_task(other, tasks[0].id, REGISTER, actor=staff, scope=load_scope(other, staff))
        other.commit()
    with session_factory() as fresh:
        task = fresh.get(HumanTask, after[0].id)
        assert runtime.task_data(fresh, task)['findings'] == '走访属实'


def test_invalid_form_data_returns_every_field_error_and_changes_nothing(
        session: Session, demo_case: tuple[Case, list[HumanTask]], people: dict[str, User]) -> None:
    _, tasks = demo_case
    before = session.scalars(sa.select(ProcessInstance.revision)).one()
    with pytest.raises(ValidationFailed) as exc:
        runtime.complete_task(session, tasks[0].id, {'visit_count': 'abc', 'risk_level': 'purple'},
                              actor=people['staff'], scope=load_scope(session, people['staff']))
    session.rollback()
    assert set(exc.value.fields) == {'visit_count', 'risk_level', 'findings'}
    assert session.scalars(sa.select(ProcessInstance.revision)).one() == before
    assert session.get(HumanTask, tasks[0].id).status == 'open'


def test_invalid_start_data_creates_no_case(session: Session, org: Org, people: dict[str, User],
                                           deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    with pytest.raises(ValidationFailed) as exc:
        runtime.start_case(session, 'demo_intake', {'person_name': 'x', 'id_number': '430922198001011234'},
                           actor=people['staff'], org_unit=org.township)
    session.rollback()
    assert {'person_name', 'received_on'} <= set(exc.value.fields)
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_bad_id_number_is_refused(session: Session, org: Org, people: dict[str, User],
                                  deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    with pytest.raises(ValidationFailed) as exc:
        runtime.start_case(session, 'demo_intake', dict(START, id_number='431381198503120016'),
                           actor=people['staff'], org_unit=org.township)
    assert 'id_number' in exc.value.fields


def test_unknown_process_and_foreign_org_unit_are_not_found(session: Session, org: Org, people: dict[str, User],
                                                            deploy_file: Callable[[str], object]) -> None:
    deploy_file(DEMO)
    with pytest.raises(NotFound):
        runtime.start_case(session, 'no_such_process', START, actor=people['staff'], org_unit=org.township)
    with pytest.raises(NotFound):
        runtime.start_case(session, 'demo_intake', START, actor=people['staff'], org_unit=org.other_township,
                           scope=load_scope(session, people['staff']))


def test_task_outside_subtree_is_not_found(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                           people: dict[str, User]) -> None:
    _, tasks = demo_case
    outsider = people['outsider']
    with pytest.raises(NotFound):
        runtime.complete_task(session, tasks[0].id, REGISTER, actor=outsider, scope=load_scope(session, outsider))
    with pytest.raises(NotFound):
        runtime.get_task(session, 999999, load_scope(session, outsider))


def test_task_claimed_by_someone_else_cannot_be_completed(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                                          people: dict[str, User]) -> None:
    from engine.tasks import claim_task
    _, tasks = demo_case
    claim_task(session, tasks[0].id, actor=people['staff'], scope=load_scope(session, people['staff']))
    session.commit()
    with pytest.raises(AccessDenied):
        runtime.complete_task(session, tasks[0].id, REGISTER, actor=people['staff2'],
                              scope=load_scope(session, people['staff2']))


def test_second_completion_of_same_task_conflicts(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                                  people: dict[str, User]) -> None:
    _, tasks = demo_case
    _complete(session, tasks[0], REGISTER, people['staff'])
    with pytest.raises(Conflict):
        runtime.complete_task(session, tasks[0].id, REGISTER, actor=people['staff'],
                              scope=load_scope(session, people['staff']))


def test_concurrent_completions_exactly_one_wins(session_factory: sessionmaker[Session],
                                                demo_case: tuple[Case, list[HumanTask]],
                                                people: dict[str, User]) -> None:
    _, tasks = demo_case
    with session_factory() as s:
        revision = s.scalars(sa.select(ProcessInstance.revision)).one()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(username: str) -> None:
        with session_factory() as s:
            user = s.scalars(sa.select(User).where(User.username == username)).one()
            scope = load_scope(s, user)
            barrier.wait()
            try:
                runtime.complete_task(s, tasks[0].id, REGISTER, actor=user, scope=scope)
                s.commit()
                outcomes.append('ok')
            except Conflict:
                s.rollback()
                outcomes.append('conflict')

    threads = [threading.Thread(target=attempt, args=(name,)) for name in ('staff', 'staff2')]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ['conflict', 'ok']
    with session_factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(HumanTask).where(
            HumanTask.bpmn_id == 'review', HumanTask.status == 'open')) == 1
        assert s.scalars(sa.select(ProcessInstance.revision)).one() == revision + 1


def test_every_step_is_audited_and_chain_verifies(session: Session, demo_case: tuple[Case, list[HumanTask]],
                                                  people: dict[str, User]) -> None:
    _, tasks = demo_case
    _complete(session, tasks[0], REGISTER, people['staff'])
    kinds = session.scalars(sa.select(AuditEvent.kind).order_by(AuditEvent.id)).all()
    assert {'case.started', 'instance.started', 'task.created', 'task.completed'} <= set(kinds)
    completed = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'task.completed')).one()
    assert completed.actor_id == people['staff'].id
    assert completed.after['findings'] == '走访属实' and completed.before['findings'] is None
    assert verify_chain(session).ok


def test_audit_rows_cannot_be_updated_or_deleted(session: Session, demo_case: tuple[Case, list[HumanTask]]) -> None:
    with pytest.raises(sa.exc.DBAPIError):
        session.execute(sa.text("UPDATE audit_events SET note = 'x'"))
    session.rollback()
    with pytest.raises(sa.exc.DBAPIError):
        session.execute(sa.text('DELETE FROM audit_events'))
    session.rollback()


def _deploy_source(session: Session, name: str) -> None:
    deploy(session, (BPMN / name).read_bytes(), actor=None, filename=name, accept_warnings=True)
    session.commit()


def test_script_error_rolls_back_and_is_reported(session: Session, org: Org, people: dict[str, User]) -> None:
    _deploy_source(session, 'guard_script_error.bpmn')
    with pytest.raises(WorkflowFault) as exc:
        runtime.start_case(session, 'guard_script_error', {}, actor=people['staff'], org_unit=org.township)
    session.rollback()
    assert '脚本' in exc.value.message or '出错' in exc.value.message
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_uncaught_error_event_is_surfaced(session: Session, org: Org, people: dict[str, User]) -> None:
    _deploy_source(session, 'guard_uncaught_error.bpmn')
    with pytest.raises(WorkflowFault) as exc:
        runtime.start_case(session, 'guard_uncaught_error', {}, actor=people['staff'], org_unit=org.township)
    assert 'E_TEST' in exc.value.message


def test_uncaught_escalation_is_audited(session: Session, org: Org, people: dict[str, User]) -> None:
    _deploy_source(session, 'guard_uncaught_escalation.bpmn')
    runtime.start_case(session, 'guard_uncaught_escalation', {}, actor=people['staff'], org_unit=org.township)
    session.commit()
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'instance.escalation_uncaught')).one()
    assert event.after == {'code': 'ESC_TEST'}


def test_runaway_loop_is_stopped_not_reported_complete(session: Session, org: Org, people: dict[str, User],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _deploy_source(session, 'guard_loop.bpmn')
    monkeypatch.setattr(runtime.limits, 'max_tasks', 400)
    with pytest.raises(WorkflowFault) as exc:
        runtime.start_case(session, 'guard_loop', {'n': 0}, actor=people['staff'], org_unit=org.township)
    assert '上限' in exc.value.message or '结束事件' in exc.value.message or '推进' in exc.value.message
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessInstance)) == 0


def test_loop_past_spiff_depth_limit_never_reports_completed(session: Session, org: Org, people: dict[str, User],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # With a generous task limit SpiffWorkflow's own iterator depth (1000) is what stops it; the
    # engine must refuse rather than mark the instance completed.
    _deploy_source(session, 'guard_loop.bpmn')
    monkeypatch.setattr(runtime.limits, 'max_tasks', 100000)
    with pytest.raises(WorkflowFault):
        runtime.start_case(session, 'guard_loop', {'n': 0}, actor=people['staff'], org_unit=org.township)


def test_fault_is_recorded_on_instance(session: Session, demo_case: tuple[Case, list[HumanTask]]) -> None:
    instance = session.scalars(sa.select(ProcessInstance)).one()
    runtime.record_fault(session, instance.id, '测试故障')
    session.commit()
    session.refresh(instance)
    assert instance.error_message == '测试故障' and instance.error_dt is not None

