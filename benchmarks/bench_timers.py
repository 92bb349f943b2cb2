"""Due jobs fired by one and by two workers on PostgreSQL: jobs per second and lateness (due → fired).

Each scenario inserts its jobs due in the future, starts the worker processes (idle until then), moves
every job's due time to one instant ``t0`` a moment ahead, and waits until none is pending. Throughput
is jobs / (last fired − t0); lateness is each job's fired time − its due time, so with everything due at
once it measures how long a backlog takes to drain, p50 and p99.

* **bare batch** (baseline): ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT n`` then one ``UPDATE`` marking
  the whole batch done, one transaction per batch: the queue's floor, no per-job work at all.
* **bare per job** (baseline): the same claim, then one transaction per job that only marks it done:
  the worker's transaction shape without the ORM, the handler or its effect.
* **worker, recorded no-op**: :class:`engine.worker.Worker` running a handler that inserts one row per
  job (the rows are counted: none lost, none doubled).
* **worker, BPMN timer**: real timer jobs on waiting instances: lock the instance, restore the workflow,
  fire, run to the next user task, sync tasks and jobs, audit, save.
* **worker, steady arrivals**: jobs falling due at a steady rate below capacity, with the production poll
  interval (1 s): the lateness a reminder sees on a normal day.

    .venv/bin/python -m benchmarks.bench_timers [--sizes 10000 100000] [--timer-instances 1000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as EventType

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import engine.models.all  # noqa: F401  (every model, so the ORM can resolve the jobs table's foreign keys)
from benchmarks.common import ROOT, fresh_database
from benchmarks.suite import Options, Row, ratio, with_growth
from engine.db import create_db_engine, create_session_factory
from engine.models.jobs import Job

NOOP_KIND = 'bench_noop'
TIMER_BPMN = ROOT / 'benchmarks' / 'bpmn' / 'timer_wait.bpmn'
BATCH = 20
FAST_POLL = 0.05

effects_metadata = sa.MetaData()
effects = sa.Table('bench_job_effects', effects_metadata,
                   sa.Column('id', sa.Integer, primary_key=True),
                   sa.Column('job_key', sa.String(200), nullable=False))


def record_noop(session: Session, job: Job) -> None:
    """The benchmark's handler: one effect row per run, in the job's transaction."""
    session.execute(effects.insert().values(job_key=job.key))


# -- what runs in each worker process -----------------------------------------------------------------------

def _utc_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _bare(url: str, name: str, stop: EventType, per_job: bool) -> None:
    """The baseline loops: raw SQL, no ORM, no handler."""
    claim = sa.text('SELECT id FROM jobs WHERE status = \'pending\' AND due_dt <= :now '
                    'AND (lock_expires_dt IS NULL OR lock_expires_dt < :now) '
                    'ORDER BY due_dt, id LIMIT :n FOR UPDATE SKIP LOCKED')
    lock = sa.text('UPDATE jobs SET lock_owner = :me, lock_expires_dt = :until, attempts = attempts + 1 '
                   'WHERE id = ANY(:ids)')
    mark_all = sa.text('UPDATE jobs SET status = \'done\', done_dt = :now WHERE id = ANY(:ids)')
    mark_one = sa.text('UPDATE jobs SET status = \'done\', done_dt = :now, lock_expires_dt = NULL '
                       'WHERE id = :id AND status = \'pending\' AND lock_owner = :me')
    with create_db_engine(url).connect() as conn:
        while not stop.is_set():
            with conn.begin():
                now = _utc_naive()
                ids = list(conn.execute(claim, {'now': now, 'n': BATCH}).scalars())
                if ids and per_job:
                    conn.execute(lock, {'me': name, 'until': now + timedelta(minutes=5), 'ids': ids})
                elif ids:
                    conn.execute(mark_all, {'now': now, 'ids': ids})
            for job_id in ids if per_job else ():
                with conn.begin():
                    conn.execute(mark_one, {'now': _utc_naive(), 'id': job_id, 'me': name})
            if len(ids) < BATCH:
                stop.wait(FAST_POLL)


def run_process(url: str, mode: str, name: str, poll: float, ready: EventType, stop: EventType) -> None:
    """Entry point of one worker process (spawned: nothing shared with the parent)."""
    import workflows
    from engine.jobs import register_handler
    from engine.worker import Worker

    workflows.register()
    register_handler(NOOP_KIND, record_noop, replace=True)
    ready.set()
    if mode == 'worker':
        Worker(create_session_factory(create_db_engine(url)), name=name, batch_size=BATCH,
               poll_interval=poll).run_forever(stop)
    else:
        _bare(url, name, stop, per_job=mode == 'bare per job')


# -- scenarios ----------------------------------------------------------------------------------------------

@dataclass
class Result:
    """One scenario's figures."""

    label: str
    workers: int
    jobs: int
    seconds: float
    lateness: list[float]

    @property
    def per_second(self) -> float:
        """Jobs fired per wall second, from t0 to the last one."""
        return self.jobs / self.seconds

    def pct(self, p: float) -> float:
        """The p-th percentile of lateness, in seconds."""
        ordered = sorted(self.lateness)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _insert_noop_jobs(db: Engine, count: int) -> None:
    far = datetime.now(UTC) + timedelta(days=365)
    with db.begin() as conn:
        conn.execute(sa.text(f'TRUNCATE jobs, {effects.name} RESTART IDENTITY'))
    rows = [{'kind': NOOP_KIND, 'key': f'noop:{index}', 'due_dt': far, 'status': 'pending', 'attempts': 0,
             'payload': {}, 'created_dt': far} for index in range(count)]
    with Session(db) as session:
        for start in range(0, count, 10_000):
            session.execute(sa.insert(Job), rows[start:start + 10_000])
        session.commit()


