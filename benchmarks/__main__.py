"""Run every benchmark in benchmarks/ and print one table: each figure with the baseline it is compared to,
measured in the same run on the same machine, the ratio, the issue's target, and how cost grows with the
input where a benchmark runs at several sizes.

    .venv/bin/python -m benchmarks [--quick] [--only complete,tasklist,...] [--skip-postgres]
        [--sizes tasklist=1000,10000 --sizes timers=1000]

PostgreSQL is ``BENCH_POSTGRES_URL`` (default ``…/fengqiao_bench``); the to-do list and supervision benchmarks
use databases named after it with a suffix. A benchmark that fails is reported in the table, and the rest run.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable

from benchmarks.suite import Options, Row, adapter, print_suite_table


def _runner(module: str) -> Callable[[Options], list[Row]]:
    """The ``run`` of ``benchmarks.<module>``, imported only when it is run (each pulls in much of the app)."""
    def run(options: Options) -> list[Row]:
        from importlib import import_module

        result: list[Row] = import_module(f'benchmarks.{module}').run(options)
        return result

    return run


#: name → run, in the order of the issue's list
BENCHMARKS: dict[str, Callable[[Options], list[Row]]] = {
    'complete': _runner('bench_complete'),
    'case_age': adapter('bench_case_age', ['--years', '0.5', '--no-growth'], []),
    'http': adapter('bench_http', ['--clients', '10', '--seconds', '3', '--warmup', '1'], []),
    'tasklist': _runner('bench_tasklist'),
    'timers': _runner('bench_timers'),
    'supervision': _runner('bench_supervision'),
}


def _sizes(values: list[str]) -> dict[str, list[int]]:
    sizes = {}
    for value in values:
        name, _, numbers = value.partition('=')
        try:
            sizes[name] = [int(n.replace('_', '')) for n in numbers.split(',') if n]
        except ValueError:
            raise SystemExit(f'--sizes {value}: expected NAME=N,N,…') from None
    return sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='small sizes and few samples (a few minutes)')
    parser.add_argument('--only', default='', help=f'comma-separated, of: {", ".join(BENCHMARKS)}')
    parser.add_argument('--skip-postgres', action='store_true', help='SQLite only (the timers are then skipped)')
    parser.add_argument('--sizes', action='append', default=[], metavar='NAME=N,N',
                        help='input sizes of one benchmark (tasklist, timers, timer-instances, supervision, complete)')
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(',') if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f'unknown benchmark {", ".join(unknown)}; known: {", ".join(BENCHMARKS)}')
    options = Options(quick=args.quick, postgres=not args.skip_postgres, sizes=_sizes(args.sizes))
    sections: list[tuple[str, list[Row]]] = []
    failed = False
    started = time.perf_counter()
    for name in names:
        print(f'\n=== {name} ===', flush=True)
        began = time.perf_counter()
        try:
            rows = BENCHMARKS[name](options)
        except Exception as error:  # one broken benchmark must not cost the others' figures
            traceback.print_exc()
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ''
            rows, failed = [Row(f'FAILED: {type(error).__name__}: {first_line}'[:120], None, '')], True
        sections.append((f'{name} — {time.perf_counter() - began:.0f} s', rows))
    print_suite_table(sections, title=f'Fengqiao benchmark suite{" (--quick)" if args.quick else ""}, '
                      f'{time.perf_counter() - started:.0f} s. Ratio = figure ÷ baseline (for jobs/s ↑, higher '
                      'is better); growth: slope of log cost over log size on the largest size of each series')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
