"""Supervisors' pages at scale: the audit log's first page, the dashboard's measures and the county ranking,
each against the bare statements it runs.

The data is bench_tasklist's generated case load (org tree of a province, 10,000 users, cases, instances and
human tasks; see that module for the mix), loaded into a database of its own on every run, plus an audit
trail derived from it: one ``case.started`` event per case and one ``task.completed`` per completed task,
in time order after the deployments' own events (the engine numbers events itself, so these do too),
recorded at the case's or task's unit. (Their hash columns are unique placeholders, not a
chain: no chain check is measured here, and the readers do not look at the hashes.)

For a province and a city supervisor, at the instant the data was generated for:

* **audit page**: ``engine.audit_log.list_events`` (50 newest, unfiltered) and ``count_events`` (capped);
* **dashboard**: ``engine.statistics.unit_breakdown`` of the supervisor's unit for the current month;
* **ranking**: ``engine.ranking.rank_counties`` under the supervisor's unit for the current month, with
  the weights in force;

each in a session of its own per call, like a request; against, as baseline measured in the same run,
**bare**: the very statements that call executed (captured from the ORM session) run on a SQLAlchemy Core
connection, all rows fetched: the database's floor for that answer. The two run interleaved, call by call.

    .venv/bin/python -m benchmarks.bench_supervision [--tasks 10000 100000] [--backend sqlite] [--samples 30]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.pool import NullPool

from benchmarks.bench_tasklist import (
    PG_URL,
    DatasetSpec,
    _load,
    bulk_loader,
    create_postgres_database,
    deploy_definitions,
    migrate,
)
from benchmarks.common import Timing, measure_interleaved
from benchmarks.suite import Options, Row, print_suite_table, ratio, with_growth
from engine.access import Scope, load_scope
from engine.audit_log import AuditFilter, count_events, list_events
from engine.clock import FrozenClock, set_clock
from engine.db import create_db_engine, create_session_factory
from engine.directory import configure_hashing
from engine.models.org_units import OrgUnit
from engine.models.users import User
from engine.ranking import effective_weights, rank_counties
from engine.statistics import month_period, unit_breakdown

USERS = 10_000
SQLITE_DIR = Path('/tmp/fq-bench-supervision')
#: (label, username): bench_tasklist's province supervisor and the first city's
READERS = (('province supervisor', 'supervisor-430000-1'), ('city supervisor', 'supervisor-430100-1'))

_AUDIT_SQL = '''
INSERT INTO audit_events (id, occurred_dt, actor_id, actor_name, kind, case_id, instance_id, human_task_id,
                          org_path, prev_hash, hash)
SELECT (SELECT coalesce(max(id), 0) FROM audit_events) + row_number() OVER (ORDER BY at),
       at, actor_id, actor_name, kind, case_id, instance_id, task_id, org_path, '', hash FROM (
    SELECT created_dt AS at, NULL AS actor_id, '系统' AS actor_name, 'case.started' AS kind, id AS case_id,
           NULL AS instance_id, NULL AS task_id, org_path, {case_hash} AS hash FROM cases
    UNION ALL
    SELECT completed_dt, completed_by_id, '办理人', 'task.completed', case_id, instance_id, id, org_path,
           {task_hash} FROM human_tasks WHERE status = 'completed'
) AS events ORDER BY at
'''


def _hash_sql(backend: str, prefix: str, column: str) -> str:
    """A unique 64-character placeholder for the hash column."""
    if backend == 'sqlite':
        return f"printf('{prefix}%063d', {column})"
    return f"'{prefix}' || lpad({column}::text, 63, '0')"


def build(backend: str, tasks: int) -> tuple[str, datetime]:
    """A fresh database of ``tasks`` generated tasks with their audit trail; its URL and its "now"."""
    spec = DatasetSpec(tasks, USERS)
    if backend == 'sqlite':
        SQLITE_DIR.mkdir(parents=True, exist_ok=True)
        path = SQLITE_DIR / f'supervision_{tasks}.db'
        for suffix in ('', '-wal', '-shm'):
            Path(f'{path}{suffix}').unlink(missing_ok=True)
        url = f'sqlite:///{path}'
    else:
        url = f'{PG_URL}_supervision'
        create_postgres_database(url, drop=True)
    print(f'Generating {tasks:,} tasks, {USERS:,} users and their audit trail on {backend} …', flush=True)
    migrate(url)
    processes = deploy_definitions(url)
    reference = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    with bulk_loader(url) as loader:
        _load(loader, spec, processes, reference)
    engine = create_db_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(_AUDIT_SQL.format(case_hash=_hash_sql(backend, 'c', 'id'),
                                               task_hash=_hash_sql(backend, 't', 'id'))))
        conn.execute(sa.text('ANALYZE'))
    engine.dispose()
    return url, reference


# -- one operation against its statements ---------------------------------------------------------------

Call = Callable[[Session, Scope, OrgUnit], Any]


def audit_page(session: Session, scope: Scope, unit: OrgUnit) -> Any:
    """The audit log's first page as the page asks for it: 50 events and the capped count."""
    return list_events(session, scope, AuditFilter()), count_events(session, scope, AuditFilter())


