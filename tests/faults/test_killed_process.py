"""A web process killed mid-completion: the task is completed with all its effects, or not at all.

PostgreSQL only. A child process (tests/faults/child_complete.py) completes a task through the real app
and the API, and stops at a chosen point; the parent SIGKILLs it there. Killed before COMMIT — after the
engine ran and every statement, audit rows included, was sent — nothing of the completion remains and
completing it again works, once. Killed just after COMMIT, every effect is there.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.access import load_scope
from engine.directory import issue_token
from engine.errors import Conflict
from engine.models.users import User
from engine.runtime import complete_task
from tests.faults.conftest import REGISTER, OpenTask, snapshot

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
#: how long the child may take to start the app and reach the pause
REACH_TIMEOUT = 20.0


def _token(session: Session, user: User) -> str:
    token = issue_token(session, user)
    session.commit()
    return token


def kill_at(point: str, db_engine: Engine, task_id: int, token: str) -> dict[str, Any]:
    """Run the child to ``point``, SIGKILL it there and return what its transaction saw at that point."""
    url = db_engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen([sys.executable, '-m', 'tests.faults.child_complete', url, str(task_id), token, point],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _read_line(child, REACH_TIMEOUT)
        assert line.startswith('PAUSED '), line
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
        seen: dict[str, Any] = json.loads(line.removeprefix('PAUSED '))
        return seen
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def _read_line(child: subprocess.Popen[str], timeout: float) -> str:
    assert child.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([child.stdout], [], [], 0.1)
        if ready:
            return child.stdout.readline().strip()
        if child.poll() is not None:
            break
    child.kill()
    _, err = child.communicate()
    pytest.fail(f'the child never reached its pause: {err[-2000:]}')


def test_killed_before_commit_leaves_the_task_open_and_nothing_of_the_completion(
        session: Session, db_engine: Engine, staff: dict[str, User], open_task: OpenTask) -> None:
    before = snapshot(db_engine, open_task)
    seen = kill_at('before_commit', db_engine, open_task.task_id, _token(session, staff['staff']))
    # Inside its transaction the child had done everything: the kill came after the engine ran.
    assert seen == {'task_status': 'completed', 'completed_events': 1}
    after = snapshot(db_engine, open_task)
    assert after.task_status == 'open' and after.completed_by_id is None
    assert after.open_tasks == ('register',)  # no next task
    assert after.revision == before.revision
    assert 'task.completed' not in after.events and after.events == before.events
    assert after.chain_ok and after.chain_checked == before.chain_checked
    # The killed backend's locks are gone: completing it normally works, once.
    actor = staff['staff2']
    complete_task(session, open_task.task_id, REGISTER, actor=actor, scope=load_scope(session, actor))
    session.commit()
    with pytest.raises(Conflict):
        complete_task(session, open_task.task_id, REGISTER, actor=actor, scope=load_scope(session, actor))
    session.rollback()
    done = snapshot(db_engine, open_task)
    assert done.task_status == 'completed' and done.completed_by_id == actor.id
    assert done.open_tasks == ('review',) and done.revision == before.revision + 1
    assert done.events.get('task.completed') == 1 and done.chain_ok


def test_killed_after_commit_keeps_every_effect(session: Session, db_engine: Engine, staff: dict[str, User],
                                                open_task: OpenTask) -> None:
    before = snapshot(db_engine, open_task)
    kill_at('after_commit', db_engine, open_task.task_id, _token(session, staff['staff']))
    after = snapshot(db_engine, open_task)
    assert after.task_status == 'completed' and after.completed_by_id == staff['staff'].id
    assert after.open_tasks == ('review',)
    assert after.revision == before.revision + 1
    added = {kind: n - before.events.get(kind, 0) for kind, n in after.events.items() if n != before.events.get(kind)}
    assert added == {'task.completed': 1, 'task.created': 1}  # the completion and the next task, both there
    assert after.chain_ok and after.chain_checked == before.chain_checked + 2
    # The client never saw the response; its retry is refused and changes nothing.
    actor = staff['staff']
    with pytest.raises(Conflict):
        complete_task(session, open_task.task_id, REGISTER, actor=actor, scope=load_scope(session, actor))
    session.rollback()
    assert snapshot(db_engine, open_task) == after
