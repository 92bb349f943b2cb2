"""The to-do queries and task commands: views, filters, sorts, keyset paging, capped counts, delegation,
bulk actions, saved filters and task urgency, through the real engine and database."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import filters, runtime, tasks
from engine.access import load_scope
from engine.clock import FrozenClock
from engine.definitions import deploy
from engine.directory import add_membership, get_group
from engine.errors import AccessDenied, Conflict, DeploymentRejected, NotFound, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.notifications import Notification
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.profiles import CaseProfile, register_profile
from engine.services import ServiceContext, _operations, service
from engine.tasks import TaskFilter
from tests.conftest import executed_statements
from tests.fixtures.directory import Org
from tests.fixtures.engine import ROOT

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
ID_NUMBER = '430922198503120017'
REGISTER = {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实'}


@pytest.fixture
def start(session: Session, org: Org, people: dict[str, User], clock: FrozenClock,
          deploy_file: Callable[[str], object]) -> Callable[..., HumanTask]:
    """Start a demo case at the township; return its first (register) task."""
    deploy_file(DEMO)

    def factory(name: str, *, id_number: str = '', unit: Any = None) -> HumanTask:
        data = {'person_name': name, 'received_on': '2025-09-26', 'summary': '测试', 'id_number': id_number}
        _, opened = runtime.start_case(session, 'demo_intake', data, actor=people['staff'],
                                       org_unit=unit or org.township)
        session.commit()
        return opened[0]
    return factory


def _ids(page: tasks.Page) -> list[int]:
    return [t.id for t in page.items]


def _scope(session: Session, user: User) -> Any:
    return load_scope(session, user)


# -- views and filters ----------------------------------------------------------------------------------

def test_views_hold_what_their_names_say(session: Session, start: Callable[..., HumanTask], clock: FrozenClock,
                                         people: dict[str, User]) -> None:
    staff, staff2 = people['staff'], people['staff2']
    mine, queued, late = start('甲某'), start('乙某'), start('丙某')
    tasks.claim_task(session, mine.id, actor=staff, scope=_scope(session, staff))
    session.execute(sa.update(HumanTask).where(HumanTask.id == late.id)
                    .values(due_dt=clock.now() - timedelta(days=1)))
    session.commit()
    scope = _scope(session, staff)
    assert _ids(tasks.list_tasks(session, scope, 'mine')) == [mine.id]
    assert set(_ids(tasks.list_tasks(session, scope, 'group'))) == {queued.id, late.id}
    assert _ids(tasks.list_tasks(session, scope, 'overdue')) == [late.id]
    assert set(_ids(tasks.list_tasks(session, scope, 'all'))) == {mine.id, queued.id, late.id}
    assert _ids(tasks.list_tasks(session, _scope(session, people['outsider']), 'all')) == []
    # The claimed task is no longer in staff2's group queue; nothing is completed yet.
    assert mine.id not in _ids(tasks.list_tasks(session, _scope(session, staff2), 'group'))
    assert _ids(tasks.list_tasks(session, scope, 'completed')) == []


def test_a_views_grants_part_is_built_once_per_scope_and_a_new_grant_is_seen_at_once(
        session: Session, start: Callable[..., HumanTask], org: Org, people: dict[str, User]) -> None:
    outsider = people['outsider']
    here, there = start('甲某'), start('乙某', unit=org.other_township)
    before = _scope(session, outsider)
    assert tasks.view_clause(before, 'all') is tasks.view_clause(_scope(session, outsider), 'all')
    assert _ids(tasks.list_tasks(session, before, 'group')) == [there.id]
    add_membership(session, outsider, get_group(session, 'township_staff'), org.township, actor=None)
    session.commit()
    after = _scope(session, outsider)
    assert tasks.view_clause(after, 'all') is not tasks.view_clause(before, 'all')
    assert set(_ids(tasks.list_tasks(session, after, 'group'))) == {here.id, there.id}
    soon = len(tasks.list_tasks(session, after, 'due_soon').items)
    assert tasks.count_views(session, after, ['all', 'due_soon']) == {'all': 2, 'due_soon': soon}
    assert _ids(tasks.list_tasks(session, before, 'group')) == [there.id]  # the old grants, as they were


def test_a_kept_views_statements_read_the_time_when_they_run(session: Session, start: Callable[..., HumanTask],
                                                             clock: FrozenClock, people: dict[str, User]) -> None:
    task = start('甲某')
    session.execute(sa.update(HumanTask).where(HumanTask.id == task.id).values(due_dt=clock.now() + timedelta(days=5)))
    session.commit()
    scope = _scope(session, people['staff'])
    views = ['due_soon', 'overdue']
    assert tasks.count_views(session, scope, views) == {'due_soon': 0, 'overdue': 0}
    clock.advance(timedelta(days=3))
    assert tasks.count_views(session, scope, views) == {'due_soon': 1, 'overdue': 0}
    assert _ids(tasks.list_tasks(session, scope, 'due_soon')) == [task.id]
    clock.advance(timedelta(days=3))
    assert tasks.count_views(session, scope, views) == {'due_soon': 0, 'overdue': 1}
    assert _ids(tasks.list_tasks(session, scope, 'overdue')) == [task.id]
    assert _ids(tasks.list_tasks(session, scope, 'due_soon')) == []


def test_completed_view_lists_my_recent_completions_newest_first(
        session: Session, start: Callable[..., HumanTask], clock: FrozenClock, people: dict[str, User]) -> None:
    staff = people['staff']
    first, second = start('甲某'), start('乙某')
    for task in (first, second):
        runtime.complete_task(session, task.id, REGISTER, actor=staff, scope=_scope(session, staff))
        session.commit()
        clock.advance(timedelta(hours=1))
    assert _ids(tasks.list_tasks(session, _scope(session, staff), 'completed')) == [second.id, first.id]
    assert _ids(tasks.list_tasks(session, _scope(session, people['staff2']), 'completed')) == []
    clock.advance(timedelta(days=31))
    assert _ids(tasks.list_tasks(session, _scope(session, staff), 'completed')) == []


def test_unknown_view_and_sort_are_validation_errors(session: Session, people: dict[str, User]) -> None:
    scope = _scope(session, people['staff'])
    with pytest.raises(ValidationFailed):
        tasks.list_tasks(session, scope, 'everything')
    with pytest.raises(ValidationFailed):
        tasks.list_tasks(session, scope, 'mine', sort='alphabetical')


def test_text_filter_matches_number_prefix_name_prefix_and_exact_id_number(
        session: Session, start: Callable[..., HumanTask], people: dict[str, User]) -> None:
    wang, li = start('王小明', id_number=ID_NUMBER), start('李四')
    scope = _scope(session, people['staff'])

    def found(text: str) -> set[int]:
        return set(_ids(tasks.list_tasks(session, scope, 'all', task_filter=TaskFilter(text=text))))

    assert found('王') == {wang.id}
    assert found(ID_NUMBER) == {wang.id}
    assert found(ID_NUMBER[:-1] + '8') == set()  # an ID number is never matched by its start
    assert found(li.case.number) == {li.id}
    assert found(li.case.number[:3].lower()) == {wang.id, li.id}
    assert found('张') == set()


def test_an_id_number_search_checks_visibility_on_that_persons_tasks_alone(
        session: Session, start: Callable[..., HumanTask], org: Org, people: dict[str, User]) -> None:
    here = start('王小明', id_number=ID_NUMBER)
    start('王小明', id_number=ID_NUMBER, unit=org.other_township)  # the same person, in a county not the chief's
    start('李四')
    scope = _scope(session, people['chief'])  # supervisor of the first county: the union of index ranges
    with executed_statements(session) as statements:
        listed = _ids(tasks.list_tasks(session, scope, 'all', task_filter=TaskFilter(text=ID_NUMBER)))
        counts = tasks.count_views(session, scope, ['overdue', 'all'], task_filter=TaskFilter(text=ID_NUMBER))
    assert listed == [here.id] and counts == {'overdue': 0, 'all': 1}
    # The person's own tasks are checked against the chief's terms; no union of every task of the county first.
    assert not [sql for sql, _ in statements if 'UNION' in sql.upper()]
    with executed_statements(session) as statements:
        assert len(_ids(tasks.list_tasks(session, scope, 'all', task_filter=TaskFilter(text='王')))) == 1
    assert [sql for sql, _ in statements if 'UNION' in sql.upper()]


def test_filters_by_process_stage_unit_colour_and_dates(session: Session, start: Callable[..., HumanTask],
                                                        org: Org, clock: FrozenClock,
                                                        people: dict[str, User]) -> None:
    here, there = start('甲某'), start('乙某', unit=org.other_township)
    session.execute(sa.update(HumanTask).where(HumanTask.id == here.id).values(risk_colour='red'))
    session.commit()
    scope = _scope(session, people['chief'])  # supervisor of the first county only

    def found(**values: str) -> set[int]:
        return set(_ids(tasks.list_tasks(session, scope, 'all', task_filter=TaskFilter.from_dict(values))))

    assert found() == {here.id}  # the other county is not the chief's
    assert found(process='demo_intake', stage='register') == {here.id}
    assert found(stage='review') == set()
    assert found(org_unit=org.township.code, risk_colour='red') == {here.id}
    assert found(risk_colour='green') == set()
    today = clock.now().date().isoformat()
    assert found(created_from=today, created_to=today) == {here.id}
    assert found(created_from=(clock.now().date() + timedelta(days=1)).isoformat()) == set()
    assert there.id not in found(org_unit=org.township.code)
    with pytest.raises(ValidationFailed) as refused:
        found(org_unit=org.other_township.code)
    assert 'org_unit' in refused.value.fields


def test_filter_values_are_checked(session: Session) -> None:
    with pytest.raises(ValidationFailed) as refused:
        TaskFilter.from_dict({'due_from': '2025-13-01', 'risk_colour': 'purple', 'created_from': '2025-10-02',
                              'created_to': '2025-10-01', 'text': 'x' * 65})
    assert set(refused.value.fields) == {'due_from', 'risk_colour', 'created_to', 'text'}
    parsed = TaskFilter.from_dict({'process': ' demo_intake ', 'due_to': '2025-10-01', 'ignored': 'x'})
    assert parsed.to_dict() == {'process': 'demo_intake', 'due_to': '2025-10-01'}


# -- sorting, paging, counting --------------------------------------------------------------------------

def test_keyset_pages_cover_every_task_once_in_each_sort(session: Session, start: Callable[..., HumanTask],
                                                         clock: FrozenClock, people: dict[str, User]) -> None:
    created = []
    for i in range(7):
        created.append(start(f'人{i}'))
        clock.advance(timedelta(minutes=5))
    # Mixed due dates, ties and an undated task; mixed urgency.
    dues = [3, 1, 1, None, 2, 1, 5]
    for task, days, priority in zip(created, dues, [0, 90, 3, 0, 90, 1, 0], strict=True):
        session.execute(sa.update(HumanTask).where(HumanTask.id == task.id).values(
            due_dt=None if days is None else clock.now() + timedelta(days=days), priority=priority))
    session.commit()
    scope = _scope(session, people['staff'])
    for sort in tasks.SORTS:
        whole = _ids(tasks.list_tasks(session, scope, 'all', sort=sort, limit=50))
        paged: list[int] = []
        cursor = None
        while True:
            page = tasks.list_tasks(session, scope, 'all', sort=sort, cursor=cursor, limit=2)
            paged += _ids(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert paged == whole and sorted(paged) == sorted(t.id for t in created), sort
    by_due = [session.get(HumanTask, i) for i in _ids(tasks.list_tasks(session, scope, 'all', sort='due'))]
    assert by_due[-1].due_dt is None
    by_priority = [session.get(HumanTask, i).priority
                   for i in _ids(tasks.list_tasks(session, scope, 'all', sort='priority'))]
    assert by_priority == sorted(by_priority, reverse=True)
    by_created = _ids(tasks.list_tasks(session, scope, 'all', sort='created'))
    assert by_created == [t.id for t in reversed(created)]


def test_cursor_of_another_sort_or_mangled_is_refused(session: Session, start: Callable[..., HumanTask],
                                                      people: dict[str, User]) -> None:
    for name in '甲乙丙':
        start(name + '某')
    scope = _scope(session, people['staff'])
    cursor = tasks.list_tasks(session, scope, 'all', sort='due', limit=1).next_cursor
    assert cursor
    with pytest.raises(ValidationFailed):
        tasks.list_tasks(session, scope, 'all', sort='created', cursor=cursor)
    with pytest.raises(ValidationFailed):
        tasks.list_tasks(session, scope, 'all', cursor='not-a-cursor')
    # A forged cursor whose id or priority no INTEGER column holds (PostgreSQL failed the comparison: a 500).
    for forged in (['created', '2025-10-01T00:00:00+00:00', 2**31], ['priority', -2**31 - 1, None, 1]):
        raw = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        with pytest.raises(ValidationFailed):
            tasks.list_tasks(session, scope, 'all', sort=forged[0], cursor=raw)
    largest = base64.urlsafe_b64encode(json.dumps(['created', '2999-01-01T00:00:00+00:00', 2**31 - 1]).encode())
    assert len(tasks.list_tasks(session, scope, 'all', sort='created', cursor=largest.decode()).items) == 3


def test_counts_stop_at_the_cap(session: Session, start: Callable[..., HumanTask], people: dict[str, User]) -> None:
    for name in '甲乙丙丁':
        start(name + '某')
    scope = _scope(session, people['staff'])
    assert tasks.count_tasks(session, scope, 'group') == 4
    assert tasks.count_tasks(session, scope, 'group', cap=2) == 3  # "2+"
    assert tasks.count_tasks(session, scope, 'group', task_filter=TaskFilter(text='甲某')) == 1


@pytest.mark.postgres
def test_a_supervisors_red_count_reads_the_colour_and_unit_index(session: Session, start: Callable[..., HumanTask],
                                                                  org: Org, people: dict[str, User]) -> None:
    # 20,000 open tasks of one case, half in the chief's county, 500 of those red and 5,000 red in the other county:
    # read in case order (the index that lists the open rows alone) or by colour, most rows read are not counted.
    task = start('甲某')
    base = {column: getattr(task, column) for column in ('instance_id', 'case_id', 'bpmn_id', 'title', 'org_unit_id',
                                                         'candidate_group', 'process_key', 'priority', 'is_minor',
                                                         'created_dt', 'due_dt')}
    session.execute(sa.insert(HumanTask), [
        {**base, 'spiff_task_id': f'extra-{n}', 'status': 'open',
         'risk_colour': 'red' if n % 40 == 1 or n % 4 == 0 else 'green',
         'org_path': (org.township if n % 2 else org.other_township).path} for n in range(20_000)])
    session.commit()
    session.execute(sa.text('ANALYZE human_tasks'))
    scope = _scope(session, people['chief'])
    with executed_statements(session) as statements:
        count = tasks.count_tasks(session, scope, 'all', task_filter=TaskFilter(risk_colour='red'), cap=10_000)
    assert count == 500
    [(statement, parameters)] = [s for s in statements if 'count(' in s[0]]
    [[plan]] = session.connection().exec_driver_sql(f'EXPLAIN (FORMAT JSON) {statement}', parameters).all()
    assert 'ix_human_tasks_open_colour_path' in json.dumps(plan)


# -- urgency --------------------------------------------------------------------------------------------

@pytest.fixture
def recolour_request() -> Iterator[None]:
    def mark_colour(context: ServiceContext, data: dict[str, Any]) -> dict[str, Any]:
        context.case.risk_colour = context.properties['colour']
        return {}

    service('tests.mark_colour')(mark_colour)
    register_profile('request_colour', CaseProfile(attach_to_case=True))
    yield
    register_profile('request_colour', CaseProfile())
    _operations.pop('tests.mark_colour', None)


def test_priority_is_declared_urgency_plus_case_colour_and_follows_a_new_colour(
        session: Session, start: Callable[..., HumanTask], org: Org, people: dict[str, User],
        recolour_request: None, deploy_file: Callable[[str], object]) -> None:
    deploy_file('tests/engine/bpmn/request_colour.bpmn')
    register = start('甲某')
    assert (register.priority, register.risk_colour, register.process_key) == (0, None, 'demo_intake')
    staff = people['staff']
    _, [alarm] = runtime.start_case(session, 'request_colour', {'case_id': register.case_id}, actor=staff,
                                    org_unit=org.township, scope=_scope(session, staff))
    session.commit()
    assert (alarm.priority, alarm.risk_colour, alarm.process_key) == (93, 'red', 'request_colour')
    session.refresh(register)
    assert (register.priority, register.risk_colour) == (3, 'red')  # the other instance's open task too
    red = tasks.list_tasks(session, _scope(session, staff), 'all', task_filter=TaskFilter(risk_colour='red'),
                           sort='priority')
    assert _ids(red) == [alarm.id, register.id]


def test_priority_must_be_a_number_from_0_to_100(session: Session) -> None:
    source = (ROOT / 'tests/engine/bpmn/request_colour.bpmn').read_text().replace(
        'camunda:priority="90"', 'camunda:priority="${urgent}"')
    with pytest.raises(DeploymentRejected) as refused:
        deploy(session, source.encode(), actor=None, filename='bad.bpmn')
    assert any(p['element'] == 'alarm' and 'priority' in p['message'] for p in refused.value.problems)


# -- delegation -----------------------------------------------------------------------------------------

def test_delegation_round_trip(session: Session, start: Callable[..., HumanTask], people: dict[str, User]) -> None:
    staff, staff2 = people['staff'], people['staff2']
    task = start('甲某')
    tasks.claim_task(session, task.id, actor=staff, scope=_scope(session, staff))
    tasks.delegate_task(session, task.id, staff2.id, actor=staff, scope=_scope(session, staff), note='请核实住址')
    session.commit()
    assert (task.assignee_id, task.owner_id, task.delegation_state) == (staff2.id, staff.id, 'pending')
    assert _ids(tasks.list_tasks(session, _scope(session, staff2), 'mine')) == [task.id]
    assert _ids(tasks.list_tasks(session, _scope(session, staff), 'mine')) == [task.id]  # the owner keeps sight
    note = session.scalars(sa.select(Notification).where(Notification.user_id == staff2.id)).one()
    assert note.kind == 'delegated' and note.body == '请核实住址'
    for user in (staff, staff2):  # nobody completes while the delegation is pending
        with pytest.raises(Conflict, match='委托'):
            runtime.complete_task(session, task.id, REGISTER, actor=user, scope=_scope(session, user))
        session.rollback()
    with pytest.raises(AccessDenied):
        tasks.resolve_task(session, task.id, actor=staff, scope=_scope(session, staff))
    tasks.resolve_task(session, task.id, actor=staff2, scope=_scope(session, staff2), note='已核实')
    session.commit()
    assert (task.assignee_id, task.delegation_state) == (staff.id, 'resolved')
    assert _ids(tasks.list_tasks(session, _scope(session, staff2), 'mine')) == []
    runtime.complete_task(session, task.id, REGISTER, actor=staff, scope=_scope(session, staff))
    session.commit()
    kinds = session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.human_task_id == task.id)
                            .order_by(AuditEvent.id)).all()
    assert kinds[-4:] == ['task.claimed', 'task.delegated', 'task.resolved', 'task.completed']


def test_delegate_must_be_an_active_colleague_within_the_subtree(
        session: Session, start: Callable[..., HumanTask], people: dict[str, User]) -> None:
    staff = people['staff']
    task = start('甲某')
    tasks.claim_task(session, task.id, actor=staff, scope=_scope(session, staff))
    session.commit()
    for delegate in (people['outsider'], staff, people['designer']):
        with pytest.raises(ValidationFailed):
            tasks.delegate_task(session, task.id, delegate.id, actor=staff, scope=_scope(session, staff))
    with pytest.raises(ValidationFailed):
        tasks.delegate_task(session, task.id, 999999, actor=staff, scope=_scope(session, staff))
    # Someone who does not hold the task cannot hand it on.
    with pytest.raises(AccessDenied):
        tasks.delegate_task(session, task.id, people['staff'].id, actor=people['staff2'],
                            scope=_scope(session, people['staff2']))
    session.rollback()
    assert session.get(HumanTask, task.id).delegation_state is None


def test_pending_delegation_blocks_unclaim_assign_and_second_delegation(
        session: Session, start: Callable[..., HumanTask], people: dict[str, User]) -> None:
    staff, staff2, chief = people['staff'], people['staff2'], people['chief']
    task = start('甲某')
    tasks.claim_task(session, task.id, actor=staff, scope=_scope(session, staff))
    tasks.delegate_task(session, task.id, staff2.id, actor=staff, scope=_scope(session, staff))
    session.commit()
    with pytest.raises(Conflict):
        tasks.unclaim_task(session, task.id, actor=staff2, scope=_scope(session, staff2))
    with pytest.raises(Conflict):
        tasks.assign_task(session, task.id, staff.id, actor=chief, scope=_scope(session, chief))
    with pytest.raises(Conflict):
        tasks.delegate_task(session, task.id, staff.id, actor=staff2, scope=_scope(session, staff2))


# -- bulk actions ---------------------------------------------------------------------------------------

def test_bulk_claim_reports_each_task_and_keeps_the_successes(
        session: Session, start: Callable[..., HumanTask], people: dict[str, User]) -> None:
    staff, staff2 = people['staff'], people['staff2']
    free, taken, foreign = start('甲某'), start('乙某'), start('丙某')
    tasks.claim_task(session, taken.id, actor=staff2, scope=_scope(session, staff2))
    session.execute(sa.update(HumanTask).where(HumanTask.id == foreign.id).values(candidate_group='county_officer'))
    session.commit()
    results = tasks.bulk_claim(session, [free.id, taken.id, foreign.id, 999999], actor=staff,
                               scope=_scope(session, staff))
    session.commit()
    assert [(r.task_id, r.ok) for r in results] == [(free.id, True), (taken.id, False), (foreign.id, False),
                                                    (999999, False)]
    assert '已被他人认领' in results[1].message and results[3].message == '任务不存在'
    assert session.get(HumanTask, free.id).assignee_id == staff.id
    assert session.get(HumanTask, taken.id).assignee_id == staff2.id
    claimed = session.scalars(sa.select(AuditEvent.human_task_id).where(AuditEvent.kind == 'task.claimed',
                                                                  AuditEvent.actor_id == staff.id)).all()
    assert claimed == [free.id]


def test_bulk_assign_is_for_supervisors_and_checks_the_assignee(
        session: Session, start: Callable[..., HumanTask], people: dict[str, User]) -> None:
    first, second = start('甲某'), start('乙某')
    chief, staff2 = people['chief'], people['staff2']
    results = tasks.bulk_assign(session, [first.id, second.id], staff2.id, actor=chief, scope=_scope(session, chief))
    session.commit()
    assert all(r.ok for r in results)
    assert {session.get(HumanTask, t.id).assignee_id for t in (first, second)} == {staff2.id}
    refused = tasks.bulk_assign(session, [first.id], people['officer'].id, actor=chief,
                                scope=_scope(session, chief))
    assert not refused[0].ok  # the county officer is not a candidate of a township task
    denied = tasks.bulk_assign(session, [first.id], staff2.id, actor=staff2, scope=_scope(session, staff2))
    assert not denied[0].ok and '主管' in denied[0].message
    with pytest.raises(ValidationFailed):
        tasks.bulk_claim(session, [], actor=staff2, scope=_scope(session, staff2))
    with pytest.raises(ValidationFailed):
        tasks.bulk_claim(session, list(range(1, tasks.BULK_MAX + 2)), actor=staff2, scope=_scope(session, staff2))


# -- saved filters --------------------------------------------------------------------------------------

def test_saved_filter_personal_and_shared_visibility(session: Session, org: Org, people: dict[str, User],
                                                     create_member: Callable[..., User]) -> None:
    staff, staff2, outsider = people['staff'], people['staff2'], people['outsider']
    own = filters.save_filter(session, '红色案件', 'all', {'risk_colour': 'red'}, actor=staff,
                              scope=_scope(session, staff), sort='priority')
    shared = filters.save_filter(session, '本所超期', 'overdue', {}, actor=staff, scope=_scope(session, staff),
                                 share_group='township_staff')
    session.commit()
    assert own.criteria == {'risk_colour': 'red', 'sort': 'priority'}
    assert filters.filter_of(own) == (TaskFilter(risk_colour='red'), 'priority')
    assert [f.id for f in filters.list_filters(session, _scope(session, staff))] == [shared.id, own.id]
    assert [f.id for f in filters.list_filters(session, _scope(session, staff2))] == [shared.id]
    assert filters.list_filters(session, _scope(session, outsider)) == []  # same group, another township
    with pytest.raises(NotFound):
        filters.get_filter(session, own.id, _scope(session, staff2))
    with pytest.raises(AccessDenied):
        filters.delete_filter(session, shared.id, actor=staff2, scope=_scope(session, staff2))
    filters.delete_filter(session, shared.id, actor=staff, scope=_scope(session, staff))
    session.commit()
    assert filters.list_filters(session, _scope(session, staff2)) == []


def test_saving_a_filter_checks_name_view_criteria_and_group(session: Session, people: dict[str, User]) -> None:
    staff = people['staff']
    scope = _scope(session, staff)
    filters.save_filter(session, '我的', 'mine', {}, actor=staff, scope=scope)
    cases = [
        (('我的', 'mine', {}), {}, 'name'),
        (('', 'mine', {}), {}, 'name'),
        (('新的', 'nothing', {}), {}, 'view'),
        (('新的', 'mine', {'due_from': 'tomorrow'}), {}, 'due_from'),
        (('新的', 'mine', {}), {'share_group': 'supervisor'}, 'share_group'),
        (('新的', 'mine', {}), {'sort': 'random'}, 'sort'),
    ]
    for args, extra, field in cases:
        with pytest.raises(ValidationFailed) as refused:
            filters.save_filter(session, *args, actor=staff, scope=scope, **extra)
        assert field in refused.value.fields, args
