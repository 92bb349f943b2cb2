"""Load for the outage test: API clients completing the two tasks of demo cases, and a probe of /readyz.

Every request is recorded with when it was sent and answered, so the test can sort them into before,
during and after the outage. The clients retry a step until it succeeds: a 503 or a dropped connection
means "try again"; a 409 on a retry means an earlier, unanswered try had committed after all (the
connection died between COMMIT and its acknowledgement), which the test checks against the database.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.models.tasks import HumanTask

REGISTER = {'visit_count': 2, 'risk_level': 'high', 'findings': '走访属实，情况清楚'}
REVIEW = {'approved': True, 'review_opinion': '同意结案'}
#: the demo diagram's steps, the data each is completed with, and whose token completes it
STEPS = (('register', REGISTER, 'staff'), ('review', REVIEW, 'officer'))
HTTP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Call:
    """One HTTP request as the client saw it; ``status`` None for a connection error."""

    path: str
    sent: float
    done: float
    status: int | None
    body: str
    task_id: int | None = None


@dataclass
class CallLog:
    """Every call of every client, thread-safe."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)


def request(base: str, path: str, token: str, payload: object | None, log: CallLog,
            task_id: int | None = None) -> Call:
    """GET (no payload) or POST JSON to ``base + path`` with the bearer token; record and return the call."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(base + path, data=data, method='GET' if payload is None else 'POST',
                                 headers={'Authorization': f'Bearer {token}', 'Content-Type': 'application/json'})
    sent = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode(errors='replace')
    except (urllib.error.URLError, OSError) as exc:
        status, body = None, repr(exc)
    call = Call(path, sent, time.monotonic(), status, body, task_id)
    log.add(call)
    return call


class CaseClient(threading.Thread):
    """Completes both tasks of each of its cases through the API, one step at a time, paced.

    :param cases: the case ids to work through
    :param tokens: bearer tokens by role (``staff``, ``officer``)
    :param db_engine: a direct connection (not through the proxy): where the client looks up a step's task
    :param pace: seconds between two successful steps, so the load spans the outage
    :param deadline: ``time.monotonic()`` after which the client gives up
    """

    def __init__(self, base: str, cases: list[int], tokens: dict[str, str], db_engine: Engine, log: CallLog,
                 *, pace: float, deadline: float) -> None:
        super().__init__(daemon=True)
        self.base, self.cases, self.tokens, self.db_engine, self.log = base, cases, tokens, db_engine, log
        self.pace, self.deadline = pace, deadline
        self.finished: list[int] = []
        #: (task id, status) of every answer that was not a success, a 503 or a dropped connection
        self.surprises: list[tuple[int, int | None, str]] = []

    def run(self) -> None:
        for case_id in self.cases:
            if all(self._step(case_id, bpmn_id, data, role) for bpmn_id, data, role in STEPS):
                self.finished.append(case_id)

    def _step(self, case_id: int, bpmn_id: str, data: dict[str, object], role: str) -> bool:
        task_id, status = self._task(case_id, bpmn_id)
        while time.monotonic() < self.deadline:
            if status != 'open':
                return status == 'completed'  # by an earlier try whose answer was lost
            call = request(self.base, f'/api/v1/tasks/{task_id}/complete', self.tokens[role], {'data': data},
                           self.log, task_id)
            if call.status == 200:
                time.sleep(self.pace)
                return True
            if call.status not in (503, None, 409):
                self.surprises.append((task_id, call.status, call.body[:300]))
                return False
            time.sleep(0.05)
            status = self._task(case_id, bpmn_id)[1]
        return False

    def _task(self, case_id: int, bpmn_id: str) -> tuple[int, str]:
        with self.db_engine.connect() as conn:
            row = conn.execute(sa.select(HumanTask.id, HumanTask.status)
                               .where(HumanTask.case_id == case_id, HumanTask.bpmn_id == bpmn_id)
                               .order_by(HumanTask.id.desc()).limit(1)).one()
        return row.id, row.status


class Prober(threading.Thread):
    """Polls ``/readyz`` and a task list (a read through the whole app) until stopped."""

    def __init__(self, base: str, token: str, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.interval = base, token, interval
        self.readiness = CallLog()
        self.reads = CallLog()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            request(self.base, '/readyz', self.token, None, self.readiness)
            request(self.base, '/api/v1/tasks?view=group', self.token, None, self.reads)
            self.stop.wait(self.interval)
