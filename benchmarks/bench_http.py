"""Dispute cases from intake to closure through the REST API: gunicorn on PostgreSQL under 10, 50, 100 clients.

The server runs as in production: a fresh migrated PostgreSQL database with the demo org tree, users and
diagrams; ``gunicorn -c deploy/gunicorn.conf.py wsgi:app`` (its default workers and threads for this machine) on
a free port; one ``flask --app wsgi worker`` firing the timers. Each client is a thread with a keep-alive
``http.client`` connection and two bearer tokens of its own (a 医调委 mediator and a supervisor of 桃江县). It keeps
a few ``dispute_mediation`` cases in flight and drives each to closure: ``POST /cases``, then ``GET /cases/<id>`` for
its open tasks, ``claim``, ``complete`` with valid data (the green path: 受理审查 →
县级会诊调解 → 调解协议书 → 司法确认 waived → 回访 after the performance timer → 成因分析 → 结案审核).

Measured over the steady window (after a warm-up): task completions per second and the latency of the
``complete`` call, p50/p99. Baseline in the same run: this machine's CPU-bound ceiling, cores ÷ server CPU
seconds per completion, where server CPU is the gunicorn processes (master, live workers and reaped ones),
the job worker and the PostgreSQL backends of the benchmark database, read from ``/proc`` at the window's
edges; it covers every request of the workload (start, list, claim), divided by the completions. The
clients' own CPU is shown apart: they share the cores with the server (and anything else running), so the
rate stays below the ceiling. Targets (issue 9): at least 300 completions/s on 2 cores, p99 under 100 ms at 100 clients.

    .venv/bin/python -m benchmarks.bench_http [--clients 10,50,100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import ROOT, create_postgres_database, migrate
from benchmarks.suite import Options, Row, ratio
from engine.db import create_db_engine, create_session_factory
from engine.directory import add_membership, configure_hashing, create_user, get_group
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from workflows import register
from workflows.demo import load_demo
from workflows.shared.id_numbers import check_digit

PG_URL = os.environ.get('BENCH_POSTGRES_URL', 'postgresql+psycopg://postgres@127.0.0.1:5432/fengqiao_bench_h')
PASSWORD = 'bench-http-1234'
COUNTY = '430922'
VENV_BIN = Path(sys.executable).parent
CORES = os.cpu_count() or 1
TICKS = os.sysconf('SC_CLK_TCK')
TARGET_RATE = 300.0
TARGET_P99_MS = 100.0


# -- the server ---------------------------------------------------------------------------------------------

def prepare_database(url: str, clients: int) -> None:
    """Migrate a fresh database, load the demo data and give every client a mediator and a supervisor."""
    create_postgres_database(url, drop=True)
    migrate(url)
    # Cheap hashes: the benchmark measures task completions, not token logins.
    configure_hashing(time_cost=1, memory_cost=1024)
    register()
    engine = create_db_engine(url)
    with create_session_factory(engine)() as session:
        load_demo(session, progress=lambda _: None)
        county = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == COUNTY)).one()
        groups = {code: get_group(session, code, code) for code in ('mediator', 'supervisor')}
        for index in range(clients):
            for code, group in groups.items():
                user = create_user(session, f'bench_{code}_{index}', f'压测{code}{index}', PASSWORD, county,
                                   actor=None, enforce_policy=False)
                add_membership(session, user, group, county, actor=None)
        session.commit()
    engine.dispose()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(url: str, port: int, instance: Path) -> dict[str, str]:
    """The environment of the web and worker processes: production settings, login limits raised."""
    env = dict(os.environ)
    env.update({'DATABASE_URL': url, 'SECRET_KEY': secrets.token_hex(32), 'FENGQIAO_INSTANCE': str(instance),
                'FENGQIAO_BIND': f'127.0.0.1:{port}', 'FENGQIAO_LOGIN_RATE_LIMIT': '100000',
                'FENGQIAO_LOGIN_RATE_LIMIT_PER_IP': '100000'})
    return env


@dataclass
class Server:
    """gunicorn and one job worker, running."""

    port: int
    web: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_server(url: str) -> Iterator[Server]:
    """Start gunicorn with the production config and one worker; stop both on exit."""
    instance = Path(tempfile.mkdtemp(prefix='fq-bench-http-'))
    port = free_port()
    env = server_env(url, port, instance)
    log = instance / 'server.log'
    with log.open('wb') as out:
        web = subprocess.Popen([str(VENV_BIN / 'gunicorn'), '-c', str(ROOT / 'deploy' / 'gunicorn.conf.py'),
                                'wsgi:app'], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        worker = subprocess.Popen([str(VENV_BIN / 'flask'), '--app', 'wsgi', 'worker', '--name', 'bench-http'],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(port, web, worker, log)
    try:
        wait_until_up(server)
        yield server
    finally:
        for process in (worker, web):
            process.send_signal(signal.SIGTERM)
        for process in (worker, web):
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until_up(server: Server, timeout: float = 60) -> None:
    """Poll ``/readyz`` until every part answers; fail with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.web.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=2)
            conn.request('GET', '/readyz')
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f'gunicorn did not come up:\n{server.log.read_text()[-3000:]}')


