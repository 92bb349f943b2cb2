"""The suite's shared parts: one row of the table, the options every benchmark's ``run`` takes, the growth
classifier, the table, and the adapters for benchmark modules that may not exist yet.

Every benchmark module exposes ``run(options) -> list[Row]``; ``python -m benchmarks`` (see
``benchmarks/__main__.py``) calls each in turn and prints their rows as one table. A row carries its figure,
the baseline it is compared to (measured in the same run on the same machine) and their ratio; rows of a
series measured at several input sizes carry the growth class of the series on its largest size.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from benchmarks.common import ROOT, Timing


@dataclass(frozen=True)
class Row:
    """One line of the suite's table.

    :param figure: what was measured (None when the benchmark could not measure it; ``name`` says why)
    :param unit: the unit of ``figure`` and ``baseline`` (``ms``, ``jobs/s``, ``KB``, …)
    :param baseline_name: what ``figure`` is compared to, measured in the same run
    :param ratio: figure ÷ baseline for costs; for rates (higher is better) the module says which way in ``unit``
    :param target: the issue's target for this figure, as text (``≤ 1.5×``, ``p95 ≤ 50 ms``), or ''
    :param growth: for the largest size of a series, how cost grows with the input (see :func:`classify_growth`)
    """

    name: str
    figure: float | None
    unit: str
    baseline_name: str = ''
    baseline: float | None = None
    ratio: float | None = None
    target: str = ''
    growth: str = ''


@dataclass(frozen=True)
class Options:
    """What every ``run`` is given.

    :param quick: small sizes and few samples: a run of the whole suite in a few minutes, for development
    :param postgres: whether PostgreSQL is measured (``BENCH_POSTGRES_URL``); SQLite always is
    :param sizes: per benchmark name, the input sizes to run instead of its defaults (``--sizes tasklist=1000,10000``)
    """

    quick: bool = False
    postgres: bool = True
    sizes: dict[str, list[int]] = field(default_factory=dict)

    def sizes_for(self, name: str, quick: Sequence[int], full: Sequence[int]) -> list[int]:
        """The sizes benchmark ``name`` runs at: those asked for, else its quick or full defaults."""
        return list(self.sizes.get(name) or (quick if self.quick else full))


def ratio(figure: float | None, baseline: float | None) -> float | None:
    """``figure / baseline``, or None when either is missing or the baseline is zero."""
    if figure is None or not baseline:
        return None
    return figure / baseline


def timing_rows(name: str, timing: Timing, base_name: str, base: Timing, target: str = '') -> list[Row]:
    """Two rows for an operation timed against a baseline: p50 wall time and mean CPU time, each with its ratio."""
    return [Row(f'{name}: p50 wall', timing.pct(50), 'ms', f'{base_name}: p50 wall', base.pct(50),
                ratio(timing.pct(50), base.pct(50)), target),
            Row(f'{name}: mean CPU', timing.mean_cpu_ms, 'ms', f'{base_name}: mean CPU', base.mean_cpu_ms,
                ratio(timing.mean_cpu_ms, base.mean_cpu_ms), target)]


# -- growth -----------------------------------------------------------------------------------------------

def growth_slope(sizes: Sequence[float], costs: Sequence[float]) -> float:
    """The least-squares slope of log(cost) against log(size): 0 when cost stays flat, 1 when it is linear.

    >>> round(growth_slope([10, 100, 1000], [5, 50, 500]), 2)
    1.0
    >>> round(growth_slope([10, 100, 1000], [5, 5, 5]), 2)
    0.0
    """
    xs, ys = [math.log(s) for s in sizes], [math.log(c) for c in costs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / spread


def classify_growth(sizes: Sequence[float], costs: Sequence[float]) -> str:
    """How cost grows with size, from the slope on log–log scales, with the slope itself.

    A slope near 0 is flat (below -0.1, falling: the fixed cost dominates the small sizes); near 1 linear;
    above 1.3 worse than linear. Between, the cost grows but slower
    than the input: logarithmic when a + b·log(size) fits the points better than a + b·size does (the
    usual shape of an index lookup with a fixed cost on top), else sublinear.

    >>> classify_growth([1_000, 10_000, 100_000], [2.0, 2.1, 2.05])
    'flat (slope 0.01)'
    >>> classify_growth([1_000, 10_000, 100_000], [1.0, 10.5, 98.0])
    'linear (slope 1.00)'
    >>> classify_growth([1_000, 10_000, 100_000], [1.0, 2.0, 3.0])
    'logarithmic (slope 0.24)'
    >>> classify_growth([100, 1_000, 10_000], [1.0, 100.0, 10_000.0])
    'superlinear (slope 2.00)'
    >>> classify_growth([10, 100], [8.0, 2.0])
    'falling (slope -0.60)'
    >>> classify_growth([1_000], [3.0])
    'one size only'
    """
    points = [(s, c) for s, c in zip(sizes, costs, strict=True) if s > 0 and c is not None and c > 0]
    if len({s for s, _ in points}) < 2:
        return 'one size only'
    xs, ys = [s for s, _ in points], [c for _, c in points]
    slope = growth_slope(xs, ys)
    if slope < -0.1:
        kind = 'falling'
    elif slope < 0.1:
        kind = 'flat'
    elif slope > 1.3:
        kind = 'superlinear'
    elif slope >= 0.7:
        kind = 'linear'
    else:
        kind = 'logarithmic' if _residual(xs, ys, math.log) < _residual(xs, ys, float) else 'sublinear'
    return f'{kind} (slope {slope:.2f})'


def _residual(xs: Sequence[float], ys: Sequence[float], transform: Callable[[float], float]) -> float:
    """The squared error of the least-squares line of ``ys`` against ``transform(xs)``."""
    ts = [transform(x) for x in xs]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    spread = sum((t - mt) ** 2 for t in ts)
    b = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / spread if spread else 0.0
    return sum((y - (my + b * (t - mt))) ** 2 for t, y in zip(ts, ys, strict=True))


def with_growth(series: Sequence[tuple[int, Row]], what: str = '',
                cost: Callable[[float], float] | None = None) -> list[Row]:
    """The rows of one series (size, row), in size order, the largest carrying the growth class of its figures.

    :param what: what grows, when it is not the row's figure itself (e.g. ``per-job cost``)
    :param cost: turns a figure into a cost (``lambda rate: 1 / rate`` for a throughput); the figure itself if None
    """
    ordered = sorted(series, key=lambda item: item[0])
    rows = [row for _, row in ordered]
    to_cost = cost or (lambda figure: figure)
    measured = [(size, to_cost(row.figure)) for size, row in ordered if row.figure]
    if len(measured) < 2:
        return rows
    growth = classify_growth([s for s, _ in measured], [f for _, f in measured])
    label = f'{growth}{f" ({what})" if what else ""} over {measured[0][0]:,}–{measured[-1][0]:,}'
    return [*rows[:-1], replace(rows[-1], growth=label)]


# -- the table --------------------------------------------------------------------------------------------

def _num(value: float | None) -> str:
    if value is None:
        return '—'
    if value >= 100:
        return f'{value:,.0f}'
    return f'{value:.2f}' if value >= 1 else f'{value:.3f}'


def machine() -> str:
    """The machine and code measured: CPU, cores, load, Python, commit and edited files."""
    def git(*args: str) -> str:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as info:
            cpu = next((line.split(':', 1)[1].strip() for line in info if line.startswith('model name')), cpu)
    except OSError:
        pass
    changed = len([line for line in git('status', '--porcelain', '--', 'engine', 'web', 'workflows').splitlines()
                   if line])
    load = '/'.join(f'{x:.1f}' for x in os.getloadavg())
    return (f'{cpu}, {os.cpu_count()} cores, load {load}; Python {platform.python_version()}; '
            f'commit {git("rev-parse", "--short", "HEAD")} + {changed} changed files under engine/ web/ workflows/')


def print_suite_table(sections: Sequence[tuple[str, list[Row]]], *, title: str) -> None:
    """The one table: a block per benchmark, each row with its baseline, ratio, target and growth."""
    width = max([38, *(len(row.name) for _, rows in sections for row in rows)])
    base_width = max([20, *(len(row.baseline_name) for _, rows in sections for row in rows)])
    print(f'\n{title}\n{machine()}\n')
    header = (f'{"figure":{width}} {"value":>10} {"unit":8} {"baseline":{base_width}} {"value":>10} '
              f'{"ratio":>7}  {"target":14} growth')
    print(header)
    print('─' * len(header))
    for section, rows in sections:
        print(f'[{section}]')
        for row in rows:
            ratio_text = '—' if row.ratio is None else f'{row.ratio:.2f}×'
            print(f'{row.name:{width}} {_num(row.figure):>10} {row.unit:8} {row.baseline_name:{base_width}} '
                  f'{_num(row.baseline):>10} {ratio_text:>7}  {row.target:14} {row.growth}')
    sys.stdout.flush()


# -- modules written elsewhere ----------------------------------------------------------------------------

def _module(name: str) -> Any | None:
    if importlib.util.find_spec(f'benchmarks.{name}') is None:
        return None
    return importlib.import_module(f'benchmarks.{name}')


def adapter(name: str, quick_argv: Sequence[str], full_argv: Sequence[str]) -> Callable[[Options], list[Row]]:
    """A ``run`` for ``benchmarks/<name>.py``, which other work provides: its own ``run(options)`` when it has
    one; else its ``main(argv)``, whose own table is printed above the suite's (its figures are not in the
    suite's rows then); else a single row saying it is absent."""
    def run(options: Options) -> list[Row]:
        module = _module(name)
        if module is None:
            return [Row(f'skipped: benchmarks/{name}.py is absent', None, '')]
        if callable(getattr(module, 'run', None)):
            rows = module.run(options)
            return [row if isinstance(row, Row) else Row(*row) for row in rows]
        if callable(getattr(module, 'main', None)):
            argv = list(quick_argv if options.quick else full_argv)
            print(f'\n== benchmarks.{name}.main({argv}) — no run(); its own table follows ==', flush=True)
            module.main(argv)
            return [Row(f'see the table benchmarks.{name} printed above (it has no run())', None, '')]
        return [Row(f'skipped: benchmarks/{name}.py has neither run() nor main()', None, '')]

    return run
