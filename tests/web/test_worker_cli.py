"""``flask --app wsgi worker`` and ``serve``: the worker as the operator starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from engine import runtime
from engine.clock import FrozenClock
from engine.models.definitions import ProcessDefinition
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from tests.fixtures.directory import Org
from web import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def waiting_case(session: Session, org: Org, clock: FrozenClock,
                 deploy_file: Callable[[str], ProcessDefinition]) -> Job:
    """A case waiting on a three-day timer started on 2025-09-26 (so due in the past by the real clock)."""
    deploy_file('tests/engine/bpmn/timer_intermediate.bpmn')
    runtime.start_case(session, 'timer_intermediate', {}, actor=None, org_unit=org.township)
    session.commit()
    return session.scalars(sa.select(Job)).one()


def _status(session: Session, job: Job) -> str:
    session.expire_all()
    return session.scalars(sa.select(Job.status).where(Job.id == job.id)).one()


def test_worker_once_fires_due_jobs_and_exits(app: Flask, session: Session, waiting_case: Job,
                                              clock: FrozenClock) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=['worker', '--once'])
    assert result.exit_code == 0 and '已处理 0 个作业' in result.output  # not due yet
    clock.advance(timedelta(days=3, minutes=1))
    result = runner.invoke(args=['worker', '--once', '--batch', '5', '--name', 'cron'])
    assert result.exit_code == 0 and '已处理 1 个作业' in result.output
    session.expire_all()
    job = session.get(Job, waiting_case.id)
    assert job is not None and (job.status, job.lock_owner) == ('done', 'cron')
    assert session.scalars(sa.select(HumanTask.bpmn_id)).all() == ['follow_up']


def test_serve_runs_a_worker_beside_the_server_and_stops_it(app: Flask, session: Session, waiting_case: Job,
                                                           clock: FrozenClock,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    clock.advance(timedelta(days=3, minutes=1))
    served: dict[str, object] = {}

    def fake_run_simple(host: str, port: int, application: object, **options: object) -> None:
        served.update(host=host, port=port, app=application, **options)
        deadline = time.monotonic() + 20
        while _status(session, waiting_case) != 'done':  # the worker thread fires the timer meanwhile
            assert time.monotonic() < deadline, 'the worker thread did not fire the due timer'
            time.sleep(0.05)

    monkeypatch.setattr(cli, 'run_simple', fake_run_simple)
    threads: list[object] = []
    real_start = cli.start_worker_thread

    def start(url: str) -> object:
        started = real_start(url)
        threads.append(started[0])
        return started

    monkeypatch.setattr(cli, 'start_worker_thread', start)
    result = app.test_cli_runner().invoke(args=['serve', '--port', '5055'])
    assert result.exit_code == 0, result.output
    assert (served['host'], served['port'], served['use_reloader']) == ('127.0.0.1', 5055, False)
    [thread] = threads
    assert not thread.is_alive()  # type: ignore[attr-defined]


def test_worker_process_stops_gracefully_on_sigterm(session: Session, db_url: str, waiting_case: Job,
                                                    tmp_path: Path) -> None:
    # A real `flask --app wsgi worker` process on the real clock: the 2025 timer is long due.
    env = {**os.environ, 'DATABASE_URL': db_url, 'SECRET_KEY': 'test-only', 'PYTHONPATH': str(ROOT),
           'FENGQIAO_INSTANCE': str(tmp_path)}
    log = tmp_path / 'worker.log'
    flask = Path(sys.executable).with_name('flask')
    process = subprocess.Popen([str(flask), '--app', 'wsgi', 'worker', '--name', 'cli-worker'], cwd=ROOT, env=env,
                               stdout=log.open('wb'), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while _status(session, waiting_case) != 'done':
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
    output = log.read_text()
    assert code == 0, output
    assert f'job timer {waiting_case.key} done' in output and 'worker cli-worker stopped' in output
