"""Moving running instances between versions: preview, the rule, one instance, batches through the worker."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from SpiffWorkflow.bpmn.util.diff import SpecDiff
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine import migration, runtime
from engine.access import load_scope
from engine.audit import verify_chain
from engine.clock import FrozenClock
from engine.db import Base
from engine.errors import Conflict, NotFound, ValidationFailed
from engine.jobs import handler_for, registered_kinds
from engine.migration import MigrationRefused, migrate_instance, preview, start_batch
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.migrations import MigrationBatch, MigrationItem
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.services import _operations, service
from engine.specs import ProcessBundle, parse_definition
from engine.worker import Worker
from tests.fixtures.directory import Org

BPMN = 'tests/engine/bpmn'
V1 = f'{BPMN}/migration_v1.bpmn'
ADDED = f'{BPMN}/migration_added.bpmn'
REMOVED = f'{BPMN}/migration_removed.bpmn'
NO_REGISTER = f'{BPMN}/migration_no_register.bpmn'
RENAMED = f'{BPMN}/migration_renamed.bpmn'
RETIMED = f'{BPMN}/migration_retimed.bpmn'
REASON = '修正流程：增加核查环节'

Deploy = Callable[[str], ProcessDefinition]


@pytest.fixture
def v1(deploy_file: Deploy, clock: FrozenClock) -> ProcessDefinition:
    """Version 1 of ``migration_case``, the engine clock frozen at 2025-09-26 09:00."""
    return deploy_file(V1)


@pytest.fixture
def start(session: Session, org: Org, people: dict[str, User], v1: ProcessDefinition) -> Callable[..., Case]:
    """Start a case on version 1 at the township; ``at_review`` completes 登记 first."""
    def do(name: str = '谢某某', *, at_review: bool = False) -> Case:
        case, [task] = runtime.start_case(session, 'migration_case', {'person_name': name}, actor=people['staff'],
                                          org_unit=org.township)
        session.commit()
        if at_review:
            runtime.complete_task(session, task.id, {}, actor=people['staff'],
                                  scope=load_scope(session, people['staff']))
            session.commit()
        return case
    return do


def _instance(session: Session, case: Case) -> ProcessInstance:
    session.expire_all()
    return session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)).one()


def _open_tasks(session: Session, case: Case) -> list[HumanTask]:
    return list(session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == 'open')
                                .order_by(HumanTask.id)))


def _pending_jobs(session: Session, instance: ProcessInstance) -> set[str]:
    return set(session.scalars(sa.select(Job.key).where(Job.instance_id == instance.id, Job.status == 'pending')))


def _migrated_events(session: Session) -> list[AuditEvent]:
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'instance.migrated')
                                .order_by(AuditEvent.id)))


def _snapshot(session: Session, case: Case) -> tuple[object, ...]:
    """What a refused move must leave exactly as it was."""
    instance = _instance(session, case)
    rows = [(t.id, t.bpmn_id, t.title, t.status, t.due_dt) for t in _open_tasks(session, case)]
    return (instance.definition_id, instance.revision, instance.state, rows, sorted(_pending_jobs(session, instance)),
            session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)))


# -- preview and the rule -------------------------------------------------------------------------------

def test_added_task_after_the_current_one_is_movable(session: Session, start: Callable[..., Case],
                                                     deploy_file: Deploy, v1: ProcessDefinition) -> None:
    case = start()
    target = deploy_file(ADDED)
    [result] = preview(session, v1, target)
    assert result.can_migrate and result.problems == ()
    assert result.case_number == case.number and result.org_unit_name == '桃花江镇司法所'
    outcomes = {t.bpmn_id: (t.state, t.outcome) for t in result.tasks}
    assert outcomes == {'register': ('ready', 'kept'), 'chase': ('waiting', 'kept')}
    register = next(t for t in result.tasks if t.bpmn_id == 'register')
    assert register.human_task_id == _open_tasks(session, case)[0].id and register.new_name == '登记'


def test_removing_the_current_task_blocks_the_move(session: Session, start: Callable[..., Case],
                                                   deploy_file: Deploy, v1: ProcessDefinition) -> None:
    case = start(at_review=True)
    target = deploy_file(REMOVED)
    [result] = preview(session, v1, target)
    assert not result.can_migrate
    assert result.problems == ('当前步骤“审核”在新版本中已删除。',)
    assert [(t.bpmn_id, t.outcome) for t in result.tasks] == [('review', 'removed')]
    before = _snapshot(session, case)
    with pytest.raises(MigrationRefused) as refused:
        migrate_instance(session, _instance(session, case).id, target, actor=None, reason=REASON)
    session.rollback()
    assert refused.value.problems == result.problems
    assert _snapshot(session, case) == before


def test_removing_a_finished_step_blocks_the_move(session: Session, start: Callable[..., Case],
                                                  deploy_file: Deploy, v1: ProcessDefinition) -> None:
    start(at_review=True)
    target = deploy_file(NO_REGISTER)
    [result] = preview(session, v1, target)
    # 审核 itself is still there; the 登记 already done is not, and the history could not be loaded.
    assert [(t.bpmn_id, t.outcome) for t in result.tasks] == [('review', 'kept')]
    assert '已办结的步骤“登记”在新版本中已删除，迁移后无法保留其记录。' in result.problems


def test_removed_step_not_reached_yet_does_not_block(session: Session, start: Callable[..., Case],
                                                     deploy_file: Deploy, v1: ProcessDefinition,
                                                     people: dict[str, User]) -> None:
    case = start()
    target = deploy_file(REMOVED)
    [result] = preview(session, v1, target)
    assert result.can_migrate
    migrate_instance(session, _instance(session, case).id, target, actor=None, reason=REASON)
    session.commit()
    [task] = _open_tasks(session, case)
    _, after = runtime.complete_task(session, task.id, {}, actor=people['staff'],
                                     scope=load_scope(session, people['staff']))
    session.commit()
    assert after == [] and _instance(session, case).status == 'completed'  # 审核 is gone: 登记 ends it


def test_preview_skips_completed_instances_and_other_scopes(session: Session, start: Callable[..., Case],
                                                            deploy_file: Deploy, v1: ProcessDefinition, org: Org,
                                                            create_member: Callable[..., User],
                                                            people: dict[str, User]) -> None:
    running = start()
    done = start('李某某', at_review=True)
    review = _open_tasks(session, done)[0]
    runtime.complete_task(session, review.id, {}, actor=people['officer'], scope=load_scope(session, people['officer']))
    session.commit()
    target = deploy_file(ADDED)
    assert [p.case_id for p in preview(session, v1, target)] == [running.id]
    elsewhere = create_member('designer2', 'designer', org.other_county)
    assert preview(session, v1, target, scope=load_scope(session, elsewhere)) == []
    assert [p.case_id for p in preview(session, v1, target, scope=load_scope(session, people['designer']))] == [
        running.id]
    [completed] = preview(session, v1, target, [_instance(session, done).id])
    assert completed.problems == ('流程实例已办结，不能迁移。',)


def test_versions_must_share_the_key_and_differ(session: Session, v1: ProcessDefinition, deploy_file: Deploy) -> None:
    other = deploy_file(f'{BPMN}/request_note.bpmn')
    with pytest.raises(ValidationFailed) as different:
        preview(session, v1, other)
    assert different.value.message == '两个版本须属于同一流程。'
    with pytest.raises(ValidationFailed) as same:
        preview(session, v1, v1)
    assert same.value.message == '目标版本须不同于当前版本。'


# -- moving one instance ----------------------------------------------------------------------------------

def test_move_keeps_the_task_its_deadline_and_jobs(session: Session, start: Callable[..., Case],
                                                   deploy_file: Deploy, v1: ProcessDefinition,
                                                   people: dict[str, User]) -> None:
    case = start()
    instance = _instance(session, case)
    [row] = _open_tasks(session, case)
    due, jobs, revision = row.due_dt, _pending_jobs(session, instance), instance.revision
    assert {key.split(':')[0] for key in jobs} == {'reminder', 'escalation', 'timer'}
    target = deploy_file(ADDED)
    result = migrate_instance(session, instance.id, target, actor=people['designer'], reason=REASON,
                              scope=load_scope(session, people['designer']), expected_revision=revision)
    session.commit()
    instance = _instance(session, case)
    assert instance.definition_id == target.id and instance.revision == revision + 1
    assert [t.id for t in result.open_tasks] == [row.id]
    [kept] = _open_tasks(session, case)
    assert (kept.id, kept.title, kept.due_dt) == (row.id, '登记', due)
    assert _pending_jobs(session, instance) == jobs  # the reminder, the escalation and the 3-day timer stay
    # The new version's path is taken from here on: 登记 → 核查 (added) → 审核.
    _, after = runtime.complete_task(session, kept.id, {}, actor=people['staff'],
                                     scope=load_scope(session, people['staff']))
    session.commit()
    assert [t.bpmn_id for t in after] == ['check']


def test_move_is_audited_with_versions_mapping_and_reason(session: Session, start: Callable[..., Case],
                                                          deploy_file: Deploy, people: dict[str, User]) -> None:
    case = start()
    instance = _instance(session, case)
    [row] = _open_tasks(session, case)
    target = deploy_file(RENAMED)
    migrate_instance(session, instance.id, target, actor=people['designer'], reason=REASON)
    session.commit()
    [event] = _migrated_events(session)
    assert event.actor_id == people['designer'].id and event.note == REASON
    assert event.case_id == case.id and event.instance_id == instance.id
    assert event.before is not None and event.after is not None
    assert (event.before['version'], event.after['version']) == (1, 2)
    [mapping] = event.after['tasks']
    assert mapping['task_id'] == row.id and mapping['outcome'] == 'changed' and mapping['changes'] == ['name']
    assert (mapping['before']['title'], mapping['after']['title']) == ('登记', '登记受理')
    assert verify_chain(session).ok


def test_renamed_task_is_kept_under_its_new_name(session: Session, start: Callable[..., Case], deploy_file: Deploy,
                                                 v1: ProcessDefinition) -> None:
    case = start()
    [row] = _open_tasks(session, case)
    due = row.due_dt
    target = deploy_file(RENAMED)
    [result] = preview(session, v1, target)
    register = next(t for t in result.tasks if t.bpmn_id == 'register')
    assert (register.outcome, register.changes, register.new_name, register.is_renamed) == (
        'changed', ('name',), '登记受理', True)
    migrate_instance(session, result.instance_id, target, actor=None, reason=REASON)
    session.commit()
    [kept] = _open_tasks(session, case)
    assert (kept.id, kept.title, kept.bpmn_id, kept.due_dt) == (row.id, '登记受理', 'register', due)


def test_changed_deadline_and_timer_are_recomputed(session: Session, start: Callable[..., Case],
                                                   deploy_file: Deploy, clock: FrozenClock) -> None:
    case = start()
    instance = _instance(session, case)
    [row] = _open_tasks(session, case)
    old_due, old_jobs = row.due_dt, _pending_jobs(session, instance)
    clock.advance(timedelta(hours=2))
    target = deploy_file(RETIMED)
    migrate_instance(session, instance.id, target, actor=None, reason=REASON)
    session.commit()
    [kept] = _open_tasks(session, case)
    assert kept.id == row.id and kept.due_dt is not None and old_due is not None
    assert kept.due_dt > old_due and kept.due_rule is not None and kept.due_rule['length'] == 10
    new_jobs = _pending_jobs(session, instance)
    assert not (new_jobs & old_jobs)  # every reminder, escalation and timer job was replaced
    [timer] = session.scalars(sa.select(Job).where(Job.instance_id == instance.id, Job.kind == 'timer',
                                                   Job.status == 'pending')).all()
    assert timer.due_dt == clock.now() + timedelta(days=5)  # the changed timer restarts at the move
    cancelled = session.scalars(sa.select(Job.key).where(Job.instance_id == instance.id,
                                                         Job.status == 'cancelled')).all()
    assert set(cancelled) == old_jobs


def test_refusals_change_nothing(session: Session, start: Callable[..., Case], deploy_file: Deploy,
                                 people: dict[str, User]) -> None:
    case = start()
    instance_id = _instance(session, case).id
    target = deploy_file(ADDED)
    before = _snapshot(session, case)
    for reason in ('', '   ', None):
        with pytest.raises(ValidationFailed) as invalid:
            migrate_instance(session, instance_id, target, actor=people['designer'], reason=reason)
        session.rollback()
        assert invalid.value.fields == {'reason': ['请填写迁移原因。']}
    with pytest.raises(NotFound):
        migrate_instance(session, 10**9, target, actor=None, reason=REASON)
    session.rollback()
    assert _snapshot(session, case) == before


def test_completed_instance_is_refused(session: Session, start: Callable[..., Case], deploy_file: Deploy,
                                      people: dict[str, User]) -> None:
    case = start(at_review=True)
    [review] = _open_tasks(session, case)
    runtime.complete_task(session, review.id, {}, actor=people['officer'], scope=load_scope(session, people['officer']))
    session.commit()
    target = deploy_file(ADDED)
    with pytest.raises(MigrationRefused) as refused:
        migrate_instance(session, _instance(session, case).id, target, actor=None, reason=REASON)
    assert refused.value.message == '流程实例已办结，不能迁移。'


def test_instance_outside_the_designers_subtree_is_not_found(session: Session, start: Callable[..., Case],
                                                            deploy_file: Deploy, org: Org,
                                                            create_member: Callable[..., User]) -> None:
    case = start()
    target = deploy_file(ADDED)
    elsewhere = create_member('designer2', 'designer', org.other_county)
    before = _snapshot(session, case)
    with pytest.raises(NotFound):
        migrate_instance(session, _instance(session, case).id, target, actor=elsewhere, reason=REASON,
                         scope=load_scope(session, elsewhere))
    session.rollback()
    assert _snapshot(session, case) == before


def test_revision_bumped_since_the_preview_conflicts(session: Session, session_factory: sessionmaker[Session],
                                                     start: Callable[..., Case], deploy_file: Deploy,
                                                     v1: ProcessDefinition) -> None:
    case = start()
    target = deploy_file(ADDED)
    [shown] = preview(session, v1, target)
    session.commit()
    with session_factory() as other:  # a command on the instance commits between preview and submit
        other.execute(sa.update(ProcessInstance).where(ProcessInstance.id == shown.instance_id)
                      .values(revision=ProcessInstance.revision + 1))
        other.commit()
    before = _snapshot(session, case)
    with pytest.raises(Conflict) as conflict:
        migrate_instance(session, shown.instance_id, target, actor=None, reason=REASON,
                         expected_revision=shown.revision)
    session.rollback()
    assert conflict.value.message == '案件已被他人更新，请刷新后重试。'
    assert _snapshot(session, case) == before and _migrated_events(session) == []


def test_concurrent_moves_of_one_instance_one_wins(session_factory: sessionmaker[Session],
                                                   start: Callable[..., Case], deploy_file: Deploy,
                                                   session: Session) -> None:
    case = start()
    instance_id = _instance(session, case).id
    target_id = deploy_file(ADDED).id
    revision = _instance(session, case).revision
    session.commit()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        with session_factory() as s:
            target = s.get(ProcessDefinition, target_id)
            assert target is not None
            barrier.wait()
            try:
                migrate_instance(s, instance_id, target, actor=None, reason=REASON)
                s.commit()
                outcomes.append('ok')
            except Conflict:  # a stale revision, or (having waited for the lock) already on the target
                s.rollback()
                outcomes.append('conflict')

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ['conflict', 'ok']
    instance = _instance(session, case)
    assert instance.definition_id == target_id and instance.revision == revision + 1
    assert len(_migrated_events(session)) == 1 and len(_open_tasks(session, case)) == 1


# -- batches ---------------------------------------------------------------------------------------------

@pytest.fixture
def one_per_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Batches move one instance per job run, so that a few instances show the job rescheduling itself."""
    monkeypatch.setattr(migration.limits, 'chunk_size', 1)
    yield


