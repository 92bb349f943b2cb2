"""Helpers for the deadline, clock and reminder tests: Beijing times and a minimal job runner.

The runner stands in for the worker (tested on its own): it runs every pending reminder and escalation
job that is due, through the registered handlers, oldest first, one commit each.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.clock import LOCAL_ZONE, FrozenClock, now
from engine.jobs import handler_for
from engine.models.jobs import Job


def bj(text: str) -> datetime:
    """A Beijing wall-clock time, ``'2025-10-16 23:59:59'``."""
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_ZONE)


def local(when: datetime | None) -> str | None:
    """``when`` as Beijing wall-clock text, ``'2025-10-16 23:59:59'``."""
    return None if when is None else when.astimezone(LOCAL_ZONE).strftime('%Y-%m-%d %H:%M:%S')


def set_time(clock: FrozenClock, text: str) -> None:
    """Move the frozen clock to Beijing time ``text``."""
    clock.set(bj(text))


def run_due_jobs(session: Session) -> list[Job]:
    """Run every due pending reminder/escalation job, oldest first; return them in the order run."""
    jobs = session.scalars(sa.select(Job).where(Job.status == 'pending', Job.kind.in_(('reminder', 'escalation')),
                                                Job.due_dt <= now()).order_by(Job.due_dt, Job.id)).all()
    for job in jobs:
        handler_for(job.kind)(session, job)
        job.status, job.done_dt = 'done', now()
        session.commit()
    return list(jobs)


def task_jobs(session: Session, task_id: int) -> list[Job]:
    """The reminder and escalation jobs of a task, by due time."""
    return list(session.scalars(sa.select(Job).where(Job.human_task_id == task_id,
                                                     Job.kind.in_(('reminder', 'escalation')))
                                .order_by(Job.due_dt, Job.id)))
