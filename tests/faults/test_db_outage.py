"""PostgreSQL goes away for a few seconds while gunicorn and a worker are under load, then comes back.

PostgreSQL only. gunicorn (``wsgi:app``, two threaded workers) and ``flask --app wsgi worker`` reach the
database through a TCP proxy (tests/faults/db_proxy.py) that the test cuts for :data:`OUTAGE_SECONDS`:
every established connection dies under its owner and new ones are refused, as in a server restart,
without restarting the cluster other tests share. Meanwhile API clients complete the two tasks of many
cases and timer jobs fall due, some before the cut and some during it.

What must hold: during the outage every answer is a 503 in the API's JSON error shape (or, never seen
in practice, a dropped connection), never a 500 or a stack trace, and /readyz says 503; afterwards the
same processes answer again without a restart; every case ends exactly as an undisturbed one does (same
audit events, revision, tasks), the audit chain verifies, and every due job fired exactly once.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from config import TestConfig as AppConfig
from engine import runtime
from engine.audit import verify_chain
from engine.clock import FrozenClock
from engine.db import create_db_engine, create_session_factory
from engine.directory import issue_token
from engine.models.audit import AuditEvent
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import Worker
from tests.faults import servers
from tests.faults.conftest import DEMO, START, OpenTask
from tests.faults.db_proxy import DbProxy
from tests.faults.load import STEPS, Call, CallLog, CaseClient, Prober, request
from tests.fixtures.directory import PASSWORD, Org
from tests.fixtures.web import csrf_token, form_tokens
from web.app import create_app

pytestmark = pytest.mark.postgres

TIMER = 'tests/engine/bpmn/timer_intermediate.bpmn'
BEIJING = ZoneInfo('Asia/Shanghai')
CASES = 30
CLIENTS = 6
#: timer cases whose job is due before the cut, and ones made due while the database is away
TIMERS_BEFORE = 6
TIMERS_DURING = 6
WARM_UP_SECONDS = 1.5
OUTAGE_SECONDS = 2.5
#: a request sent this long after the cut (or the restore) sees the new state of the link
SETTLE_SECONDS = 0.2
#: every request sent this long after the restore must succeed
RECOVERY_SECONDS = 1.0
#: the worker's back-off (1 s doubling) must bring it back within this after the restore
JOBS_TIMEOUT = 20.0
CLIENT_TIMEOUT = 40.0


@dataclass(frozen=True)
class Outage:
    """When the link was cut and restored (``time.monotonic()``)."""

    cut: float
    restored: float

    def during(self, call: Call) -> bool:
        return call.sent >= self.cut + SETTLE_SECONDS and call.done <= self.restored

    def after(self, call: Call) -> bool:
        return call.sent >= self.restored + RECOVERY_SECONDS


def _start_cases(session: Session, org: Org, actor: User, key: str, count: int,
                 data: Mapping[str, object]) -> list[int]:
    ids = []
    for _ in range(count):
        case, _ = runtime.start_case(session, key, data, actor=actor, org_unit=org.township)
        ids.append(case.id)
    session.commit()
    return ids


def _timer_jobs(session: Session, case_ids: list[int]) -> list[int]:
    return list(session.scalars(sa.select(Job.id).join(ProcessInstance, ProcessInstance.id == Job.instance_id)
                                .where(ProcessInstance.case_id.in_(case_ids), Job.kind == 'timer')
                                .order_by(Job.id)))


def _set_due(db_engine: Engine, job_ids: list[int], due: list[datetime]) -> None:
    with db_engine.begin() as conn:
        for job_id, when in zip(job_ids, due, strict=True):
            conn.execute(sa.update(Job).where(Job.id == job_id).values(due_dt=when))


@dataclass(frozen=True)
class CaseState:
    """What a case's history left behind."""

    events: dict[str, int]
    revision: int
    status: str
    tasks: dict[tuple[str, str], int]