def dashboard(reference: datetime) -> Call:
    """The dashboard's measures of the reader's unit for the month of ``reference`` (local time)."""
    month = month_period(reference.year, reference.month)
    return lambda session, scope, unit: unit_breakdown(session, unit, month)


def ranking(reference: datetime) -> Call:
    """The county ranking under the reader's unit for the month of ``reference``, with the weights in force."""
    month = month_period(reference.year, reference.month)
    return lambda session, scope, unit: rank_counties(session, unit, month, effective_weights(session, unit).values)


def compare(factory: sessionmaker[Session], bare_engine: sa.Engine, username: str, call: Call,
            rounds: int, warmup: int) -> tuple[Timing, Timing, int]:
    """Time ``call`` (a session per call) and its captured statements on a Core connection, interleaved;
    also return how many statements it runs."""
    with factory() as session:
        user = session.scalars(sa.select(User).where(User.username == username)).one()
        scope, unit_id = load_scope(session, user), user.org_unit_id
        captured: list[Any] = []

        def capture(state: ORMExecuteState) -> None:
            # lazy loads and ``get`` pass their values beside the statement
            captured.append((state.statement, state.parameters))

        event.listen(session, 'do_orm_execute', capture)
        call(session, scope, session.get_one(OrgUnit, unit_id))
        event.remove(session, 'do_orm_execute', capture)

    def engine_call(_: int) -> None:
        with factory() as session:
            call(session, scope, session.get_one(OrgUnit, unit_id))

    with bare_engine.connect() as conn:
        def bare(_: int) -> None:
            conn.execute(sa.select(OrgUnit).where(OrgUnit.id == unit_id)).all()
            for statement, parameters in captured:
                conn.execute(statement, parameters).all()
            conn.rollback()

        operations = {'engine': engine_call, 'bare': bare}
        measure_interleaved(operations, warmup)
        timings = measure_interleaved(operations, rounds)
    return timings['engine'], timings['bare'], len(captured) + 1


def measure_size(backend: str, tasks: int, rounds: int, warmup: int) -> list[tuple[str, Timing, Timing, int]]:
    """Every operation for every reader on a freshly built database of ``tasks`` tasks."""
    url, reference = build(backend, tasks)
    previous = set_clock(FrozenClock(reference.replace(tzinfo=UTC)))
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    results = []
    try:
        for label, username in READERS:
            for name, call in (('audit log first page', audit_page), ('dashboard measures', dashboard(reference)),
                               ('county ranking', ranking(reference))):
                timing, bare, statements = compare(factory, engine, username, call, rounds, warmup)
                results.append((f'{name}, {label}', timing, bare, statements))
                print(f'  {backend} {tasks:>9,} {results[-1][0]:42} p95 {timing.pct(95):8.2f} ms   '
                      f'bare p95 {bare.pct(95):8.2f} ms  ({statements} statements)', flush=True)
    finally:
        set_clock(previous)
        engine.dispose()
    return results


def rows_for(backend: str, sizes: list[int], rounds: int, warmup: int) -> list[Row]:
    """The suite's rows on one backend: p95 of each operation and reader against its bare p95, with growth."""
    series: dict[str, list[tuple[int, Row]]] = {}
    for tasks in sizes:
        for name, timing, bare, statements in measure_size(backend, tasks, rounds, warmup):
            series.setdefault(name, []).append((tasks, Row(
                f'{name} p95, {backend}, {tasks:,} tasks', timing.pct(95), 'ms',
                f'bare statements ({statements}) p95', bare.pct(95), ratio(timing.pct(95), bare.pct(95)),
                '≤ 3×')))
    return [row for points in series.values() for row in with_growth(points)]


def run(options: Options) -> list[Row]:
    """The suite's rows. --quick: small task counts, 10 rounds."""
    import workflows

    workflows.register()
    configure_hashing(time_cost=1, memory_cost=1024)
    sizes = options.sizes_for('supervision', [1_000, 10_000], [10_000, 100_000, 1_000_000])
    rounds, warmup = (10, 2) if options.quick else (30, 3)
    rows = []
    for backend in ('sqlite', 'postgresql') if options.postgres else ('sqlite',):
        rows += rows_for(backend, sizes, rounds, warmup)
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tasks', type=int, nargs='+', default=[10_000, 100_000])
    parser.add_argument('--backend', choices=('sqlite', 'postgresql', 'both'), default='both')
    parser.add_argument('--samples', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=3)
    args = parser.parse_args(argv)
    import workflows

    workflows.register()
    configure_hashing(time_cost=1, memory_cost=1024)
    backends = ('sqlite', 'postgresql') if args.backend == 'both' else (args.backend,)
    rows = [row for backend in backends for row in rows_for(backend, args.tasks, args.samples, args.warmup)]
    print_suite_table([('supervision', rows)], title='Supervisors\' pages: engine call against its bare statements, '
                      f'{args.samples} rounds interleaved, ms')


if __name__ == '__main__':
    main(sys.argv[1:])
