"""Test-only job kinds with a visible effect, and a worker process to kill.

``test_effect`` jobs insert one row per run into ``test_job_effects`` (a table of the tests, not of the
product), in the job's own transaction; counting rows per job key shows whether a job's effect happened
never, once or twice. Run as a process for the crash tests::

    python -m tests.engine.worker_support DATABASE_URL --name w1 --lock-seconds 1 --batch 10
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from types import FrameType

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.db import create_db_engine, create_session_factory
from engine.jobs import register_handler
from engine.models.jobs import Job
from engine.worker import Worker

EFFECT_KIND = 'test_effect'

effects_metadata = sa.MetaData()
effects = sa.Table(
    'test_job_effects', effects_metadata,
    sa.Column('id', sa.Integer, primary_key=True),
    sa.Column('job_key', sa.String(200), nullable=False),
    sa.Column('worker', sa.String(64), nullable=True),
)


def record_effect(session: Session, job: Job) -> None:
    """The ``test_effect`` handler: sleep ``payload['sleep']`` seconds, then record one effect row."""
    pause = float(job.payload.get('sleep', 0))
    if pause:
        time.sleep(pause)
    session.execute(effects.insert().values(job_key=job.key, worker=job.lock_owner))


def register() -> None:
    """Register the test handlers (replacing earlier registrations of the same kinds)."""
    register_handler(EFFECT_KIND, record_effect, replace=True)


def create_effects_table(db: Engine) -> None:
    """Create an empty effects table (dropping a leftover one)."""
    effects_metadata.drop_all(db)
    effects_metadata.create_all(db)


def effect_counts(session: Session) -> dict[str, int]:
    """How many effect rows each job key has."""
    rows = session.execute(sa.select(effects.c.job_key, sa.func.count()).group_by(effects.c.job_key)).all()
    return {key: count for key, count in rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('url')
    parser.add_argument('--name', required=True)
    parser.add_argument('--lock-seconds', type=float, default=1.0)
    parser.add_argument('--batch', type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f'{args.name} %(message)s')
    register()
    worker = Worker(create_session_factory(create_db_engine(args.url)), name=args.name, batch_size=args.batch,
                    lock_seconds=args.lock_seconds, poll_interval=0.05)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    worker.run_forever(stop)


if __name__ == '__main__':
    main()