def _start_processes(url: str, mode: str, workers: int, poll: float,
                     label: str) -> tuple[list[multiprocessing.process.BaseProcess], EventType]:
    context = multiprocessing.get_context('spawn')
    stop = context.Event()
    processes, readies = [], []
    for index in range(workers):
        ready = context.Event()
        process = context.Process(target=run_process, args=(url, mode, f'{label[:20]}-{index}', poll, ready, stop))
        process.start()
        processes.append(process)
        readies.append(ready)
    for ready in readies:
        if not ready.wait(60):
            raise RuntimeError('a worker process did not start')
    return processes, stop


def _release_all_at(db: Engine, t0: datetime, where: str = "status = 'pending'") -> None:
    with db.begin() as conn:
        conn.execute(sa.text(f'UPDATE jobs SET due_dt = :t0 WHERE {where}'), {'t0': t0.replace(tzinfo=None)})
        conn.execute(sa.text('ANALYZE jobs'))


def _wait_until_drained(db: Engine, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    # EXISTS, not count(*): counting a 100,000-row backlog ten times a second would take CPU from the workers.
    # Only jobs already due: a fired timer opens a user task whose deadline jobs fall due days later.
    due = sa.text("SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'pending' AND due_dt <= :now)")
    with db.connect() as conn:
        while conn.execute(due, {'now': _utc_naive()}).scalar_one():
            conn.rollback()
            if time.monotonic() > deadline:
                raise RuntimeError('jobs still pending at the time limit')
            time.sleep(0.25)


def _stop(processes: list[multiprocessing.process.BaseProcess], stop: EventType) -> None:
    stop.set()
    for process in processes:
        process.join(30)
        if process.exitcode not in (0, None):
            raise RuntimeError(f'worker process exited with {process.exitcode}')


def _collect(db: Engine, label: str, workers: int, t0: datetime) -> Result:
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT due_dt, done_dt FROM jobs WHERE status = 'done'")).all()
        failed = conn.execute(sa.text("SELECT count(*) FROM jobs WHERE status NOT IN ('done', 'cancelled') "
                                      'AND due_dt <= :now'), {'now': _utc_naive()}).scalar()
    if failed:
        raise RuntimeError(f'{label}: {failed} jobs not done')
    lateness = [(done - due).total_seconds() for due, done in rows]
    last = max(done for _, done in rows).replace(tzinfo=UTC)
    return Result(label, workers, len(rows), (last - t0).total_seconds(), lateness)


def backlog(db: Engine, url: str, label: str, mode: str, workers: int, count: int) -> Result:
    """Everything due at one instant; drain it."""
    processes, stop = _start_processes(url, mode, workers, FAST_POLL, label)
    t0 = datetime.now(UTC) + timedelta(seconds=max(2.0, count / 20_000))
    _release_all_at(db, t0)
    time.sleep(max(0.0, (t0 - datetime.now(UTC)).total_seconds()))
    _wait_until_drained(db, timeout=3600)
    _stop(processes, stop)
    return _collect(db, label, workers, t0)


def noop_backlog(db: Engine, url: str, label: str, mode: str, workers: int, count: int) -> Result:
    """A backlog of ``count`` recorded no-op jobs; checks that each fired exactly once."""
    _insert_noop_jobs(db, count)
    result = backlog(db, url, label, mode, workers, count)
    if mode == 'worker':
        with db.connect() as conn:
            fired, distinct = conn.execute(sa.select(sa.func.count(), sa.func.count(effects.c.job_key.distinct()))
                                           ).one()
        if fired != count or distinct != count:
            raise RuntimeError(f'{label}: {fired} effects for {distinct} of {count} jobs')
    return result


def steady(db: Engine, url: str, rate: int, seconds: int) -> Result:
    """``rate`` jobs falling due per second for ``seconds``, one worker polling every second."""
    count = rate * seconds
    _insert_noop_jobs(db, count)
    processes, stop = _start_processes(url, 'worker', 1, 1.0, 'steady')
    t0 = datetime.now(UTC) + timedelta(seconds=2)
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE jobs SET due_dt = :t0 + (id - 1) * (interval '1 second' / :rate)"),
                     {'t0': t0.replace(tzinfo=None), 'rate': rate})
    time.sleep(seconds + 2)
    _wait_until_drained(db, timeout=600)
    _stop(processes, stop)
    result = _collect(db, f'worker, recorded no-op, {rate}/s arriving, poll 1 s', 1, t0)
    result.seconds = seconds  # arrivals set the pace here, not the worker
    return result


