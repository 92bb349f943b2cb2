"""Fixtures of the fault tests: township staff, a demo case waiting at its first task, and what to compare.

The fault tests run on PostgreSQL only (row locks, real concurrent sessions, a backend that dies with
its client), so each module marks itself ``postgres``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine import runtime
from engine.audit import verify_chain
from engine.models.audit import AuditEvent
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试案件',
         'id_number': '431381198503120015'}
REGISTER = {'visit_count': 2, 'risk_level': 'high', 'findings': '走访属实，情况清楚'}
#: how long a held commit waits for the rival command to queue on a lock before giving up
LOCK_WAIT_TIMEOUT = 10.0


@pytest.fixture
def staff(org: Org, create_member: Callable[..., User]) -> dict[str, User]:
    """Two township staff (candidates of the demo's first task) and the county officer who reviews."""
    return {
        'staff': create_member('staff', 'township_staff', org.township, display_name='刘晓燕'),
        'staff2': create_member('staff2', 'township_staff', org.township, display_name='王芳'),
        'officer': create_member('officer', 'county_officer', org.county, display_name='曾志强'),
    }


@dataclass(frozen=True)
class OpenTask:
    """A demo case waiting, unclaimed, at ``register``: ids only, so any session can load them."""

    case_id: int
    instance_id: int
    task_id: int


@pytest.fixture
def open_task(session: Session, org: Org, staff: dict[str, User],
              deploy_file: Callable[[str], object]) -> OpenTask:
    deploy_file(DEMO)
    case, tasks = runtime.start_case(session, 'demo_intake', START, actor=staff['staff'], org_unit=org.township)
    session.commit()
    (task,) = tasks
    return OpenTask(case.id, task.instance_id, task.id)


@dataclass(frozen=True)
class Snapshot:
    """What a completion changes, read fresh from the database."""

    task_status: str
    completed_by_id: int | None
    open_tasks: tuple[str, ...]
    revision: int
    events: dict[str, int]
    chain_ok: bool
    chain_checked: int


def snapshot(db_engine: Engine, target: OpenTask) -> Snapshot:
    """Read the task, the instance's open tasks, its revision and the audit log in a new session."""
    with Session(db_engine) as s:
        task = s.get(HumanTask, target.task_id)
        assert task is not None
        open_tasks = s.scalars(sa.select(HumanTask.bpmn_id).where(HumanTask.instance_id == target.instance_id,
                                                                   HumanTask.status == 'open')
                               .order_by(HumanTask.id)).all()
        revision = s.scalar(sa.select(ProcessInstance.revision).where(ProcessInstance.id == target.instance_id))
        counts = s.execute(sa.select(AuditEvent.kind, sa.func.count()).group_by(AuditEvent.kind)).all()
        events = {kind: number for kind, number in counts}
        report = verify_chain(s)
        return Snapshot(task.status, task.completed_by_id, tuple(open_tasks), revision or 0, events,
                        report.ok, report.checked)


def lock_waiters(db_engine: Engine) -> int:
    """How many other backends of this database wait for a row or table lock right now."""
    with db_engine.connect() as conn:
        return conn.scalar(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")) or 0


class CommitHold:
    """Hold the first commit of any session until another backend queues on a lock behind it.

    This makes a race certain rather than likely: the first command has done everything but commit,
    the second is provably inside its own transaction waiting for the first one's locks.
    """

    def __init__(self, db_engine: Engine) -> None:
        self._engine = db_engine
        self._claimed = threading.Lock()
        self.saw_waiter = False
        self.held = threading.Event()

    def __call__(self, session: Session) -> None:
        if session.in_nested_transaction() or not self._claimed.acquire(blocking=False):
            return  # only the first commit is held; the rival's own commit goes straight through
        self.held.set()
        deadline = time.monotonic() + LOCK_WAIT_TIMEOUT
        while time.monotonic() < deadline:
            if lock_waiters(self._engine):
                self.saw_waiter = True
                return
            time.sleep(0.02)


@contextmanager
def holding_first_commit(db_engine: Engine) -> Iterator[CommitHold]:
    """Install a :class:`CommitHold` on every session of this process (after the test's set-up commits)."""
    hold = CommitHold(db_engine)
    event.listen(Session, 'before_commit', hold)
    try:
        yield hold
    finally:  # a failing test must not leave every later session's commit held
        event.remove(Session, 'before_commit', hold)
