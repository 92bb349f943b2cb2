"""Signals delivered to waiting instances: how one process of a case tells another that something happened.

A case owns a lifecycle and any number of request instances. Some requests end the case's supervision
(a 解除/终止 request concludes the case, a court ruling shortens the term) while the lifecycle sits at an
event-based gateway or a task with a signal boundary event. :func:`signal_case` delivers a named BPMN
signal (``<bpmn:signal name="corrections.concluded"/>``) to every other unfinished instance of the case
that is waiting for it; each delivery is a command of its own on that instance (lock, restore, catch, run
on, sync, save), inside the caller's transaction, so it commits or rolls back with the command that sent it.

An instance not waiting for the signal is left untouched: a signal is not queued for later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from sqlalchemy.orm import Session

from engine import audit
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.users import User
from engine.runtime import _lock_instance, _settle, all_tasks, restore_workflow, waited_events

__all__ = ['signal_case', 'signal_instance', 'waiting_signals']


def waiting_signals(workflow: BpmnWorkflow) -> set[str]:
    """Names of the signals a restored workflow is waiting for, at a catch event, a boundary event or an
    event-based gateway (which SpiffWorkflow gives the definitions of the events after it)."""
    return {event.name for task in all_tasks(workflow) for event in waited_events(task)
            if isinstance(event, SignalEventDefinition)}


def signal_instance(session: Session, instance_id: int, name: str, *, actor: User | None,
                    payload: Mapping[str, Any] | None = None) -> bool:
    """Deliver signal ``name`` to one instance and run it on; False if it was not waiting for it.

    :param payload: data merged into the catching event's task data
    """
    instance = _lock_instance(session, instance_id)
    if instance.status in ('completed', 'suspended'):
        return False
    workflow, bundle = restore_workflow(session, instance, reuse=True)
    if name not in waiting_signals(workflow):
        return False
    workflow.catch(BpmnEvent(SignalEventDefinition(name), payload=dict(payload) if payload else None))
    audit.record(session, 'instance.signalled', actor=actor, case_id=instance.case_id, instance_id=instance.id,
                 org_path=instance.case.org_path, after={'signal': name})
    _settle(session, instance, workflow, bundle, actor)
    return True


def signal_case(session: Session, case: Case, name: str, *, actor: User | None,
                exclude_instance_id: int | None = None, payload: Mapping[str, Any] | None = None) -> list[int]:
    """Deliver signal ``name`` to every unfinished instance of ``case`` waiting for it.

    :param exclude_instance_id: the instance sending the signal (it is mid-command and must not be reloaded)
    :return: ids of the instances that caught it
    """
    ids = session.scalars(sa.select(ProcessInstance.id).where(
        ProcessInstance.case_id == case.id, ProcessInstance.status.in_(('running', 'waiting')))
        .order_by(ProcessInstance.id)).all()
    return [instance_id for instance_id in ids if instance_id != exclude_instance_id
            and signal_instance(session, instance_id, name, actor=actor, payload=payload)]