def _drain(session_factory: sessionmaker[Session]) -> int:
    """Run the worker until no job is due; return how many job runs it took."""
    worker, runs = Worker(session_factory, name='test-worker', poll_interval=0), 0
    while (claimed := worker.run_once()):
        runs += claimed
    return runs


def test_batch_moves_each_instance_in_turn_and_reports_failures(
        session: Session, session_factory: sessionmaker[Session], start: Callable[..., Case], deploy_file: Deploy,
        v1: ProcessDefinition, people: dict[str, User], one_per_run: None) -> None:
    first, blocked, last = start('甲某'), start('乙某', at_review=True), start('丙某')
    target = deploy_file(REMOVED)
    ids = [_instance(session, c).id for c in (first, blocked, last)]
    batch = start_batch(session, v1, target, ids, actor=people['designer'], reason=REASON,
                        scope=load_scope(session, people['designer']))
    session.commit()
    assert (batch.status, batch.total_count, batch.pending_count) == ('queued', 3, 3)
    assert _drain(session_factory) == 3  # one run per instance, each scheduling the next
    session.expire_all()
    session.refresh(batch)
    assert (batch.status, batch.migrated_count, batch.failed_count, batch.skipped_count) == ('done', 2, 1, 0)
    assert batch.finished_dt is not None
    items = {i.instance_id: i for i in session.scalars(sa.select(MigrationItem)
                                                       .where(MigrationItem.batch_id == batch.id))}
    assert [items[i].status for i in ids] == ['migrated', 'failed', 'migrated']
    assert '当前步骤“审核”在新版本中已删除。' in (items[ids[1]].message or '')
    assert all(items[i].finished_dt is not None for i in ids)
    assert [_instance(session, c).definition_id for c in (first, blocked, last)] == [target.id, v1.id, target.id]
    # The refusal in the middle rolled back its own savepoint only: both moves are in the audit log.
    assert [e.instance_id for e in _migrated_events(session)] == [ids[0], ids[2]]
    assert all(e.actor_id == people['designer'].id and e.note == REASON for e in _migrated_events(session))
    kinds = session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.kind.like('migration.%'))
                            .order_by(AuditEvent.id)).all()
    assert kinds == ['migration.batch_started', 'migration.batch_finished']
    runs = session.scalars(sa.select(Job.key).where(Job.kind == 'migration', Job.status == 'done')
                           .order_by(Job.id)).all()
    assert runs == [f'migration:{batch.id}:1', f'migration:{batch.id}:2', f'migration:{batch.id}:3']
    assert verify_chain(session).ok


