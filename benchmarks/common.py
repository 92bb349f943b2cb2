"""Helpers shared by the benchmarks: fresh databases, timing, and the result table."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from engine.db import create_db_engine

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get('BENCH_POSTGRES_URL', 'postgresql+psycopg://postgres@127.0.0.1:5432/fengqiao_bench')


def fresh_database(backend: str) -> str:
    """Return the URL of an empty, migrated database on ``backend`` ('sqlite' or 'postgresql')."""
    if backend == 'sqlite':
        url = f'sqlite:///{tempfile.mkdtemp(prefix="fq-bench-")}/bench.db'
    else:
        url = PG_URL
        create_postgres_database(url, drop=True)
    migrate(url)
    return url


def create_postgres_database(url: str, *, drop: bool = False) -> None:
    """Create the PostgreSQL database named by ``url`` if it is missing (first dropping it if ``drop``)."""
    admin = create_db_engine(url.rsplit('/', 1)[0] + '/postgres', isolation_level='AUTOCOMMIT')
    name = url.rsplit('/', 1)[1]
    with admin.connect() as conn:
        if drop:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS {name}'))
        if not conn.execute(sa.text('SELECT 1 FROM pg_database WHERE datname = :name'), {'name': name}).first():
            conn.execute(sa.text(f'CREATE DATABASE {name}'))
    admin.dispose()


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema through the real migrations."""
    cfg = AlembicConfig(str(ROOT / 'alembic.ini'))
    cfg.set_main_option('sqlalchemy.url', url)
    command.upgrade(cfg, 'head')


@dataclass
class Timing:
    """Wall and CPU seconds of each repetition of one operation."""

    wall: list[float]
    cpu: list[float]

    def pct(self, p: float) -> float:
        """The p-th percentile of wall time, in milliseconds."""
        ordered = sorted(self.wall)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    @property
    def mean_cpu_ms(self) -> float:
        """Mean CPU time per repetition, in milliseconds."""
        return statistics.fmean(self.cpu) * 1000

    @property
    def per_second(self) -> float:
        """Repetitions per wall second, one after another."""
        return len(self.wall) / sum(self.wall)


def measure(operation: Callable[[int], None], repetitions: int) -> Timing:
    """Call ``operation(i)`` for i in range(repetitions), timing each call."""
    wall, cpu = [], []
    for index in range(repetitions):
        w, c = time.perf_counter(), time.process_time()
        operation(index)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return Timing(wall, cpu)


def measure_interleaved(operations: dict[str, Callable[[int], None]], repetitions: int) -> dict[str, Timing]:
    """Time several operations round by round (one call of each per round), so that load from elsewhere on
    the machine falls on all of them alike and their ratios stay fair."""
    wall: dict[str, list[float]] = {name: [] for name in operations}
    cpu: dict[str, list[float]] = {name: [] for name in operations}
    for index in range(repetitions):
        for name, operation in operations.items():
            w, c = time.perf_counter(), time.process_time()
            operation(index)
            cpu[name].append(time.process_time() - c)
            wall[name].append(time.perf_counter() - w)
    return {name: Timing(wall[name], cpu[name]) for name in operations}


def print_table(title: str, rows: list[tuple[str, Timing]], baseline: str) -> None:
    """Print rows of timings with each one's ratio to the ``baseline`` row (mean CPU time)."""
    base = dict(rows)[baseline].mean_cpu_ms
    print(f'\n{title}')
    print(f'{"measurement":52} {"p50 ms":>8} {"p99 ms":>8} {"cpu ms":>8} {"per s":>8} {"× base":>7}')
    for name, timing in rows:
        print(f'{name:52} {timing.pct(50):8.2f} {timing.pct(99):8.2f} {timing.mean_cpu_ms:8.2f} '
              f'{timing.per_second:8.1f} {timing.mean_cpu_ms / base:7.2f}')
