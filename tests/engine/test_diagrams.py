"""The diagram marks of a running instance: completed steps, where it stands, the flows taken.

Each step is driven through the engine's commands and the diagram is read from the stored state in a
fresh session, as a request reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.clock import FrozenClock
from engine.definitions import deploy
from engine.diagrams import ActiveStep, InstanceDiagram, instance_diagram, step_times
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.fixtures.engine import ROOT

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
PATHS = 'tests/engine/bpmn/diagram_paths.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试'}
REGISTER = {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实'}


def _start(session: Session, key: str, data: Mapping[str, object], staff: User,
           org: Org) -> tuple[int, list[HumanTask]]:
    case, tasks = runtime.start_case(session, key, data, actor=staff, org_unit=org.township)
    session.commit()
    return _instance_of(session, case).id, tasks


def _instance_of(session: Session, case: Case) -> ProcessInstance:
    return session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)).one()


def _complete(session: Session, task: HumanTask, data: Mapping[str, object], user: User) -> list[HumanTask]:
    _, tasks = runtime.complete_task(session, task.id, data, actor=user, scope=load_scope(session, user))
    session.commit()
    return tasks


def _diagram(session_factory: sessionmaker[Session], instance_id: int) -> InstanceDiagram:
    with session_factory() as fresh:
        instance = fresh.get(ProcessInstance, instance_id)
        assert instance is not None
        return instance_diagram(fresh, instance)


@pytest.fixture
def demo(session: Session, org: Org, people: dict[str, User],
         deploy_file: Callable[[str], ProcessDefinition]) -> tuple[int, list[HumanTask]]:
    deploy_file(DEMO)
    return _start(session, 'demo_intake', START, people['staff'], org)


def test_demo_marks_follow_every_step_and_the_loop_back(session: Session, session_factory: sessionmaker[Session],
                                                        demo: tuple[int, list[HumanTask]],
                                                        people: dict[str, User]) -> None:
    instance_id, [register] = demo
    diagram = _diagram(session_factory, instance_id)
    assert diagram.completed == {'start': 1}
    assert diagram.active == (ActiveStep('register', '登记案件情况', 'user_task'),)
    assert diagram.flows == ('flow_start_register',)

    [review] = _complete(session, register, REGISTER, people['staff'])
    diagram = _diagram(session_factory, instance_id)
    assert diagram.completed == {'start': 1, 'register': 1}
    assert diagram.active_ids == ['review']
    assert diagram.flows == ('flow_register_review', 'flow_start_register')

    [again] = _complete(session, review, {'approved': 'false', 'review_opinion': '补充材料'}, people['officer'])
    diagram = _diagram(session_factory, instance_id)
    assert diagram.completed == {'start': 1, 'register': 1, 'review': 1, 'approved_gateway': 1}
    assert diagram.active_ids == ['register']
    assert set(diagram.flows) == {'flow_start_register', 'flow_register_review', 'flow_review_gateway',
                                  'flow_rejected'}

    [review] = _complete(session, again, REGISTER, people['staff'])
    assert _diagram(session_factory, instance_id).completed['register'] == 2
    assert _complete(session, review, {'approved': 'true', 'review_opinion': '同意'}, people['officer']) == []
    diagram = _diagram(session_factory, instance_id)
    assert diagram.completed == {'start': 1, 'register': 2, 'review': 2, 'approved_gateway': 2, 'end_approved': 1}
    assert diagram.active == ()
    assert 'flow_approved' in diagram.flows and 'flow_rejected' in diagram.flows


def test_reading_the_diagram_changes_nothing(session: Session, session_factory: sessionmaker[Session],
                                             demo: tuple[int, list[HumanTask]]) -> None:
    instance_id, _ = demo
    before = session.get(ProcessInstance, instance_id)
    assert before is not None
    revision, state = before.revision, before.state
    with session_factory() as fresh:
        instance = fresh.get(ProcessInstance, instance_id)
        assert instance is not None
        instance_diagram(fresh, instance)
        assert not fresh.dirty and not fresh.new
        fresh.commit()
    session.expire_all()
    after = session.get(ProcessInstance, instance_id)
    assert after is not None and after.revision == revision and after.state == state


def test_the_xml_is_the_version_the_instance_runs(session: Session, session_factory: sessionmaker[Session],
                                                  demo: tuple[int, list[HumanTask]]) -> None:
    instance_id, _ = demo
    source = (ROOT / DEMO).read_text(encoding='utf-8')
    newer, created = deploy(session, source.replace('审核通过', '审核通过（新版）'), actor=None, accept_warnings=True)
    session.commit()
    assert created and newer.version == 2
    assert _diagram(session_factory, instance_id).xml == source


def test_subprocess_parallel_branches_and_timers(session: Session, session_factory: sessionmaker[Session],
                                                 org: Org, people: dict[str, User], clock: FrozenClock,
                                                 deploy_file: Callable[[str], ProcessDefinition]) -> None:
    deploy_file(PATHS)
    instance_id, tasks = _start(session, 'diagram_paths', {}, people['staff'], org)
    diagram = _diagram(session_factory, instance_id)
    assert {(s.bpmn_id, s.kind) for s in diagram.active} == {
        ('collect', 'subprocess'), ('gather', 'user_task'), ('notify', 'user_task'), ('remind', 'timer')}
    assert diagram.completed == {'start': 1, 'split': 1, 'collect_start': 1}
    assert set(diagram.flows) == {'f_start', 'f_to_collect', 'f_to_notify', 's1'}

    by_id = {t.bpmn_id: t for t in tasks}
    _complete(session, by_id['notify'], {}, people['staff'])
    diagram = _diagram(session_factory, instance_id)
    # The join waits for the other branch: the branch still open is where the case stands.
    assert set(diagram.active_ids) == {'collect', 'gather'}
    assert diagram.completed['notify'] == 1 and 'remind' not in diagram.completed
    assert 'f_notify_join' in diagram.flows and 'f_remind' not in diagram.flows

    assert _complete(session, by_id['gather'], {}, people['staff']) == []
    diagram = _diagram(session_factory, instance_id)
    assert diagram.active == ()
    assert diagram.completed == {'start': 1, 'split': 1, 'collect_start': 1, 'gather': 1, 'collect_end': 1,
                                 'collect': 1, 'notify': 1, 'join': 1, 'end': 1}
    # Both arrivals at the join count, though SpiffWorkflow cancels the first one when the join fires.
    assert set(diagram.flows) == {'f_start', 'f_to_collect', 'f_to_notify', 's1', 's2', 'f_collect_join',
                                  'f_notify_join', 'f_end'}


def test_an_event_based_gateway_waits_on_its_timer(session: Session, session_factory: sessionmaker[Session],
                                                   org: Org, people: dict[str, User],
                                                   deploy_file: Callable[[str], ProcessDefinition]) -> None:
    deploy_file('tests/engine/bpmn/timer_event_gateway.bpmn')
    instance_id, tasks = _start(session, 'timer_event_gateway', {}, people['staff'], org)
    assert tasks == []
    assert _diagram(session_factory, instance_id).active == (ActiveStep('await', '三日或撤回', 'timer'),)


def test_time_spent_per_step_adds_up_every_pass(session: Session, session_factory: sessionmaker[Session],
                                                clock: FrozenClock, org: Org, people: dict[str, User],
                                                deploy_file: Callable[[str], ProcessDefinition]) -> None:
    deploy_file(DEMO)
    instance_id, [register] = _start(session, 'demo_intake', START, people['staff'], org)
    clock.advance(timedelta(hours=2))
    [review] = _complete(session, register, REGISTER, people['staff'])
    clock.advance(timedelta(days=1))
    [again] = _complete(session, review, {'approved': 'false', 'review_opinion': '补充材料'}, people['officer'])
    clock.advance(timedelta(minutes=30))
    _complete(session, again, REGISTER, people['staff'])
    clock.advance(timedelta(hours=3))
    times = {t.bpmn_id: t for t in _diagram(session_factory, instance_id).times}
    assert list(times) == ['register', 'review']  # in the order first reached
    first = times['register']
    assert (first.name, first.kind, first.passes, first.is_open) == ('登记案件情况', 'user_task', 2, False)
    assert first.seconds == (2 * 60 + 30) * 60 and first.ended_dt == clock.now() - timedelta(hours=3)
    second = times['review']
    assert (second.passes, second.is_open, second.ended_dt) == (2, True, None)
    assert second.seconds == (24 + 3) * 3600  # the open pass counts up to now


def test_time_spent_waiting_on_a_timer(session: Session, clock: FrozenClock, org: Org, people: dict[str, User],
                                       deploy_file: Callable[[str], ProcessDefinition]) -> None:
    deploy_file('tests/engine/bpmn/timer_intermediate.bpmn')
    case, _ = runtime.start_case(session, 'timer_intermediate', {}, actor=people['staff'], org_unit=org.township)
    session.commit()
    clock.advance(timedelta(minutes=20))
    [timer] = step_times(session, _instance_of(session, case))
    assert (timer.bpmn_id, timer.name, timer.kind, timer.passes) == ('wait_3d', '等待三日', 'timer', 1)
    assert timer.is_open and timer.seconds == 20 * 60
