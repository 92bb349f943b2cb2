"""Real processes for the fault tests: gunicorn serving ``wsgi:app`` and ``flask --app wsgi worker``.

Both are started the way an operator starts them, configured through the environment only, and stopped
with SIGTERM (then SIGKILL if they hang). Their output goes to a log file the test shows when it fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: how long gunicorn may take to import the app and answer
START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port: int = probe.getsockname()[1]
        return port


def app_env(database_url: str, instance: Path) -> dict[str, str]:
    """The environment of a production-configured process on ``database_url``."""
    return {**os.environ, 'DATABASE_URL': database_url, 'SECRET_KEY': 'fault-test-only',
            'FENGQIAO_INSTANCE': str(instance), 'PYTHONPATH': str(ROOT), 'PYTHONUNBUFFERED': '1',
            'FENGQIAO_LOG_FORMAT': 'json'}


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` for the duration of the block; SIGTERM it after (SIGKILL if it will not stop)."""
    with log.open('ab') as out:
        child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        yield child
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(5)


@contextmanager
def gunicorn(database_url: str, instance: Path, log: Path, *, workers: int = 2,
             threads: int = 4) -> Iterator[str]:
    """Serve ``wsgi:app`` with gunicorn (threaded workers); yields the base URL once it answers."""
    port = free_port()
    args = [str(BIN / 'gunicorn'), '--workers', str(workers), '--threads', str(threads), '--worker-class', 'gthread',
            '--bind', f'127.0.0.1:{port}', '--timeout', '60', 'wsgi:app']
    with process(args, app_env(database_url, instance), log) as child:
        base = f'http://127.0.0.1:{port}'
        _wait_until_up(child, base + '/healthz', log)
        yield base


@contextmanager
def worker(database_url: str, instance: Path, log: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``flask --app wsgi worker --name <name>``."""
    args = [str(BIN / 'flask'), '--app', 'wsgi', 'worker', '--name', name]
    with process(args, app_env(database_url, instance), log) as child:
        yield child


def _wait_until_up(child: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise AssertionError(f'gunicorn exited: {log.read_text(errors="replace")[-3000:]}')
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise AssertionError(f'gunicorn did not answer: {log.read_text(errors="replace")[-3000:]}')
