"""Structured logs: JSON lines with request ids, nothing secret, and the worker's lines with their job."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from config import TestConfig as AppConfig
from engine import runtime
from engine.clock import FrozenClock
from engine.models.definitions import ProcessDefinition
from engine.models.jobs import Job
from engine.models.users import User
from tests.fixtures.directory import PASSWORD, Org
from web.app import create_app
from web.core.logging import configure_logging

ROOT = Path(__file__).resolve().parents[2]
ID_NUMBER = '431381198503120015'


@pytest.fixture
def json_log(app: Flask) -> Iterator[io.StringIO]:
    """The process's log as JSON lines in a buffer; the root logger is put back afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    buffer = io.StringIO()
    configure_logging('json', stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _access(buffer: io.StringIO, path: str) -> dict[str, Any]:
    [line] = [line for line in _lines(buffer) if line['logger'] == 'fengqiao.request' and line['path'] == path]
    return line


def test_every_request_logs_one_json_line_with_its_fields(client: FlaskClient, json_log: io.StringIO) -> None:
    response = client.get('/healthz', headers={'X-Request-ID': 'req-0123456789abcdef'})
    assert response.headers['X-Request-ID'] == 'req-0123456789abcdef'
    line = _access(json_log, '/healthz')
    assert line['request_id'] == 'req-0123456789abcdef' and line['level'] == 'INFO'
    assert (line['method'], line['status']) == ('GET', 200)
    assert isinstance(line['duration_ms'], float) and line['time'].endswith('+00:00')
    assert 'user_id' not in line and line['message'].startswith('GET /healthz 200')


@pytest.mark.parametrize('header', ['short', 'has space in it', 'x' * 200, 'evil\u2028id-123456'])
def test_an_unusable_request_id_is_replaced(client: FlaskClient, json_log: io.StringIO, header: str) -> None:
    response = client.get('/healthz', headers={'X-Request-ID': header})
    generated = response.headers['X-Request-ID']
    assert generated != header and len(generated) == 32 and int(generated, 16) >= 0
    assert _access(json_log, '/healthz')['request_id'] == generated


def test_lines_carry_the_user_and_never_passwords_or_id_numbers(client: FlaskClient, json_log: io.StringIO,
                                                                login: Callable[[str], FlaskClient],
                                                                people: dict[str, User]) -> None:
    login('staff')
    client.get(f'/cases?q={ID_NUMBER}&token=abc', headers={'X-Request-ID': 'search-request-1'})
    line = _access(json_log, '/cases')
    assert line['user_id'] == people['staff'].id and line['request_id'] == 'search-request-1'
    text = json_log.getvalue()
    assert PASSWORD not in text and ID_NUMBER not in text and 'token=abc' not in text


def test_lines_logged_inside_a_request_carry_its_id(app: Flask, client: FlaskClient, json_log: io.StringIO) -> None:
    def failing() -> str:
        raise RuntimeError('boom')

    app.add_url_rule('/test-failure', 'test_failure', failing)
    response = client.get('/test-failure', headers={'X-Request-ID': 'failing-request'})
    assert response.status_code == 500 and 'boom' not in response.get_data(as_text=True)
    [error] = [line for line in _lines(json_log) if line['level'] == 'ERROR']
    assert error['request_id'] == 'failing-request' and 'RuntimeError: boom' in error['exception']
    assert _access(json_log, '/test-failure')['status'] == 500


def test_plain_text_stays_the_default(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('FENGQIAO_LOG_FORMAT', raising=False)
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    app = create_app(AppConfig(db_url))
    assert root.handlers == before  # make run keeps the console format the CLI sets up
    buffer = io.StringIO()
    configure_logging('text', stream=buffer)
    try:
        app.test_client().get('/healthz', headers={'X-Request-ID': 'plain-request-1'})
    finally:
        root.handlers[:] = before
        root.setLevel(level)
    assert 'INFO fengqiao.request [plain-request-1]: GET /healthz 200' in buffer.getvalue()
    assert not buffer.getvalue().lstrip().startswith('{')


@pytest.fixture
def waiting_case(session: Session, org: Org, clock: FrozenClock,
                 deploy_file: Callable[[str], ProcessDefinition]) -> Job:
    """A case waiting on a three-day timer started on 2025-09-26 (long due by the real clock)."""
    deploy_file('tests/engine/bpmn/timer_intermediate.bpmn')
    runtime.start_case(session, 'timer_intermediate', {}, actor=None, org_unit=org.township)
    session.commit()
    return session.scalars(sa.select(Job)).one()


def _job_status(session: Session, job: Job) -> str:
    session.expire_all()
    return session.scalars(sa.select(Job.status).where(Job.id == job.id)).one()


def test_worker_logs_json_lines_with_its_job_and_stops_on_sigterm(session: Session, db_url: str, waiting_case: Job,
                                                                 tmp_path: Path) -> None:
    env = {**os.environ, 'DATABASE_URL': db_url, 'SECRET_KEY': 'test-only', 'PYTHONPATH': str(ROOT),
           'FENGQIAO_INSTANCE': str(tmp_path), 'FENGQIAO_LOG_FORMAT': 'json'}
    log = tmp_path / 'worker.log'
    flask = Path(sys.executable).with_name('flask')
    process = subprocess.Popen([str(flask), '--app', 'wsgi', 'worker', '--name', 'json-worker'], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=log.open('wb'))
    try:
        deadline = time.monotonic() + 30
        while _job_status(session, waiting_case) != 'done':
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = process.wait(15)
    stopped_in = time.monotonic() - started
    assert code == 0 and stopped_in < 5, log.read_text()
    lines = [json.loads(text) for text in log.read_text().splitlines() if text.startswith('{')]
    [job_line] = [line for line in lines if line.get('job_id') == waiting_case.id]
    assert (job_line['job_kind'], job_line['job_key'], job_line['outcome']) == ('timer', waiting_case.key, 'done')
    assert job_line['logger'] == 'engine.worker' and job_line['level'] == 'INFO'
    assert any(line['message'] == 'worker json-worker stopped' for line in lines)
