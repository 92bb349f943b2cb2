"""The job-handler registry: what the worker runs for each kind of job.

The worker claims a due :class:`~engine.models.jobs.Job`, looks its ``kind`` up here and calls the
handler inside the job's unit of work. A handler changes state, flushes and never commits; it must be
idempotent (running the same job twice changes nothing the second time), because a worker that dies
after the effect but before marking the job done leaves it to be run again.

Handlers register by kind, so the worker never imports the modules that implement them::

    from engine.jobs import register_handler

    register_handler('reminder', handle_reminder)

The engine's own handlers (``reminder`` and ``escalation`` in :mod:`engine.reminders`, ``timer`` in
:mod:`engine.worker`, ``migration`` in :mod:`engine.migration`, ``import`` in :mod:`engine.imports`) are
loaded on the first lookup, so a worker that imports only this module still finds them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.clock import now
from engine.models.jobs import Job

__all__ = ['JobHandler', 'enqueue_batch_run', 'handler_for', 'register_handler', 'registered_kinds',
           'unregister_handler']

#: A job handler: acts on one claimed job inside the caller's transaction.
JobHandler = Callable[[Session, Job], None]

#: Modules whose import registers the engine's own handlers.
_BUILTIN_MODULES = ('engine.reminders', 'engine.worker', 'engine.migration', 'engine.imports')

_handlers: dict[str, JobHandler] = {}


def register_handler(kind: str, fn: JobHandler, *, replace: bool = False) -> JobHandler:
    """Make ``fn`` the handler of jobs of ``kind``.

    Registering the same function again is harmless (modules may be imported twice); registering a
    different one for a kind that has a handler is refused unless ``replace`` is set.

    :param kind: the job kind (``Job.kind``), e.g. ``reminder``
    :param fn: called as ``fn(session, job)``
    :param replace: allow replacing another handler (tests)
    :return: ``fn``, so this can be used to decorate a function
    """
    current = _handlers.get(kind)
    if current is not None and current is not fn and not replace:
        raise ValueError(f'job kind {kind!r} already has a handler: {current!r}')
    _handlers[kind] = fn
    return fn


def unregister_handler(kind: str) -> None:
    """Forget the handler of ``kind`` (tests)."""
    _handlers.pop(kind, None)


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def handler_for(kind: str) -> JobHandler:
    """Return the handler of jobs of ``kind``.

    :raises KeyError: no handler is registered for ``kind``
    """
    if kind not in _handlers:
        _load_builtins()
    try:
        return _handlers[kind]
    except KeyError:
        raise KeyError(f'no handler registered for job kind {kind!r}') from None


def registered_kinds() -> frozenset[str]:
    """Every job kind with a handler."""
    _load_builtins()
    return frozenset(_handlers)


def enqueue_batch_run(session: Session, kind: str, batch_id: int, run: int) -> None:
    """Schedule run number ``run`` of a batch's ``kind`` job (an import or a migration), due now; a run whose
    key exists is never scheduled again."""
    key = f'{kind}:{batch_id}:{run}'
    if session.scalar(sa.select(Job.id).where(Job.key == key)) is not None:
        return
    session.add(Job(kind=kind, key=key, due_dt=now(), status='pending', attempts=0,
                    payload={'batch_id': batch_id, 'run': run}, created_dt=now()))