def test_batch_job_run_twice_changes_nothing_and_skips_moved_instances(
        session: Session, session_factory: sessionmaker[Session], start: Callable[..., Case], deploy_file: Deploy,
        v1: ProcessDefinition, people: dict[str, User]) -> None:
    moved, waiting = start('甲某'), start('乙某')
    target = deploy_file(ADDED)
    ids = [_instance(session, c).id for c in (moved, waiting)]
    batch = start_batch(session, v1, target, ids, actor=people['designer'], reason=REASON)
    session.commit()
    migrate_instance(session, ids[0], target, actor=people['designer'], reason='单独迁移')  # before the worker
    session.commit()
    assert _drain(session_factory) == 1
    session.expire_all()
    statuses = {i: status for i, status in session.execute(sa.select(MigrationItem.instance_id, MigrationItem.status))}
    assert statuses == {ids[0]: 'skipped', ids[1]: 'migrated'}
    job = session.scalars(sa.select(Job).where(Job.kind == 'migration')).one()
    events = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    handler_for('migration')(session, job)  # a worker that died after the effect runs the job again
    session.commit()
    session.expire_all()
    done = session.get(MigrationBatch, batch.id)
    assert done is not None and (done.status, done.migrated_count, done.skipped_count) == ('done', 1, 1)
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events
    assert _instance(session, waiting).revision == 3  # started, migrated once: not moved twice