# -- CPU accounting -------------------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str]:
    text = Path(f'/proc/{pid}/stat').read_text()
    return text[text.rindex(')') + 2:].split()  # the fields after "(comm)": state is fields[0]


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of ``pid`` (plus its reaped children's if ``reaped``), 0 if it is gone."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICKS


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    found = []
    for entry in Path('/proc').iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends connected to the benchmark database."""
    engine = create_db_engine(url.rsplit('/', 1)[0] + '/postgres')
    with engine.connect() as conn:
        pids = list(conn.execute(sa.text('SELECT pid FROM pg_stat_activity WHERE datname = :name'),
                                 {'name': url.rsplit('/', 1)[1]}).scalars())
    engine.dispose()
    return pids


@dataclass
class CpuSnapshot:
    """CPU seconds so far of each part of the system under test, and of this (client) process."""

    web: float
    worker: float
    backends: dict[int, float]
    clients: float

    @classmethod
    def take(cls, server: Server, url: str, pids: list[int]) -> CpuSnapshot:
        # The master's cutime/cstime holds the workers gunicorn recycled (max_requests) and reaped.
        web = cpu_seconds(server.web.pid, reaped=True) + sum(cpu_seconds(p) for p in children(server.web.pid))
        return cls(web, cpu_seconds(server.worker.pid), {pid: cpu_seconds(pid) for pid in pids},
                   time.process_time())


@dataclass
class CpuUse:
    """CPU seconds used over the window, by part."""

    web: float
    worker: float
    postgres: float
    clients: float

    @property
    def server(self) -> float:
        return self.web + self.worker + self.postgres


def cpu_between(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
    """CPU used between two snapshots; backends that came or went count from what was seen of them."""
    postgres = sum(after.backends.get(pid, used) - before.backends.get(pid, 0.0)
                   for pid, used in {**before.backends, **after.backends}.items())
    return CpuUse(after.web - before.web, after.worker - before.worker, postgres, after.clients - before.clients)


# -- the clients -------------------------------------------------------------------------------------------

def valid_id(first17: str) -> str:
    """A resident ID number with a correct check digit."""
    return first17 + check_digit(first17)


def start_data(index: int, day: str) -> dict[str, Any]:
    """Start fields of a green (simple) dispute."""
    return {'applied_on': day, 'source': '当事人申请', 'application_form': '书面', 'applicant_side': '患方',
            'applicant_name': '王某某', 'applicant_relation': '子女', 'applicant_phone': '13800000000',
            'person_name': f'压测{index}', 'id_number': valid_id('43092219580612003'), 'hospital': '桃江县某医院',
            'department': '心内科', 'dispute_summary': '患方认为医院用药不当导致过敏反应，要求赔偿医疗费及误工费。',
            'claimed_amount': '30000.00', 'patient_died': False, 'people_involved': 1, 'online_attention': False,
            'prior_failed_talks': 0}


def task_data(name: str, day: str) -> dict[str, Any]:
    """Valid form data for each task of the green path (as in tests/workflows/disputes)."""
    forms: dict[str, dict[str, Any]] = {
        'accept_review': {'consent_status': 'consented', 'court_accepted': False, 'health_bureau_accepted': False,
                          'accepted_on': day, 'start_level': '县'},
        'session_county': {'session_on': day, 'session_place': '桃江县医调委调解室', 'session_outcome': 'agreement',
                           'participants': '患方家属、医院医患办、调解员',
                           'session_summary': '双方陈述意见，调解员释法明理。'},
        'draft_agreement': {
            'parties': [{'role': '患方', 'name': '王某某', 'id_number': valid_id('43092219850101002'),
                         'representative': '患者之子', 'signed': True},
                        {'role': '医方', 'name': '桃江县某医院', 'credit_code': '12430922MB1234567X',
                         'representative': '委托代理人 李某', 'signed': True}],
            'facts': '患者因眩晕入院，用药后出现过敏反应，双方对诊疗行为存在争议。',
            'responsibility': '医方在用药观察方面存在不足，承担相应责任。', 'amount_claimed': '30000.00',
            'amount_agreed': '18000.00', 'insurer_share': '10000.00', 'performance_method': '一次性银行转账',
            'performance_due_on': day, 'signed_on': day, 'mediator_name': '王红梅', 'mediator_signed': True,
            'seal_affixed': True},
        'confirmation': {'confirmation_decision': 'waived'},
        'followup': {'visit_on': day, 'visit_method': '电话回访', 'performance_status': 'performed',
                     'paid_amount': '18000.00', 'satisfaction': '满意'},
        'analyse_causes': {'hospital_problems': False},
        'close_review': {'review_opinion': '卷宗齐全，同意结案。'},
    }
    return forms[name]


class ApiError(RuntimeError):
    """A response the green path did not expect."""


@dataclass
class ClientLog:
    """What one client saw: (finish time, seconds) of each call, by kind, and the cases it closed."""

    calls: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    closed: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: idle keep-alive connections the server had closed, reopened
    reconnects: int = 0


class Client:
    """One API client: a keep-alive connection, a mediator's and a supervisor's token, a few cases."""

    def __init__(self, port: int, index: int, in_flight: int) -> None:
        self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        self.index, self.in_flight = index, in_flight
        self.tokens: dict[str, str] = {}
        self.log = ClientLog()
        self.day = (date.today() - timedelta(days=1)).isoformat()  # every date-driven timer is already due

    def call(self, kind: str, method: str, path: str, group: str, body: Any = None) -> Any:
        """Send one request as the user of ``group``; record its latency; return the JSON body."""
        headers = {'Authorization': f'Bearer {self.tokens[group]}', 'Content-Type': 'application/json'}
        started = time.perf_counter()
        status, payload = self.send(method, f'/api/v1{path}', None if body is None else json.dumps(body), headers)
        finished = time.perf_counter()
        if status >= 300:
            raise ApiError(f'{method} {path}: {status} {payload[:300]!r}')
        self.log.calls.setdefault(kind, []).append((finished, finished - started))
        return json.loads(payload)

    def send(self, method: str, path: str, body: str | None, headers: dict[str, str]) -> tuple[int, bytes]:
        """One request on the keep-alive connection; reconnect once if the server had closed it while idle
        (gunicorn's keepalive is 5 s), as HTTP client libraries do."""
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body, headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.conn.close()
                if attempt == 2:
                    raise
                self.log.reconnects += 1
        raise AssertionError('unreachable')

    def login(self) -> None:
        """Fetch a bearer token for each of the client's users."""
        for group in ('mediator', 'supervisor'):
            body = json.dumps({'username': f'bench_{group}_{self.index}', 'password': PASSWORD})
            status, payload = self.send('POST', '/api/v1/auth/token', body, {'Content-Type': 'application/json'})
            if status != 200:
                raise ApiError(f'token: {status} {payload[:300]!r}')
            self.tokens[group] = json.loads(payload)['token']

    def start_case(self) -> int:
        case = self.call('start', 'POST', '/cases', 'mediator',
                         {'process_key': 'dispute_mediation', 'data': start_data(self.index, self.day)})
        case_id: int = case['id']
        return case_id

    def step(self, case_id: int) -> str:
        """Work one case once: 'closed', 'waiting' (nothing open yet: a timer is due) or 'worked'."""
        case = self.call('list', 'GET', f'/cases/{case_id}', 'mediator')
        if case['status'] == 'closed':
            return 'closed'
        if not case['tasks']:
            return 'waiting'
        for task in case['tasks']:
            group = 'supervisor' if task['candidate_group'] == 'supervisor' else 'mediator'
            self.call('claim', 'POST', f'/tasks/{task["id"]}/claim', group, {})
            self.call('complete', 'POST', f'/tasks/{task["id"]}/complete', group,
                      {'data': task_data(task['name'], self.day)})
        return 'worked'

    def run(self, stop: threading.Event) -> None:
        """Keep ``in_flight`` cases going, round robin, until told to stop."""
        cases: deque[int] = deque()
        while not stop.is_set():
            try:
                while len(cases) < self.in_flight:
                    cases.append(self.start_case())
                if self._round(cases) == 0:
                    time.sleep(0.05)
            except (ApiError, OSError, KeyError) as error:
                # Counted and shown; the client drops its cases and goes on with new ones.
                self.log.errors.append(str(error))
                self.conn.close()
                cases.clear()
                time.sleep(0.1)

    def _round(self, cases: deque[int]) -> int:
        """Step every case once; return how many had work."""
        worked = 0
        for _ in range(len(cases)):
            case_id = cases.popleft()
            outcome = self.step(case_id)
            if outcome == 'closed':
                self.log.closed.append(time.perf_counter())
                continue
            worked += outcome == 'worked'
            cases.append(case_id)
        return worked


# -- one phase: n clients --------------------------------------------------------------------------------------

@dataclass
class Phase:
    """The figures of one phase."""

    clients: int
    seconds: float
    completions: int
    closed: int
    latencies: dict[str, list[float]]
    cpu: CpuUse
    errors: list[str]
    reconnects: int
    #: every completion answered 200 in the phase, window or not (for the database cross-check)
    sent_completions: int

    @property
    def rate(self) -> float:
        return self.completions / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per completion."""
        return self.cpu.server / max(self.completions, 1) * 1000

    @property
    def ceiling(self) -> float:
        """Completions per second if the server's CPU were the only limit, on all the machine's cores."""
        return CORES / (self.cpu_ms / 1000) if self.cpu_ms else 0.0

    def pct(self, kind: str, p: float) -> float:
        ordered = sorted(self.latencies.get(kind, []))
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000 if ordered else float('nan')


def run_phase(server: Server, url: str, count: int, seconds: float, warmup: float, in_flight: int) -> Phase:
    """Run ``count`` clients; measure the window after the warm-up."""
    clients = [Client(server.port, index, in_flight) for index in range(count)]
    for client in clients:
        client.login()
    stop = threading.Event()
    threads = [threading.Thread(target=client.run, args=(stop,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    pids = backend_pids(url)
    before, t0 = CpuSnapshot.take(server, url, pids), time.perf_counter()
    time.sleep(seconds)
    # Backends opened during the window count from zero: a pool that grew mid-window is not missed.
    after, t1 = CpuSnapshot.take(server, url, sorted({*pids, *backend_pids(url)})), time.perf_counter()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.conn.close()
    return summarise(clients, count, t0, t1, cpu_between(before, after))


def summarise(clients: list[Client], count: int, t0: float, t1: float, cpu: CpuUse) -> Phase:
    """Keep the calls that finished inside the window."""
    latencies: dict[str, list[float]] = {}
    for client in clients:
        for kind, calls in client.log.calls.items():
            latencies.setdefault(kind, []).extend(took for finished, took in calls if t0 <= finished <= t1)
    closed = sum(1 for client in clients for at in client.log.closed if t0 <= at <= t1)
    errors = [error for client in clients for error in client.log.errors]
    reconnects = sum(client.log.reconnects for client in clients)
    sent = sum(len(client.log.calls.get('complete', [])) for client in clients)
    return Phase(count, t1 - t0, len(latencies.get('complete', [])), closed, latencies, cpu, errors, reconnects,
                 sent)


def completed_in_database(url: str) -> int:
    """Tasks the database records as completed by the benchmark's users: the clients' count must not exceed it."""
    engine = create_db_engine(url)
    with engine.connect() as conn:
        done: int = conn.execute(sa.select(sa.func.count()).select_from(HumanTask).join(
            User, User.id == HumanTask.completed_by_id).where(User.username.like('bench\\_%'))).scalar_one()
    engine.dispose()
    return done


# -- output ----------------------------------------------------------------------------------------------

def print_phases(phases: list[Phase], shape: tuple[int, int]) -> None:
    """One row per client count, with the same-run ceiling and the targets."""
    workers, threads = shape
    print(f'\nDispute cases intake → closure over HTTP: gunicorn ({workers} workers × {threads} '
          f'thread{"s" if threads != 1 else ""}) + 1 job worker, PostgreSQL, {CORES} cores')
    print(f'{"clients":>7} {"done/s":>8} {"cases/s":>8} {"p50 ms":>7} {"p99 ms":>7} {"all p99":>8} '
          f'{"cpu ms":>7} {"ceiling/s":>9} {"× ceil":>7} {"web":>6} {"pg":>6} {"wkr":>5} {"client":>6} '
          f'{"errors":>6} {"reconn":>6}')
    for p in phases:
        all_calls = [took for calls in p.latencies.values() for took in calls]
        everything = sorted(all_calls)[min(len(all_calls) - 1, int(0.99 * len(all_calls)))] * 1000 \
            if all_calls else float('nan')
        print(f'{p.clients:7d} {p.rate:8.1f} {p.closed / p.seconds:8.2f} {p.pct("complete", 50):7.1f} '
              f'{p.pct("complete", 99):7.1f} {everything:8.1f} {p.cpu_ms:7.1f} {p.ceiling:9.1f} '
              f'{p.rate / p.ceiling if p.ceiling else 0:7.2f} {p.cpu.web:6.1f} {p.cpu.postgres:6.1f} '
              f'{p.cpu.worker:5.1f} {p.cpu.clients:6.1f} {len(p.errors):6d} {p.reconnects:6d}')
    print(f'targets: ≥ {TARGET_RATE:.0f} completions/s on 2 cores; p99 of complete < {TARGET_P99_MS:.0f} ms '
          f'at 100 clients.  p50/p99: the complete call; "all p99": every call (start, list, claim, complete).')
    print('cpu ms: server CPU (gunicorn + job worker + PostgreSQL backends) per completion; ceiling = cores ÷ '
          'that; web/pg/wkr/client: CPU seconds in the window; errors, reconn(ects of idle keep-alive '
          'connections): whole phase.')
    for p in phases:
        for error in sorted(set(p.errors))[:3]:
            print(f'  error ({p.clients} clients): {error}')


def gunicorn_shape() -> tuple[int, int]:
    """The workers and threads deploy/gunicorn.conf.py picks on this machine, read from the file itself."""
    settings = runpy.run_path(str(ROOT / 'deploy' / 'gunicorn.conf.py'))
    return int(settings['workers']), int(settings['threads'])


def measure(counts: list[int], seconds: float, warmup: float, in_flight: int) -> list[Phase]:
    """One phase per client count against one server on a fresh database; prints its table and the check."""
    prepare_database(PG_URL, max(counts))
    phases = []
    with running_server(PG_URL) as server:
        for count in counts:
            phases.append(run_phase(server, PG_URL, count, seconds, warmup, in_flight))
            print(f'{count} clients: {phases[-1].rate:.1f} completions/s', file=sys.stderr)
    print_phases(phases, gunicorn_shape())
    counted = sum(p.sent_completions for p in phases)
    print(f'check: {counted} completions answered 200 to the clients, {completed_in_database(PG_URL)} completed '
          'tasks in the database')
    if any(p.errors for p in phases):
        print(f'(server log: {server.log})')
    return phases


def run(options: Options) -> list[Row]:
    """The suite's rows: completions per second against this run's CPU-bound ceiling, and the complete call's
    p99 against its p50, at each client count (PostgreSQL only)."""
    if not options.postgres:
        return [Row('skipped: HTTP end to end runs on PostgreSQL only', None, '')]
    counts = options.sizes_for('http', [10], [10, 50, 100])
    seconds, warmup = (3.0, 1.0) if options.quick else (20.0, 5.0)
    rows = []
    for p in measure(counts, seconds, warmup, 2):
        rows.append(Row(f'HTTP, {p.clients} clients: task completions', p.rate, 'done/s ↑',
                        f'CPU-bound ceiling ({CORES} cores ÷ {p.cpu_ms:.1f} ms CPU each)', p.ceiling,
                        ratio(p.rate, p.ceiling), f'≥ {TARGET_RATE:.0f}/s'))
        rows.append(Row(f'HTTP, {p.clients} clients: complete p99', p.pct('complete', 99), 'ms',
                        'complete p50, same phase', p.pct('complete', 50),
                        ratio(p.pct('complete', 99), p.pct('complete', 50)),
                        f'< {TARGET_P99_MS:.0f} ms at 100 clients'))
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--clients', default='10,50,100', help='client counts, one phase each')
    parser.add_argument('--seconds', type=float, default=20, help='length of each measured window')
    parser.add_argument('--warmup', type=float, default=5, help='seconds of load before each window')
    parser.add_argument('--in-flight', type=int, default=2, help='cases each client keeps going at once')
    args = parser.parse_args(argv)
    measure([int(part) for part in args.clients.split(',')], args.seconds, args.warmup, args.in_flight)


if __name__ == '__main__':
    main(sys.argv[1:])
