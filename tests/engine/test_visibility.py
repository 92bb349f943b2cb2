"""Who sees which case (issue 7): roles per lifecycle, a hospital's liaison, minors' records (社区矫正法 §54).

Every rule is checked both ways (one user who sees, one who does not) through the SQL clauses the lists use
(case list, to-do list, group queue, escalation queue, supervision search) and the checks the loaders use
(``can_view_case``, ``Scope.can_view_task``), which must agree.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session

from engine.access import (
    Scope,
    can_view_case,
    group_queue_clause,
    load_scope,
    registered_lifecycles,
    visible_cases,
    visible_open_tasks_clause,
)
from engine.clock import FrozenClock
from engine.errors import ValidationFailed
from engine.models.cases import Case, CaseAccessGrant
from engine.models.tasks import HumanTask
from engine.reminders import escalation_queue_clause
from engine.search import InstanceFilter, search_instances
from engine.tasks import claim_task, delegate_task
from tests.conftest import rerun_migration
from tests.engine.visibility_support import ROOT, World, build_world, task_of

MINOR_FLAG_REVISION = 'e8f9a0b1c2d3'
ALL = frozenset({'adult', 'minor', 'dispute_a', 'dispute_b', 'intake'})
#: the cases each user's case list holds (``intake`` is of a kind no lifecycle names: every case role sees it)
EXPECTED = {
    'staff': {'adult', 'minor', 'intake'},
    'officer': {'adult', 'minor', 'intake'},
    'other_officer': set(),
    'mediator': {'dispute_a', 'dispute_b', 'intake'},
    'senior': {'dispute_a', 'dispute_b', 'intake'},
    'counsellor': {'dispute_a', 'dispute_b', 'intake'},
    'expert': {'dispute_a', 'dispute_b', 'intake'},
    'health': {'dispute_a', 'dispute_b', 'intake'},
    'liaison_a': {'dispute_a', 'intake'},
    'liaison_b': {'dispute_b', 'intake'},
    'liaison_none': {'intake'},
    'village': {'intake'},
    'chief': set(ALL),
    'city_chief': ALL - {'minor'},
    'province_chief': ALL - {'minor'},
    'designer': set(),
}


@pytest.fixture
def world(session: Session, clock: FrozenClock) -> World:
    return build_world(session)


def scope_of(session: Session, world: World, username: str) -> Scope:
    return load_scope(session, world.users[username])


def keys(world: World, case_ids: set[int]) -> set[str]:
    return {key for key, case in world.cases.items() if case.id in case_ids}


def listed(session: Session, world: World, scope: Scope) -> set[str]:
    return keys(world, set(session.scalars(visible_cases(scope).with_only_columns(Case.id))))


def open_task_ids(session: Session, clause: sa.ColumnElement[bool]) -> set[int]:
    return set(session.scalars(sa.select(HumanTask.id).where(HumanTask.status == 'open', clause)))


def all_open(session: Session) -> list[HumanTask]:
    return list(session.scalars(sa.select(HumanTask).where(HumanTask.status == 'open')))


def candidate_groups(folder: str) -> set[str]:
    groups: set[str] = set()
    for path in sorted((ROOT / 'bpmn' / folder).glob('*.bpmn')):
        for value in etree.parse(str(path)).xpath('//@*[local-name()="candidateGroups"]'):
            groups |= {group.strip() for group in str(value).split(',') if group.strip()}
    return groups


def process_ids(folder: str) -> set[str]:
    ids: set[str] = set()
    for path in sorted((ROOT / 'bpmn' / folder).glob('*.bpmn')):
        ids |= {str(pid) for pid in etree.parse(str(path)).xpath(
            '//*[local-name()="process"][@isExecutable="true"]/@id')}
    return ids


# -- the registry -----------------------------------------------------------------------------------------

def test_lifecycle_roles_are_the_candidate_groups_of_the_shipped_diagrams() -> None:
    lifecycles = {lifecycle.name: lifecycle for lifecycle in registered_lifecycles()}
    assert set(lifecycles) >= {'corrections', 'disputes'}
    for name in ('corrections', 'disputes'):
        assert lifecycles[name].roles == candidate_groups(name), name
        assert process_ids(name) <= lifecycles[name].kinds, name
    assert lifecycles['disputes'].hospital_roles == {'hospital_liaison'}
    assert not lifecycles['corrections'].kinds & lifecycles['disputes'].kinds


# -- cases: the case list and the case loader ---------------------------------------------------------------

@pytest.mark.parametrize('username', sorted(EXPECTED))
def test_case_list_and_case_loader_show_each_role_its_lifecycles_hospital_and_minors(
        session: Session, world: World, username: str) -> None:
    scope = scope_of(session, world, username)
    assert listed(session, world, scope) == EXPECTED[username]
    loadable = {key for key, case in world.cases.items() if can_view_case(session, scope, case)}
    assert loadable == EXPECTED[username]


def test_health_bureau_sees_disputes_and_no_corrections_case(session: Session, world: World) -> None:
    health = scope_of(session, world, 'health')
    shown = listed(session, world, health)
    assert {'dispute_a', 'dispute_b'} <= shown
    assert not shown & {'adult', 'minor'}
    assert not can_view_case(session, health, world.cases['adult'])


def test_township_staff_see_no_medical_dispute(session: Session, world: World) -> None:
    # The dispute sits at the county, above the township: move one into the township to rule out the subtree.
    dispute = world.cases['dispute_a']
    dispute.org_unit, dispute.org_path = world.units['township'], world.units['township'].path
    session.commit()
    staff, village = scope_of(session, world, 'staff'), scope_of(session, world, 'village')
    assert 'dispute_a' not in listed(session, world, staff)
    assert not can_view_case(session, staff, dispute)
    assert 'dispute_a' in listed(session, world, village)  # the village mediator of that township does


def test_minor_seen_by_holder_of_one_of_its_tasks_above_the_county(session: Session, world: World) -> None:
    city_chief = scope_of(session, world, 'city_chief')
    assert not can_view_case(session, city_chief, world.cases['minor'])
    task = task_of(session, world.cases['minor'], 'receipt')
    task.assignee_id = world.users['city_chief'].id  # e.g. a 市级 approval handed to them
    session.commit()
    assert 'minor' in listed(session, world, city_chief)
    assert can_view_case(session, city_chief, world.cases['minor'])
    assert 'minor' not in listed(session, world, scope_of(session, world, 'province_chief'))


def test_transfer_grant_keeps_lifecycle_and_minor_rules(session: Session, world: World, clock: FrozenClock) -> None:
    for key in ('adult', 'minor', 'dispute_a'):
        session.add(CaseAccessGrant(case_id=world.cases[key].id, org_path=world.units['other_county'].path,
                                    reason='变更执行地', granted_dt=clock.now()))
    session.commit()
    other = scope_of(session, world, 'other_officer')
    # The county officers the case came from keep reading it, a minor's too, but not a medical dispute.
    assert listed(session, world, other) == {'adult', 'minor'}
    assert {key for key, case in world.cases.items() if can_view_case(session, other, case)} == {'adult', 'minor'}
    assert not other.owns_case(world.cases['adult'])  # reading is not starting requests on it


def test_own_officers_start_requests_on_a_case_others_do_not(session: Session, world: World) -> None:
    adult, minor = world.cases['adult'], world.cases['minor']
    assert scope_of(session, world, 'officer').owns_case(adult)
    assert scope_of(session, world, 'officer').owns_case(minor)
    assert not scope_of(session, world, 'health').owns_case(adult)
    assert scope_of(session, world, 'city_chief').owns_case(adult)
    assert not scope_of(session, world, 'city_chief').owns_case(minor)


# -- supervision search -------------------------------------------------------------------------------------

@pytest.mark.parametrize(('username', 'sees_minor'), [('chief', True), ('city_chief', False),
                                                      ('province_chief', False)])
def test_supervision_search_shows_minors_from_the_county_down_only(
        session: Session, world: World, username: str, sees_minor: bool) -> None:
    scope = scope_of(session, world, username)
    found = keys(world, {hit.case.id for hit in search_instances(session, scope, InstanceFilter()).hits})
    assert found == (ALL if sees_minor else ALL - {'minor'})
    by_name = search_instances(session, scope, InstanceFilter(text='少年乙')).hits
    assert bool(by_name) is sees_minor


# -- tasks: the to-do lists and the task loader -----------------------------------------------------------

@pytest.mark.parametrize('username', sorted(EXPECTED))
def test_todo_list_and_task_loader_agree(session: Session, world: World, username: str) -> None:
    scope = scope_of(session, world, username)
    tasks = all_open(session)
    assert open_task_ids(session, visible_open_tasks_clause(scope)) == {t.id for t in tasks if scope.can_view_task(t)}
    queue = {t.id for t in tasks if t.assignee_id is None and scope.is_candidate(t)}
    assert open_task_ids(session, group_queue_clause(scope)) == queue


def test_hospital_task_only_in_its_own_hospitals_liaisons_queue(session: Session, world: World) -> None:
    task_a = task_of(session, world.cases['dispute_a'], 'joint_hospital')
    task_b = task_of(session, world.cases['dispute_b'], 'joint_hospital')
    liaison_a, liaison_b = scope_of(session, world, 'liaison_a'), scope_of(session, world, 'liaison_b')
    assert open_task_ids(session, group_queue_clause(liaison_a)) == {task_a.id}
    assert open_task_ids(session, visible_open_tasks_clause(liaison_b)) == {task_b.id}
    assert liaison_a.can_claim(task_a) and not liaison_a.can_claim(task_b)
    assert not liaison_b.can_view_task(task_a)
    assert not scope_of(session, world, 'liaison_none').can_view_task(task_a)


@pytest.mark.parametrize(('username', 'sees_minor'), [('officer', True), ('chief', True), ('city_chief', False),
                                                      ('province_chief', False)])
def test_minor_task_hidden_above_the_county(session: Session, world: World, username: str, sees_minor: bool) -> None:
    scope = scope_of(session, world, username)
    minor = task_of(session, world.cases['minor'], 'receipt')
    adult = task_of(session, world.cases['adult'], 'receipt')
    shown = open_task_ids(session, visible_open_tasks_clause(scope))
    assert adult.id in shown
    assert (minor.id in shown) is sees_minor
    assert scope.can_view_task(minor) is sees_minor


def test_a_minors_tasks_carry_the_flag_the_wide_lists_filter_on(session: Session, world: World) -> None:
    # The city's and province's lists read HumanTask.is_minor, copied from the case when the task opens.
    flags = dict(session.execute(sa.select(HumanTask.case_id, HumanTask.is_minor).where(
        HumanTask.case_id.in_([world.cases['minor'].id, world.cases['adult'].id]))).tuples().all())
    assert flags == {world.cases['minor'].id: True, world.cases['adult'].id: False}


def test_the_migration_copies_the_flag_to_the_tasks_already_open(session: Session, world: World) -> None:
    rerun_migration(session, MINOR_FLAG_REVISION)
    minor = task_of(session, world.cases['minor'], 'receipt')
    assert minor.is_minor and not task_of(session, world.cases['adult'], 'receipt').is_minor


def test_minor_task_escalated_above_the_county_stays_out_of_that_queue(
        session: Session, world: World, clock: FrozenClock) -> None:
    for key in ('adult', 'minor'):
        task = task_of(session, world.cases[key], 'receipt')
        task.is_escalated, task.escalated_dt = True, clock.now()
        task.escalated_to_group, task.escalated_org_unit_id = 'supervisor', world.units['city'].id
        task.escalated_org_path = world.units['city'].path
        session.flush()
    session.commit()
    city_chief = scope_of(session, world, 'city_chief')
    escalated = keys(world, set(session.scalars(sa.select(HumanTask.case_id).where(
        escalation_queue_clause(city_chief)))))
    assert escalated == {'adult'}


def test_delegating_to_someone_who_may_not_read_the_case_is_refused(session: Session, world: World) -> None:
    officer = world.users['officer']
    task = task_of(session, world.cases['adult'], 'receipt')
    claim_task(session, task.id, actor=officer, scope=load_scope(session, officer))
    session.commit()
    with pytest.raises(ValidationFailed):
        delegate_task(session, task.id, world.users['health'].id, actor=officer, scope=load_scope(session, officer))
    session.rollback()
    after = task_of(session, world.cases['adult'], 'receipt')
    assert (after.assignee_id, after.delegation_state) == (officer.id, None)
