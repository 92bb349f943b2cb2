"""A web process to kill: completes one task through the real app, then stops at a chosen point and waits.

Run by tests/faults/test_killed_process.py as
``python -m tests.faults.child_complete <database url> <task id> <bearer token> <before_commit|after_commit>``.
At the point it prints one line, ``PAUSED {json}`` (what its own transaction sees there), and sleeps
until the parent SIGKILLs it. ``before_commit``: every statement of the completion has been sent —
the engine ran, the task row, the instance, the next tasks and the sealed audit rows are flushed —
and only COMMIT is missing. ``after_commit``: the commit is done and the response is not yet sent.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from config import TestConfig
from engine.models.audit import AuditEvent
from engine.models.tasks import HumanTask
from tests.faults.conftest import REGISTER
from web.app import create_app

#: longer than any test waits: the parent always kills first
PAUSE_SECONDS = 120


def _pause_before_commit(task_id: int) -> None:
    def hook(session: Session) -> None:
        if session.in_nested_transaction():
            return
        # Registered after the audit module's listener, so the events are already sealed and inserted;
        # flushing now sends the rest, leaving nothing but COMMIT.
        session.flush()
        seen = {
            'task_status': session.scalar(sa.select(HumanTask.status).where(HumanTask.id == task_id)),
            'completed_events': session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                                               .where(AuditEvent.kind == 'task.completed')),
        }
        _pause(seen)
    event.listen(Session, 'before_commit', hook)


def _pause_after_commit() -> None:
    event.listen(Session, 'after_commit', lambda session: _pause({}))


def _pause(seen: Mapping[str, object]) -> None:
    print('PAUSED', json.dumps(seen), flush=True)
    time.sleep(PAUSE_SECONDS)


def main(url: str, task_id: int, token: str, point: str) -> int:
    from engine.profiles import CaseProfile, register_profile
    from workflows.shared.id_numbers import id_number_field_problems
    app = create_app(TestConfig(url))  # registers the domain's profiles; the demo diagram's is the tests' own
    register_profile('demo_intake', CaseProfile(prefix='YS', start_field='received_on',
                                                validate=id_number_field_problems))
    if point == 'before_commit':
        _pause_before_commit(task_id)
    else:
        _pause_after_commit()
    response = app.test_client().post(f'/api/v1/tasks/{task_id}/complete', json={'data': REGISTER},
                                      headers={'Authorization': f'Bearer {token}'})
    print('FINISHED', response.status_code, flush=True)  # only if nobody killed it
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
