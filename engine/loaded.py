"""Workflows kept in memory between commands while their instance's revision is current.

Restoring a workflow from its stored state is a large share of a command's cost. A command that ran a workflow
and committed its state leaves the workflow here under its instance's id, revision and definition, and its
case's random public code (another database, a test's or a restored copy's, reuses ids and revisions); the next
command on that instance, in this process, takes it instead of restoring it, if the row it has just locked still
has that revision. Any other writer bumps the revision (it is the instance's version counter), so a workflow is
never reused after someone else moved the instance on.

A workflow is taken out, not shared: the command that holds it is its only user, and a command that fails never
puts it back. It comes back only when its transaction commits; any rollback, a savepoint's included, forgets
what the session would have put back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from engine.models.cases import Case
from engine.models.instances import ProcessInstance

__all__ = ['LoadedWorkflows', 'keep_after_commit', 'loaded_workflows', 'mark_reusable']

#: ``session.info`` keys: the workflows (by id) a command may leave behind, and those it saved
_REUSABLE_KEY = 'fengqiao_reusable_workflows'
_SAVED_KEY = 'fengqiao_saved_workflows'

Key = tuple[int, int, int, str]


class LoadedWorkflows:
    """A bounded, thread-safe map of workflows, least recently kept dropped first.

    :param size: how many workflows to keep (0 keeps none)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Key, BpmnWorkflow] = OrderedDict()
        self._lock = threading.Lock()
        #: how many takes found a workflow, and how many did not (for the benchmarks)
        self.hits = self.misses = 0

    def take(self, instance: ProcessInstance) -> BpmnWorkflow | None:
        """Remove and return the workflow of ``instance`` at its current revision, if one is kept."""
        key = _key_of(instance, instance.case)  # the case came with the lock (runtime._lock_instance)
        with self._lock:
            workflow = self._items.pop(key, None) if key is not None else None
            if workflow is None:
                self.misses += 1
            else:
                self.hits += 1
            return workflow

    def holds(self, instance_id: int) -> bool:
        """Whether a workflow of the instance is kept, at whatever revision."""
        with self._lock:
            return any(key[0] == instance_id for key in self._items)

    def put(self, key: Key, workflow: BpmnWorkflow) -> None:
        """Keep ``workflow`` under ``key``, dropping the oldest beyond the size."""
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = workflow
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every workflow (tests; a deploy needs no clearing: the definition id is in the key)."""
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


def _key_of(instance: ProcessInstance, case: Case | None) -> Key | None:
    """The key of ``instance`` and its ``case`` from their loaded attributes, read without a load (None if one is
    missing)."""
    state: dict[str, Any] = instance.__dict__
    values = (state.get('id'), state.get('revision'), state.get('definition_id'),
              case.__dict__.get('public_code') if case is not None else None)
    if None in values:
        return None
    return values  # type: ignore[return-value]


#: the process's workflows
loaded_workflows = LoadedWorkflows(256)


def mark_reusable(session: Session, workflow: BpmnWorkflow) -> None:
    """Let ``workflow`` be kept once its state is saved and committed (a command's own workflow, not a
    migration's or a reader's)."""
    session.info.setdefault(_REUSABLE_KEY, {})[id(workflow)] = workflow


def keep_after_commit(session: Session, instance: ProcessInstance, workflow: BpmnWorkflow) -> None:
    """Note that ``workflow``'s state has just been flushed to ``instance``: keep it if the transaction commits.

    Called after the flush, so nothing the command does afterwards changes it; a later save of the same instance
    in the same transaction replaces the entry.
    """
    if session.info.get(_REUSABLE_KEY, {}).get(id(workflow)) is workflow:
        session.info.setdefault(_SAVED_KEY, {})[instance.id] = (instance, workflow)


@event.listens_for(Session, 'after_commit')
def _keep_saved(session: Session) -> None:
    saved: dict[int, tuple[ProcessInstance, BpmnWorkflow]] = session.info.pop(_SAVED_KEY, {})
    session.info.pop(_REUSABLE_KEY, None)
    for instance, workflow in saved.values():
        # An attribute expired since the flush means we no longer know the revision: keep nothing.
        key = _key_of(instance, instance.__dict__.get('case'))
        if key is not None:
            loaded_workflows.put(key, workflow)


@event.listens_for(Session, 'after_soft_rollback')
def _forget_saved(session: Session, previous_transaction: SessionTransaction) -> None:
    session.info.pop(_SAVED_KEY, None)
    session.info.pop(_REUSABLE_KEY, None)