def _case_state(session: Session, case_id: int) -> CaseState:
    """Audit events by kind, the instance's revision and status, its tasks by step and state."""
    kinds = Counter(session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.case_id == case_id)))
    instance = session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case_id)).one()
    tasks = Counter(session.execute(sa.select(HumanTask.bpmn_id, HumanTask.status)
                                    .where(HumanTask.case_id == case_id)).tuples())
    return CaseState(dict(kinds), instance.revision, instance.status, dict(tasks))


def _differences(expected: CaseState, differing: dict[int, CaseState]) -> str:
    return '; '.join(f'case {case_id} {name}: {got} (expected {want})' for case_id, state in differing.items()
                     for name, want in vars(expected).items() if (got := getattr(state, name)) != want)


def _complete_reference(base: str, session: Session, case_id: int, tokens: dict[str, str]) -> None:
    """Complete one case through the API with the database up: what every other case must end as."""
    log = CallLog()
    for bpmn_id, data, role in STEPS:
        task_id = session.scalars(sa.select(HumanTask.id).where(HumanTask.case_id == case_id,
                                                                HumanTask.bpmn_id == bpmn_id)).one()
        call = request(base, f'/api/v1/tasks/{task_id}/complete', tokens[role], {'data': data}, log)
        assert call.status == 200, call.body


def _wait_for_jobs(db_engine: Engine, job_ids: list[int], log: Path) -> float:
    deadline = time.monotonic() + JOBS_TIMEOUT
    while time.monotonic() < deadline:
        with Session(db_engine) as s:
            pending = s.scalar(sa.select(sa.func.count()).where(Job.id.in_(job_ids), Job.status == 'pending'))
        if not pending:
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f'due jobs still pending long after the database came back: '
                         f'{log.read_text(errors="replace")[-4000:]}')


def _cut_and_restore(proxy: DbProxy, db_engine: Engine, during_jobs: list[int]) -> Outage:
    """Make the ``during`` jobs due inside the outage window, cut the link, wait, restore it."""
    start = datetime.now(UTC)
    _set_due(db_engine, during_jobs, [start + timedelta(seconds=0.3 + 0.3 * i) for i in range(len(during_jobs))])
    cut = time.monotonic()
    proxy.cut()
    time.sleep(OUTAGE_SECONDS)
    proxy.restore()
    return Outage(cut, time.monotonic())


def _assert_clean_failures(calls: list[Call], outage: Outage) -> Counter[int | None]:
    """No 500, no stack trace; 503s in the JSON error shape; only 503s or dropped connections in the outage."""
    for call in calls:
        assert call.status in (200, 409, 503, None), (call.status, call.body[:500])
        assert 'Traceback' not in call.body and 'psycopg' not in call.body and '127.0.0.1' not in call.body
        if call.status == 503:
            body = json.loads(call.body)
            assert body['error'] == 'service_unavailable' and body['fields'] == {}, body
            assert body['message'] == '数据库暂时无法访问，请稍后重试。'
    during = Counter(call.status for call in calls if outage.during(call))
    assert during and set(during) <= {503, None}, during
    return during


def _assert_in_doubt_only(calls: list[Call]) -> None:
    """A 409 is only ever the retry of a task whose earlier try went unanswered (and had committed)."""
    failed_before: set[int] = set()
    for call in sorted(calls, key=lambda c: c.sent):
        if call.status == 409:
            assert call.task_id in failed_before, call
        if call.status in (503, None) and call.task_id is not None:
            failed_before.add(call.task_id)


def _recovery(calls: list[Call], outage: Outage) -> float:
    """Seconds from the restore to the first success; every call sent a little later succeeded."""
    late = [call for call in calls if outage.after(call)]
    assert late and all(call.status in (200, 409) for call in late), Counter(c.status for c in late)
    first = min(call.done for call in calls if call.sent >= outage.restored and call.status == 200)
    return first - outage.restored