def _make_timer_instances(url: str, count: int) -> None:
    """``count`` instances waiting on a 3-day timer that, by the real clock, fell due an hour ago."""
    from engine import runtime
    from engine.clock import FrozenClock, set_clock
    from engine.definitions import deploy
    from engine.directory import create_org_unit
    from engine.models.org_units import OrgUnit

    factory = create_session_factory(create_db_engine(url))
    previous = set_clock(FrozenClock(datetime.now(UTC) - timedelta(days=3, hours=1)))
    try:
        with factory.begin() as session:
            unit = session.scalars(sa.select(OrgUnit)).first() or create_org_unit(
                session, '430922101', '桃花江镇司法所', 'township', None)
            deploy(session, TIMER_BPMN.read_bytes(), actor=None, accept_warnings=True)
        for start in range(0, count, 100):
            with factory.begin() as session:
                unit = session.merge(unit)
                for _ in range(min(100, count - start)):
                    runtime.start_case(session, 'bench_timer_wait', {}, actor=None, org_unit=unit)
    finally:
        set_clock(previous)


def timer_backlog(db: Engine, url: str, workers: int, count: int) -> Result:
    """``count`` waiting instances whose timers all fall due at t0."""
    with db.begin() as conn:
        conn.execute(sa.text('DELETE FROM jobs'))  # the previous scenario's, all done
    _make_timer_instances(url, count)
    result = backlog(db, url, 'worker, BPMN timer → next user task', 'worker', workers, count)
    with db.connect() as conn:
        instances = conn.execute(sa.text('SELECT count(*) FROM process_instances')).scalar_one()
        opened = conn.execute(sa.text("SELECT count(*) FROM human_tasks WHERE bpmn_id = 'follow_up'")).scalar_one()
    if opened != instances:
        raise RuntimeError(f'{instances} instances but {opened} follow-up tasks')
    return result


# -- the table ----------------------------------------------------------------------------------------------

def print_results(title: str, results: list[Result]) -> None:
    """One row per scenario; ``× base`` is throughput over the bare per-job loop with the same jobs and workers."""
    base = {(r.jobs, r.workers): r.per_second for r in results if r.label == 'bare per job (baseline)'}
    print(f'\n{title}')
    print(f'{"scenario":44} {"workers":>7} {"jobs":>7} {"wall s":>7} {"jobs/s":>8} '
          f'{"late p50 s":>10} {"late p99 s":>10} {"× base":>7}')
    for r in results:
        ratio = r.per_second / base[(r.jobs, r.workers)] if (r.jobs, r.workers) in base else None
        print(f'{r.label:44} {r.workers:7d} {r.jobs:7d} {r.seconds:7.1f} {r.per_second:8.0f} '
              f'{r.pct(50):10.2f} {r.pct(99):10.2f} {"" if ratio is None else f"{ratio:7.2f}"}')
    sys.stdout.flush()


