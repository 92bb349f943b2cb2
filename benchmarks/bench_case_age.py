"""Cost against case age: one corrections case carried through years of monthly reports, leaves and alarms.

A 缓刑 case is received and brought to 矫正执行 through the real engine on a frozen clock (the drivers of
tests/workflows/corrections), then the clock moves month by month. Each month the worker fires what fell
due (the monthly 定期报告 timer), and the township completes the report; every 3 months an alarm (越界,
verified as 误报) and every 6 months a short leave (approved by the township, closed on return) are started
and carried through. Every command is one transaction on a fresh session, timed by kind.

Figures: the first N commands of each kind against the last N of the same kind (the baseline is the
first N, same run, same database), the stored size of the lifecycle instance's serialized state after
reception and at the end (target under 200 KB), and of all the case's instances. The same story also runs
at a tenth of the length; the per-month costs of both runs, relative to each run's first commands, are
fitted to flat, logarithmic and linear growth with age.

    .venv/bin/python -m benchmarks.bench_case_age [--years 5] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

import workflows
from benchmarks.common import PG_URL, Timing, fresh_database
from benchmarks.suite import Options, Row, ratio
from engine import runtime
from engine.access import load_scope
from engine.clock import FrozenClock, set_clock
from engine.db import create_db_engine, create_session_factory
from engine.directory import add_membership, configure_hashing, create_user, get_group
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import Worker
from tests.workflows.corrections.conftest import FEMALE_ID, Corrections, build_units
from workflows.corrections.operations import add_months
from workflows.demo import deploy_shipped

#: the tests' frozen start: 2025-09-26 09:00 Beijing time
START = datetime(2025, 9, 26, 1, 0, tzinfo=UTC)
#: the measured case runs this far behind the warm-up case
WARMUP_OFFSET = timedelta(days=10)
TARGET_RATIO = 1.2
TARGET_STATE_BYTES = 200 * 1024
MEMBERS = {'lsj_staff': ('township_staff', 'xikuangshan'), 'lsj_officer': ('county_officer', 'lengshuijiang'),
           'lsj_chief': ('supervisor', 'lengshuijiang'), 'ld_chief': ('supervisor', 'loudi')}


@dataclass
class Sample:
    """One timed command."""

    kind: str
    month: int
    wall: float
    cpu: float


@dataclass
class Sizes:
    """Stored state of the case's instances, in bytes of serialized JSON."""

    lifecycle: int
    lifecycle_tasks: int
    total: int
    instances: int


@dataclass
class Run:
    """One case carried through ``months`` months."""

    months: int
    backend: str
    samples: list[Sample] = field(default_factory=list)
    sizes: dict[str, Sizes] = field(default_factory=dict)

    def kinds(self) -> list[str]:
        return list(dict.fromkeys(s.kind for s in self.samples))

    def of_kind(self, kind: str) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind]


# -- the story ----------------------------------------------------------------------------------------------