def test_start_batch_refuses_bad_input_and_creates_nothing(session: Session, start: Callable[..., Case],
                                                           deploy_file: Deploy, v1: ProcessDefinition, org: Org,
                                                           people: dict[str, User],
                                                           create_member: Callable[..., User]) -> None:
    case = start()
    target = deploy_file(ADDED)
    instance_id = _instance(session, case).id
    designer = people['designer']
    with pytest.raises(ValidationFailed):
        start_batch(session, v1, target, [instance_id], actor=designer, reason=' ')
    with pytest.raises(ValidationFailed):
        start_batch(session, v1, target, [], actor=designer, reason=REASON)
    with pytest.raises(NotFound):
        start_batch(session, v1, target, [instance_id, 10**9], actor=designer, reason=REASON)
    elsewhere = create_member('designer2', 'designer', org.other_county)
    with pytest.raises(NotFound):
        start_batch(session, v1, target, [instance_id], actor=elsewhere, reason=REASON,
                    scope=load_scope(session, elsewhere))
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).select_from(MigrationBatch)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == 'migration')) == 0


def test_the_worker_knows_the_migration_job() -> None:
    assert 'migration' in registered_kinds()


def test_migration_tables_match_the_models(db_engine: Engine) -> None:
    with db_engine.connect() as connection:
        diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    ours = [d for d in diffs if 'migration_' in repr(d)]
    assert ours == []


@pytest.fixture
def two_operations() -> Iterator[None]:
    """Two registered service operations (a service task may only name a registered one)."""
    for name in ('tests.mark_colour', 'tests.other_colour'):
        service(name)(lambda context, data: None)
    yield
    for name in ('tests.mark_colour', 'tests.other_colour'):
        _operations.pop(name, None)


def test_our_service_tasks_can_be_compared(two_operations: None) -> None:
    """SpecDiff compares specs as dicts: the external service task (engine.services) must convert to one."""
    source = (Path(__file__).parent / 'bpmn' / 'service_case.bpmn').read_text(encoding='utf-8')
    old = parse_definition(source)
    new = parse_definition(source.replace('tests.mark_colour', 'tests.other_colour'))
    assert isinstance(old, ProcessBundle) and isinstance(new, ProcessBundle)
    spec_diff = SpecDiff(migration._registry, old.spec, new.spec)
    changed = {spec.name: names for spec, names in spec_diff.changed.items()}
    assert changed == {'triage': ['topic']}