def test_database_outage_under_load(session: Session, db_engine: Engine, org: Org, staff: dict[str, User],
                                    clock: FrozenClock, deploy_file: Callable[[str], object],
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deploy_file(DEMO)
    deploy_file(TIMER)
    timer_cases = _start_cases(session, org, staff['staff'], 'timer_intermediate', TIMERS_BEFORE + TIMERS_DURING, {})
    clock.advance(datetime.now(UTC) - clock.now())  # from here on the servers' real clock
    # Received today: their deadlines (and reminders, escalations) lie a year ahead, out of the worker's way.
    received = {**START, 'received_on': clock.now().astimezone(BEIJING).date().isoformat()}
    reference, *cases = _start_cases(session, org, staff['staff'], 'demo_intake', CASES + 1, received)
    jobs = _timer_jobs(session, timer_cases)
    during_jobs = jobs[TIMERS_BEFORE:]
    # Due on 2025-09-29 by the frozen clock (so long due for the worker's real clock); the "during" ones
    # wait until the test makes them due inside the outage window.
    _set_due(db_engine, during_jobs, [datetime(2099, 1, 1, tzinfo=UTC)] * len(during_jobs))
    tokens = {role: issue_token(session, staff[role]) for role in ('staff', 'officer')}
    session.commit()

    upstream = make_url(db_engine.url)
    with DbProxy((upstream.host or '127.0.0.1', upstream.port or 5432)) as proxy:
        url = proxy.url_for(db_engine.url.render_as_string(hide_password=False))
        with servers.gunicorn(url, tmp_path, tmp_path / 'gunicorn.log') as base, \
                servers.worker(url, tmp_path, tmp_path / 'worker.log', 'outage-worker') as worker:
            _complete_reference(base, session, reference, tokens)
            log = CallLog()
            deadline = time.monotonic() + CLIENT_TIMEOUT
            clients = [CaseClient(base, cases[i::CLIENTS], tokens, db_engine, log, pace=0.25, deadline=deadline)
                       for i in range(CLIENTS)]
            prober = Prober(base, tokens['staff'])
            for thread in (*clients, prober):
                thread.start()
            time.sleep(WARM_UP_SECONDS)
            outage = _cut_and_restore(proxy, db_engine, during_jobs)
            for client in clients:
                client.join(CLIENT_TIMEOUT)
            jobs_done = _wait_for_jobs(db_engine, jobs, tmp_path / 'worker.log')
            prober.stop.set()
            prober.join(10)
            # The same processes served throughout: nothing restarted them.
            assert worker.poll() is None
            boots = (tmp_path / 'gunicorn.log').read_text().count('Booting worker')
            assert boots == 2, (tmp_path / 'gunicorn.log').read_text()[-3000:]

    calls = log.snapshot()
    assert all(not c.surprises for c in clients), [c.surprises for c in clients]
    assert sorted(case for c in clients for case in c.finished) == sorted(cases)
    during = _assert_clean_failures(calls + prober.reads.snapshot(), outage)
    _assert_in_doubt_only(calls)
    recovered = _recovery(calls, outage)

    # /readyz: 200 before, 503 while the database is away, 200 again once it is back.
    probes = prober.readiness.snapshot()
    assert {c.status for c in probes if c.done < outage.cut} == {200}
    assert {c.status for c in probes if outage.during(c)} == {503}
    assert {c.status for c in probes if outage.after(c)} == {200}

    # Every case ended exactly as the undisturbed reference did: nothing half-written, nothing twice.
    session.expire_all()
    expected = _case_state(session, reference)
    assert expected.status == 'completed'
    differing = {case_id: state for case_id in cases if (state := _case_state(session, case_id)) != expected}
    assert not differing, _differences(expected, differing)
    # Every job due before or during the outage fired exactly once: one follow-up task, one job done.
    for case_id in timer_cases:
        state = _case_state(session, case_id)
        assert state.tasks == {('follow_up', 'open'): 1} and state.events['task.created'] == 1
    assert set(session.scalars(sa.select(Job.status).where(Job.id.in_(jobs)))) == {'done'}
    report = verify_chain(session)
    assert report.ok, report

    with capsys.disabled():
        in_doubt = sum(call.status == 409 for call in calls)
        print(f'\noutage {OUTAGE_SECONDS}s: {len(calls)} completion calls, during the outage {dict(during)}, '
              f'{in_doubt} retries found their task done; '
              f'first success {recovered:.2f}s after the restore; jobs done {jobs_done - outage.restored:.2f}s '
              f'after it; {len(jobs)} jobs fired once; readiness probes {len(probes)} '
              f'(median {statistics.median(c.done - c.sent for c in probes) * 1000:.0f} ms)')


def test_a_worker_whose_batch_the_outage_cut_short_runs_the_rest_at_once(
        session: Session, db_engine: Engine, org: Org, staff: dict[str, User], clock: FrozenClock,
        deploy_file: Callable[[str], object]) -> None:
    deploy_file(TIMER)
    timer_cases = _start_cases(session, org, staff['staff'], 'timer_intermediate', 4, {})
    jobs = _timer_jobs(session, timer_cases)
    clock.advance(timedelta(days=3, minutes=1))
    upstream = make_url(db_engine.url)
    with DbProxy((upstream.host or '127.0.0.1', upstream.port or 5432)) as proxy:
        worker_engine = create_db_engine(proxy.url_for(db_engine.url.render_as_string(hide_password=False)))
        worker = Worker(create_session_factory(worker_engine), name='cut-short', batch_size=10)
        commits: list[Session] = []

        def cut_after_the_first_job(committed: Session) -> None:
            bind = committed.get_bind()
            if bind is worker_engine or getattr(bind, 'engine', None) is worker_engine:
                commits.append(committed)
                if len(commits) == 2:  # the claim, then the first job: the rest of the batch is left claimed
                    proxy.cut()

        event.listen(Session, 'after_commit', cut_after_the_first_job)
        try:
            with pytest.raises(DBAPIError):
                worker.run_once()
        finally:
            event.remove(Session, 'after_commit', cut_after_the_first_job)
        proxy.restore()
        # The three jobs still carry this worker's lock (for 300 s); they are its own to run now.
        assert worker.run_once() == 3
        worker_engine.dispose()
    session.expire_all()
    assert set(session.scalars(sa.select(Job.status).where(Job.id.in_(jobs)))) == {'done'}
    for case_id in timer_cases:
        assert _case_state(session, case_id).tasks == {('follow_up', 'open'): 1}


def test_a_browser_gets_the_error_page_while_the_database_is_away(
        db_engine: Engine, staff: dict[str, User], open_task: OpenTask) -> None:
    upstream = make_url(db_engine.url)
    with DbProxy((upstream.host or '127.0.0.1', upstream.port or 5432)) as proxy:
        app = create_app(AppConfig(proxy.url_for(db_engine.url.render_as_string(hide_password=False))))
        browser = app.test_client()
        assert browser.post('/login', data={'username': 'staff', 'password': PASSWORD,
                                            'csrf_token': csrf_token(browser)}).status_code == 302
        tokens = form_tokens(browser, f'/tasks/{open_task.task_id}')
        proxy.cut()
        # Loading the logged-in user is the first thing that fails: the page shows as to a visitor.
        for response in (browser.get('/tasks'),
                         browser.post(f'/tasks/{open_task.task_id}', data={**tokens, 'visit_count': '2'})):
            body = response.get_data(as_text=True)
            assert response.status_code == 503, body[:2000]
            assert '数据库暂时无法访问，请稍后重试。' in body and 'Traceback' not in body
        proxy.restore()
        assert browser.get('/tasks').status_code == 200  # still logged in: the outage ended no session
        app.extensions['fengqiao_db_engine'].dispose()