class AgeStory:
    """Drives one case month by month, timing every command on a fresh session.

    A second, warm-up case lives through the first months untimed, ten days ahead of the measured one:
    without it the measured case's first commands would also pay for cold caches (parsed specs, statement
    caches, the database's pages) and its first-vs-last ratio would flatter the last. It is closed once
    every command kind has run, so that it adds nothing to the later months.
    """

    def __init__(self, factory: sessionmaker[Session], clock: FrozenClock, months: int, backend: str) -> None:
        self.factory, self.clock = factory, clock
        self.run = Run(months, backend)
        self.month = 0
        self.timing = False
        self.warmup_months = min(months, 6)
        self.worker = Worker(factory, name='bench-case-age', batch_size=100, clock=clock)
        self.warmup_id, self.case_id = self._receive(months)

    def _receive(self, months: int) -> tuple[int, int]:
        """Units, users, shipped diagrams, and both cases brought to supervision (untimed set-up)."""
        session = self.factory()
        units = build_units(session)
        users: dict[str, User] = {}
        for name, (group, unit_name) in MEMBERS.items():
            unit = getattr(units, unit_name)
            users[name] = create_user(session, name, name, 'x', unit, actor=None, enforce_policy=False)
            add_membership(session, users[name], get_group(session, group, group), unit, actor=None)
        deploy_shipped(session, lambda _: None)
        session.commit()
        self.user_ids = {name: user.id for name, user in users.items()}
        driver = Corrections(session, self.clock, self.worker, units, users)
        # Both terms outlast the run by a quarter, so that no 期满鉴定 timer (30 days before the end) falls in
        # it: closing the warm-up case early leaves its 期满解除 instance waiting on that timer.
        term = {'term_end': add_months(date(2025, 9, 25), months + 4).isoformat(), 'sentence': '有期徒刑三年，缓刑五年'}
        warmup = driver.receive(person_name='张某', id_number=FEMALE_ID, **term)
        # The measured case, received ten days on: its reports fall due on the 6th, the warm-up's on the 26th.
        self.clock.set(WARMUP_OFFSET + START)
        case = driver.receive(**term)
        result = warmup.id, case.id
        session.close()
        return result

    def _timed(self, kind: str, command: Callable[[Session, User], object], user: str) -> None:
        with self.factory() as session:
            actor = session.get(User, self.user_ids[user])
            assert actor is not None
            w, c = time.perf_counter(), time.process_time()
            command(session, actor)
            session.commit()
            cpu, wall = time.process_time() - c, time.perf_counter() - w
        if self.timing:
            self.run.samples.append(Sample(kind, self.month, wall, cpu))

    def _task_id(self, case_id: int, bpmn_id: str) -> int:
        with self.factory() as session:
            ids = session.scalars(sa.select(HumanTask.id).where(
                HumanTask.case_id == case_id, HumanTask.bpmn_id == bpmn_id, HumanTask.status == 'open')).all()
        if len(ids) != 1:
            raise RuntimeError(f'month {self.month}, case {case_id}: {len(ids)} open {bpmn_id} tasks')
        return ids[0]

    def complete(self, kind: str, case_id: int, bpmn_id: str, data: dict[str, Any], user: str = 'lsj_staff') -> None:
        """Complete the case's one open ``bpmn_id`` task as ``user``."""
        task_id = self._task_id(case_id, bpmn_id)
        self._timed(kind, lambda s, actor: runtime.complete_task(s, task_id, data, actor=actor,
                                                                 scope=load_scope(s, actor)), user)

    def start(self, kind: str, case_id: int, key: str, data: dict[str, Any], user: str = 'lsj_staff') -> None:
        """Start the request ``key`` on the case as ``user``."""
        def command(session: Session, actor: User) -> None:
            runtime.start_case(session, key, {'case_id': case_id, **data}, actor=actor, org_unit=actor.org_unit,
                               scope=load_scope(session, actor))
        self._timed(kind, command, user)

    def fire_due(self) -> None:
        """Let the worker run every job that fell due, timed as one command per job."""
        while True:
            w, c = time.perf_counter(), time.process_time()
            claimed = self.worker.run_once()
            cpu, wall = time.process_time() - c, time.perf_counter() - w
            if not claimed:
                return
            for _ in range(claimed if self.timing else 0):
                self.run.samples.append(Sample('worker fires a due job', self.month, wall / claimed, cpu / claimed))

    def month_of_work(self, case_id: int, month: int) -> None:
        """Fire what fell due, then the month's report, and the quarter's alarm and half-year's leave."""
        self.fire_due()
        today = self.clock.today()
        self.complete('complete monthly report', case_id, 'regular', {
            'reported': True, 'reported_on': today.isoformat(), 'report_content': '按时报告，思想稳定'})
        if month % 3 == 0:
            self.start('start alarm', case_id, 'corrections_alarm', {
                'alarm_type': '越界', 'occurred_at': f'{today.isoformat()}T08:15:00',
                'location': '冷水江市与新化县交界'})
            self.complete('complete alarm check', case_id, 'verify', {
                'finding': '误报', 'notes': '定位漂移，电话核实在家'})
        if month % 6 == 0:
            leave_from, leave_to = today + timedelta(days=3), today + timedelta(days=7)
            self.start('start leave', case_id, 'corrections_leave', {
                'leave_from': leave_from.isoformat(), 'leave_to': leave_to.isoformat(), 'destination': '长沙市',
                'reason': '陪同母亲就医', 'applied_on': today.isoformat()})
            self.complete('complete leave approval', case_id, 'township_approve', {
                'approved': True, 'approval_opinion': '同意外出'})
            self.complete('complete leave return', case_id, 'away', {
                'returned_on': leave_to.isoformat(), 'checkins': '每日视频核查正常'})

    def close(self, case_id: int) -> None:
        """End the case (终止, 死亡): its report chain stops."""
        today = self.clock.today().isoformat()
        self.start('', case_id, 'corrections_release', {'reason': '死亡', 'event_on': today}, user='lsj_officer')
        self.complete('', case_id, 'terminate', {'event_on': today, 'termination_notes': '家属报告'}, 'lsj_officer')
        self.complete('', case_id, 'notify_termination', {
            'notified_on': today, 'notified_bodies': '法院、检察院、公安'}, 'lsj_officer')

    def live_month(self, month: int) -> None:
        """Move to the next month and do its work: the warm-up case's untimed, then the measured case's."""
        self.month = month
        # A day past each case's monthly due date, so that month's report timer has fallen due.
        warmup_moment = datetime.combine(add_months(date(2025, 9, 27), month), START.timetz())
        if month <= self.warmup_months + 1:  # one month more, untimed: whatever the closed case left due
            self.timing = False
            self.clock.set(warmup_moment)
            if month <= self.warmup_months:
                self.month_of_work(self.warmup_id, month)
            else:
                self.fire_due()
            if month == self.warmup_months:
                self.close(self.warmup_id)
        self.clock.set(datetime.combine(add_months((START + WARMUP_OFFSET).date(), month) + timedelta(days=1),
                                        START.timetz()))
        self.timing = True
        self.month_of_work(self.case_id, month)

    def sizes(self) -> Sizes:
        """Serialized state sizes of the case's instances, as stored."""
        with self.factory() as session:
            length = (sa.func.octet_length(sa.cast(ProcessInstance.state, sa.Text)) if self.run.backend == 'postgresql'
                      else sa.func.length(sa.cast(ProcessInstance.state, sa.LargeBinary)))
            rows = session.execute(sa.select(ProcessInstance.is_lifecycle, ProcessInstance.task_count, length)
                                   .where(ProcessInstance.case_id == self.case_id)).all()
        lifecycle = [(size, tasks) for is_lifecycle, tasks, size in rows if is_lifecycle]
        if len(lifecycle) != 1:
            raise RuntimeError(f'{len(lifecycle)} lifecycle instances')
        return Sizes(lifecycle[0][0], lifecycle[0][1], sum(size for *_, size in rows), len(rows))


