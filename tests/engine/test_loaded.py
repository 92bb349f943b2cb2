"""Workflows kept between commands (``engine.loaded``): reused only at the revision they were committed with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.errors import ValidationFailed
from engine.loaded import loaded_workflows
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试'}
REGISTER = {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实'}


@pytest.fixture(autouse=True)
def _empty() -> Iterator[None]:
    loaded_workflows.clear()
    yield
    loaded_workflows.clear()


@pytest.fixture
def restores(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The instance ids restored from their stored state, in order."""
    seen: list[int] = []
    original = runtime.load_state

    def counting(state: dict[str, Any], *args: Any) -> Any:
        seen.append(state['root'])
        return original(state, *args)

    monkeypatch.setattr(runtime, 'load_state', counting)
    return seen


@pytest.fixture
def started(session: Session, org: Org, people: dict[str, User],
            deploy_file: Callable[[str], object]) -> tuple[Case, HumanTask]:
    deploy_file(DEMO)
    case, tasks = runtime.start_case(session, 'demo_intake', START, actor=people['staff'], org_unit=org.township)
    session.commit()
    return case, tasks[0]


def _complete(session: Session, task_id: int, data: dict[str, object], user: User) -> list[HumanTask]:
    _, tasks = runtime.complete_task(session, task_id, data, actor=user, scope=load_scope(session, user))
    session.commit()
    return tasks


def test_the_next_command_reuses_the_committed_workflow(session: Session, started: tuple[Case, HumanTask],
                                                        people: dict[str, User], restores: list[int]) -> None:
    _, task = started
    review = _complete(session, task.id, REGISTER, people['staff'])
    _complete(session, review[0].id, {'approved': 'false', 'review_opinion': '补充材料'}, people['officer'])
    assert restores == [] and loaded_workflows.hits == 2
    # What was reused is what a restore gives: the stored state says the same as the kept workflow.
    instance = session.scalars(sa.select(ProcessInstance)).one()
    kept = loaded_workflows.take(instance)
    assert kept is not None
    assert runtime.dump_state(kept) == instance.state


def test_a_failed_command_leaves_nothing_to_reuse(session: Session, started: tuple[Case, HumanTask],
                                                  people: dict[str, User], restores: list[int]) -> None:
    _, task = started
    with pytest.raises(ValidationFailed):
        _complete(session, task.id, {'visit_count': 'many'}, people['staff'])
    session.rollback()
    assert len(loaded_workflows) == 0
    review = _complete(session, task.id, REGISTER, people['staff'])
    assert len(restores) == 1 and [t.bpmn_id for t in review] == ['review']


def test_a_revision_written_elsewhere_is_restored_from_the_database(session: Session, started: tuple[Case, HumanTask],
                                                                    people: dict[str, User],
                                                                    restores: list[int]) -> None:
    _, task = started
    # Another process moved the instance on: its revision is no longer the one the kept workflow was saved at.
    session.execute(sa.update(ProcessInstance).values(revision=ProcessInstance.revision + 1))
    session.commit()
    review = _complete(session, task.id, REGISTER, people['staff'])
    assert len(restores) == 1 and loaded_workflows.misses == 1 and [t.bpmn_id for t in review] == ['review']


def test_a_command_on_a_kept_workflow_does_not_read_the_state(session: Session, started: tuple[Case, HumanTask],
                                                               people: dict[str, User], restores: list[int]) -> None:
    _, task = started
    session.expunge_all()  # what the next request's session holds: nothing
    statements: list[str] = []
    engine = session.get_bind()

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, 'before_cursor_execute', note)
    try:
        review = _complete(session, task.id, REGISTER, people['staff'])
    finally:
        sa.event.remove(engine, 'before_cursor_execute', note)
    assert restores == [] and [t.bpmn_id for t in review] == ['review']
    reads = [s for s in statements if s.lstrip().upper().startswith('SELECT') and 'process_instances' in s]
    assert reads and not any('process_instances.state' in s for s in reads)
    # The state was written all the same: it is what the kept workflow says.
    instance = session.get(ProcessInstance, task.instance_id)
    kept = loaded_workflows.take(instance) if instance is not None else None
    assert kept is not None
    assert runtime.dump_state(kept) == session.scalars(sa.select(ProcessInstance.state)).one()