BARE_PER_JOB = 'bare per job (baseline)'


def run(options: Options) -> list[Row]:
    """The suite's rows: the worker against the bare per-job loop, same jobs and workers, at each backlog size
    (jobs/s, higher is better, so the ratio is worker ÷ bare; lateness p99 in seconds), and the BPMN timer
    backlog. Growth is that of the per-job cost (1 ÷ jobs/s) and of the lateness p99 over the sizes.
    --quick: one worker, small backlogs, a small timer backlog, no steady-arrival scenario."""
    if not options.postgres:
        return [Row('skipped: the timers run on PostgreSQL only (--skip-postgres given)', None, '')]
    sizes = options.sizes_for('timers', [300, 3_000], [1_000, 10_000, 100_000])
    worker_counts = (1,) if options.quick else (1, 2)
    url = fresh_database('postgresql')
    db = create_db_engine(url)
    effects_metadata.create_all(db)
    rows: list[Row] = []
    for workers in worker_counts:
        rates, lateness = [], []
        for count in sizes:
            bare = noop_backlog(db, url, BARE_PER_JOB, 'bare per job', workers, count)
            worker = noop_backlog(db, url, 'worker, recorded no-op', 'worker', workers, count)
            label = f'worker, recorded no-op, {workers} proc, {count:,} due'
            base = f'bare per job, {workers} proc, {count:,} due'
            rates.append((count, Row(f'{label}: throughput', worker.per_second, 'jobs/s ↑', base,
                                     bare.per_second, ratio(worker.per_second, bare.per_second))))
            lateness.append((count, Row(f'{label}: lateness p99', worker.pct(99), 's', base, bare.pct(99),
                                        ratio(worker.pct(99), bare.pct(99)), 'p99 at 100,000')))
        rows += with_growth(rates, 'per-job cost', cost=lambda rate: 1 / rate)
        rows += with_growth(lateness)
    timer_count = options.sizes_for('timer-instances', [50], [1_000])[0]
    bare = noop_backlog(db, url, BARE_PER_JOB, 'bare per job', 1, timer_count)
    timer = timer_backlog(db, url, 1, timer_count)
    rows.append(Row(f'worker, BPMN timer → next user task, 1 proc, {timer_count:,} due: throughput',
                    timer.per_second, 'jobs/s ↑', f'bare per job, 1 proc, {timer_count:,} due', bare.per_second,
                    ratio(timer.per_second, bare.per_second)))
    if not options.quick:
        result = steady(db, url, 200, 10)
        rows.append(Row('worker, 200/s arriving, poll 1 s: lateness p99', result.pct(99), 's',
                        'the poll interval', 1.0, ratio(result.pct(99), 1.0)))
    db.dispose()
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--sizes', type=int, nargs='+', default=[10_000, 100_000])
    parser.add_argument('--timer-instances', type=int, default=1_000)
    parser.add_argument('--steady-rate', type=int, default=200)
    args = parser.parse_args(argv)
    url = fresh_database('postgresql')
    db = create_db_engine(url)
    effects_metadata.create_all(db)
    results = []
    for count in args.sizes:
        for workers in (1, 2):
            for label, mode in (('bare batch (baseline)', 'bare batch'), ('bare per job (baseline)', 'bare per job'),
                                ('worker, recorded no-op', 'worker')):
                results.append(noop_backlog(db, url, label, mode, workers, count))
                print_results('so far', results[-1:])
    for workers in (1, 2):
        results.append(timer_backlog(db, url, workers, args.timer_instances))
    results.append(steady(db, url, args.steady_rate, 10))
    print_results(f'Due jobs on PostgreSQL, all due at one instant (batch {BATCH}); '
                  f'lateness = fired − due', results)


if __name__ == '__main__':
    main(sys.argv[1:])