def age_case(backend: str, months: int) -> Run:
    """Carry one case through ``months`` months on a fresh ``backend`` database."""
    db = create_db_engine(fresh_database(backend))
    clock = FrozenClock(START)
    previous = set_clock(clock)
    try:
        story = AgeStory(create_session_factory(db), clock, months, backend)
        story.run.sizes['start'] = story.sizes()
        for month in range(1, months + 1):
            story.live_month(month)
        story.run.sizes['end'] = story.sizes()
    finally:
        set_clock(previous)
        db.dispose()
    return story.run


# -- the figures --------------------------------------------------------------------------------------------

def window(count: int, cap: int) -> int:
    """How many commands of a kind form its 'first N' and 'last N': a quarter of them, at most ``cap``."""
    return min(cap, count // 4) or (1 if count >= 2 else 0)


def metric(sample: Sample, backend: str) -> float:
    """The cost compared: CPU on SQLite (in-process, steadier on a shared machine); wall on PostgreSQL,
    whose work happens in the server process."""
    return sample.cpu if backend == 'sqlite' else sample.wall


def print_first_last(run: Run, cap: int) -> None:
    """First N against last N of each kind, with their ratio (CPU mean and wall median)."""
    print(f'\nCase age {run.months} months on {run.backend}: first N commands (baseline) vs last N of the '
          f'same kind; target ≤ {TARGET_RATIO}×')
    print(f'{"command":26} {"count":>5} {"N":>3} {"first cpu":>9} {"last cpu":>9} {"× cpu":>6} '
          f'{"first p50":>9} {"last p50":>9} {"× wall":>6} {"≤1.2×":>5}')
    totals = [0.0, 0.0, 0.0, 0.0]
    for kind in run.kinds():
        samples = run.of_kind(kind)
        n = window(len(samples), cap)
        if not n:
            print(f'{kind:26} {len(samples):5d}   —  (too few to compare)')
            continue
        first = Timing([s.wall for s in samples[:n]], [s.cpu for s in samples[:n]])
        last = Timing([s.wall for s in samples[-n:]], [s.cpu for s in samples[-n:]])
        row = [first.mean_cpu_ms, last.mean_cpu_ms, first.pct(50), last.pct(50)]
        totals = [total + value for total, value in zip(totals, row, strict=True)]
        _print_row(kind, str(len(samples)), str(n), row, run.backend)
    _print_row('one of each kind, summed', '', '', totals, run.backend)
    print('(ms per command; cpu = mean CPU ms in this process, p50 = median wall ms; the target is judged '
          f'on {"CPU" if run.backend == "sqlite" else "wall"})')


def _print_row(label: str, count: str, n: str, row: list[float], backend: str) -> None:
    first_cpu, last_cpu, first_wall, last_wall = row
    # Judged as in :func:`metric`: CPU on SQLite, wall on PostgreSQL.
    ratio = last_cpu / first_cpu if backend == 'sqlite' else last_wall / first_wall
    verdict = 'ok' if ratio <= TARGET_RATIO else 'OVER'
    print(f'{label:26} {count:>5} {n:>3} {first_cpu:9.2f} {last_cpu:9.2f} {last_cpu / first_cpu:6.2f} '
          f'{first_wall:9.2f} {last_wall:9.2f} {last_wall / first_wall:6.2f} {verdict:>5}')


def print_sizes(run: Run) -> None:
    """Serialized state sizes after reception and at the end, against the 200 KB target."""
    print(f'\nStored state, case age {run.months} months on {run.backend} (target: lifecycle < '
          f'{TARGET_STATE_BYTES // 1024} KB)')
    print(f'{"when":28} {"lifecycle KB":>12} {"spiff tasks":>11} {"all KB":>9} {"instances":>9} {"within":>6}')
    for when, label in (('start', 'after reception'), ('end', f'after {run.months} months')):
        s = run.sizes[when]
        print(f'{label:28} {s.lifecycle / 1024:12.1f} {s.lifecycle_tasks:11d} {s.total / 1024:9.1f} '
              f'{s.instances:9d} {"yes" if s.lifecycle < TARGET_STATE_BYTES else "NO":>6}')
    start, end = run.sizes['start'], run.sizes['end']
    print(f'lifecycle end/start {end.lifecycle / start.lifecycle:.2f}×; all instances grow '
          f'{(end.total - start.total) / 1024 / run.months:.1f} KB a month')


def relative_points(run: Run, cap: int) -> list[tuple[float, float]]:
    """(age in months, the month's mean command cost relative to the first N of the same kind)."""
    base = {}
    for kind in run.kinds():
        samples = run.of_kind(kind)
        n = window(len(samples), cap) or len(samples)
        base[kind] = statistics.fmean(metric(s, run.backend) for s in samples[:n])
    by_month: dict[int, list[float]] = {}
    for s in run.samples:
        by_month.setdefault(s.month, []).append(metric(s, run.backend) / base[s.kind])
    return [(float(month), statistics.fmean(values)) for month, values in sorted(by_month.items())]


@dataclass
class Fit:
    """y = a + b·f(age), with its residual sum of squares and the growth it predicts over the range."""

    a: float
    b: float
    rss: float
    growth: float
    #: two standard errors of ``growth``: a growth inside ±noise is no growth
    noise: float


def fit(ages: list[float], costs: list[float], f: Callable[[float], float]) -> Fit:
    """Least squares of ``costs`` on ``f(ages)``."""
    xs = [f(age) for age in ages]
    mx, my = statistics.fmean(xs), statistics.fmean(costs)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, costs, strict=True)) / sxx
    a = my - b * mx
    rss = sum((y - a - b * x) ** 2 for x, y in zip(xs, costs, strict=True))
    span = f(max(ages)) - f(1.0)
    return Fit(a, b, rss, b * span, 2 * math.sqrt(rss / max(1, len(xs) - 2) / sxx) * abs(span))


def print_growth(points: list[tuple[float, float]]) -> None:
    """Fit flat, log and linear growth to the relative per-month costs of both runs, and name the best."""
    ages, costs = [a for a, _ in points], [c for _, c in points]
    mean = statistics.fmean(costs)
    top = int(max(ages))
    fits = {'flat': Fit(mean, 0.0, sum((c - mean) ** 2 for c in costs), 0.0, 0.0),
            'log': fit(ages, costs, math.log), 'linear': fit(ages, costs, float)}
    print(f'\nGrowth with age: {len(points)} per-month points from both runs, each the month\'s mean cost '
          'relative to its run\'s first N of the same kind')
    print(f'{"model":8} {"a":>7} {"b":>8} {"rms":>7} {f"growth 1→{top} months":>20} {"± 2 s.e.":>9}')
    for name, m in fits.items():
        print(f'{name:8} {m.a:7.3f} {m.b:8.4f} {math.sqrt(m.rss / len(points)):7.3f} {m.growth:+20.1%} '
              f'{m.noise:9.1%}')
    best = min(('log', 'linear'), key=lambda name: fits[name].rss)
    chosen = fits[best]
    # A growth within two standard errors, or under 5 % over the whole range, is no growth worth the name.
    verdict = 'flat' if abs(chosen.growth) < max(chosen.noise, 0.05) else best
    print(f'verdict: {verdict} (closest curve {best}: {chosen.growth:+.1%} ± {chosen.noise:.1%} over {top} months)')


def summed_first_last(run: Run, cap: int) -> tuple[float, float]:
    """One command of each kind, summed: the mean of its first N and of its last N (ms, by :func:`metric`)."""
    first = last = 0.0
    for kind in run.kinds():
        samples = run.of_kind(kind)
        n = window(len(samples), cap)
        if n:
            first += sum(metric(x, run.backend) for x in samples[:n]) / n * 1000
            last += sum(metric(x, run.backend) for x in samples[-n:]) / n * 1000
    return first, last


def run(options: Options) -> list[Row]:
    """The suite's rows: the last commands against the first of the same kinds, and the lifecycle's stored
    state at the end against its size after reception, for a case of 6 months (quick) or 5 years."""
    workflows.register()
    configure_hashing(time_cost=1, memory_cost=1024)
    months = options.sizes_for('case_age', [6], [60])[-1]
    backends = ('sqlite', 'postgresql') if options.postgres and not options.quick else ('sqlite',)
    rows = []
    for backend in backends:
        aged = age_case(backend, months)
        print_first_last(aged, 10)
        print_sizes(aged)
        first, last = summed_first_last(aged, 10)
        rows.append(Row(f'case age {months} months, {backend}: one command of each kind, last N', last, 'ms',
                        'the same kinds, first N', first, ratio(last, first), f'≤ {TARGET_RATIO}×'))
        start, end = aged.sizes['start'], aged.sizes['end']
        rows.append(Row(f'case age {months} months, {backend}: lifecycle stored state', end.lifecycle / 1024,
                        'KB', 'after reception', start.lifecycle / 1024, ratio(end.lifecycle, start.lifecycle),
                        f'< {TARGET_STATE_BYTES // 1024} KB'))
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--years', type=float, default=5.0, help='length of the long run (default 5)')
    parser.add_argument('--backend', choices=('sqlite', 'postgresql'), default='sqlite')
    parser.add_argument('--window', type=int, default=10, help='N: most commands of a kind compared at each end')
    parser.add_argument('--no-growth', action='store_true', help='skip the run at a tenth of the length')
    args = parser.parse_args(argv)
    if args.backend == 'postgresql':
        print(f'PostgreSQL: {PG_URL}')
    workflows.register()
    configure_hashing(time_cost=1, memory_cost=1024)
    months = max(2, round(args.years * 12))
    runs = [] if args.no_growth else [age_case(args.backend, max(2, round(months / 10)))]
    runs.append(age_case(args.backend, months))
    for run in runs:
        print_first_last(run, args.window)
        print_sizes(run)
    if len(runs) > 1:
        print_growth([p for run in runs for p in relative_points(run, args.window)])


if __name__ == '__main__':
    main(sys.argv[1:])
