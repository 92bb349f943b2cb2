"""What an instance's diagram shows: its BPMN source, the steps done, where it stands now, the flows taken.

Read-only: the workflow is restored the way the runtime restores it (``runtime.restore_workflow``) and only
looked at; nothing is run, synced or saved.

Steps are named by their BPMN element id, which is also the id bpmn-js gives the element, so the
browser can mark them directly. Steps inside embedded subprocesses and called processes count under
their own ids (a called process in the same file has its own ids; one drawn nowhere is simply not
found by the viewer).

SpiffWorkflow does not record which sequence flow a token took. A flow is taken when its target step
was reached with its source step as the nearest BPMN step above it in the task tree; the flow ids
come from the definition's XML. Two flows with the same source and target are both marked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final

import sqlalchemy as sa
from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from engine.clock import now
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.runtime import all_tasks, restore_workflow, waited_events
from engine.specs import BPMN_NS

__all__ = ['ActiveStep', 'InstanceDiagram', 'StepTime', 'instance_diagram', 'step_times']

#: states in which a task has been reached by a token (CANCELLED only counts below a completed parent)
_REACHED: Final = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.COMPLETED | TaskState.ERROR

FlowMap = dict[tuple[str, str], tuple[str, ...]]


@dataclass(frozen=True)
class ActiveStep:
    """A step the instance waits at now.

    :param bpmn_id: the element id in the diagram
    :param name: the element's name, else its id
    :param kind: ``user_task``, ``timer``, ``message``, ``event`` (another catch event) or
        ``subprocess`` (an embedded subprocess or call activity still running)
    """

    bpmn_id: str
    name: str
    kind: str


@dataclass(frozen=True)
class StepTime:
    """The time an instance spent at one step, over every pass through it.

    :param bpmn_id: the element id in the diagram
    :param name: the step's name (the task title, else the element's name, else its id)
    :param kind: ``user_task`` or ``timer``
    :param passes: how many times the step was reached
    :param seconds: the time spent there in all, the pass still open counted up to now
    :param is_open: whether the instance is at the step now
    :param started_dt: when the step was first reached
    :param ended_dt: when the last pass ended (None while one is open)
    """

    bpmn_id: str
    name: str
    kind: str
    passes: int
    seconds: int
    is_open: bool
    started_dt: datetime
    ended_dt: datetime | None


@dataclass(frozen=True)
class InstanceDiagram:
    """An instance's diagram and its marks.

    :param xml: the BPMN source of the instance's definition version, as deployed
    :param completed: element id → how many times that step completed (a loop counts each pass)
    :param active: the steps the instance waits at now, in the order they were reached
    :param flows: ids of the sequence flows taken, sorted
    :param times: the time spent at each user task and timer (:func:`step_times`)
    """

    xml: str
    completed: dict[str, int]
    active: tuple[ActiveStep, ...]
    flows: tuple[str, ...]
    times: tuple[StepTime, ...] = ()

    @property
    def active_ids(self) -> list[str]:
        """The ids of :attr:`active`, without repeats."""
        return list(dict.fromkeys(step.bpmn_id for step in self.active))


def instance_diagram(session: Session, instance: ProcessInstance) -> InstanceDiagram:
    """Read ``instance``'s diagram: its definition's XML and the marks for the steps it went through.

    Only reads. The caller has checked that the reader may see the instance's case.

    :param session: the session the instance was loaded in
    :param instance: the instance to show
    :return: the XML with the completed and active steps and the flows taken
    """
    definition = instance.definition
    workflow, _ = restore_workflow(session, instance)
    tasks = [task for task in all_tasks(workflow) if task.task_spec.bpmn_id]
    return InstanceDiagram(xml=definition.source, completed=_completed(tasks), active=_active(tasks),
                           flows=_flows_taken(tasks, _sequence_flows(definition)),
                           times=step_times(session, instance))


def _completed(tasks: Iterable[Task]) -> dict[str, int]:
    counts = Counter(str(task.task_spec.bpmn_id) for task in tasks if task.state == TaskState.COMPLETED)
    return dict(counts)


def _active(tasks: Iterable[Task]) -> tuple[ActiveStep, ...]:
    steps = []
    for task in tasks:
        kind = _active_kind(task)
        if kind is not None:
            spec = task.task_spec
            steps.append(ActiveStep(str(spec.bpmn_id), str(spec.bpmn_name or spec.bpmn_id), kind))
    return tuple(steps)


def _active_kind(task: Task) -> str | None:
    """What ``task`` waits for, if it is a step the instance stands at; None otherwise.

    Joins waiting for their other branches are left out: the branch still open shows where things are.
    """
    spec = task.task_spec
    if spec.manual and task.state in (TaskState.READY, TaskState.WAITING):
        return 'user_task'
    if task.state == TaskState.STARTED and isinstance(spec, SubWorkflowTask):
        return 'subprocess'
    # At an event-based gateway, whichever of its events comes first: "three days or withdrawn" waits on a timer.
    events = waited_events(task)
    if not events:
        return None
    if any(isinstance(event, TimerEventDefinition) for event in events):
        return 'timer'
    return 'message' if any(isinstance(event, MessageEventDefinition) for event in events) else 'event'


def _sequence_flows(definition: ProcessDefinition) -> FlowMap:
    """(source id, target id) → the ids of the sequence flows between them, from the stored XML.

    The source passed the deployment checks (no DTD, well-formed); the parser still refuses entities
    and network access.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(definition.source.encode('utf-8'), parser)
    flows: dict[tuple[str, str], list[str]] = {}
    for flow in root.iter(f'{{{BPMN_NS}}}sequenceFlow'):
        key = (flow.get('sourceRef') or '', flow.get('targetRef') or '')
        flows.setdefault(key, []).append(flow.get('id') or '')
    return {key: tuple(ids) for key, ids in flows.items()}


def _flows_taken(tasks: Iterable[Task], flows: FlowMap) -> tuple[str, ...]:
    taken: set[str] = set()
    for task in tasks:
        if not _reached(task):
            continue
        source = _previous_step(task)
        if source is not None:
            taken.update(flows.get((str(source.task_spec.bpmn_id), str(task.task_spec.bpmn_id)), ()))
    return tuple(sorted(taken))


def _reached(task: Task) -> bool:
    """Whether a token got to ``task``: a join's extra arrivals are CANCELLED once it fires, and a task
    an interrupting event ended is CANCELLED too, both below a completed parent."""
    if task.state & _REACHED:
        return True
    return task.state == TaskState.CANCELLED and task.parent is not None and task.parent.state == TaskState.COMPLETED


def _previous_step(task: Task) -> Task | None:
    """The nearest BPMN step above ``task`` in its workflow's tree (skipping SpiffWorkflow's own
    control tasks, such as the split in front of a task with boundary events)."""
    parent = task.parent
    while parent is not None and not parent.task_spec.bpmn_id:
        parent = parent.parent
    return parent


# -- time spent per step ---------------------------------------------------------------------------------------

@dataclass
class _Span:
    """A step being added up, pass by pass."""

    name: str
    kind: str
    passes: int
    seconds: float
    is_open: bool
    started_dt: datetime
    ended_dt: datetime | None

    def add(self, start: datetime, end: datetime | None, at: datetime) -> None:
        """Count one pass from ``start`` to ``end`` (None: still open, counted up to ``at``)."""
        self.passes += 1
        self.seconds += max(((end or at) - start).total_seconds(), 0.0)
        self.started_dt = min(self.started_dt, start)
        if end is None:
            self.is_open = True
        else:
            self.ended_dt = end if self.ended_dt is None else max(self.ended_dt, end)


def step_times(session: Session, instance: ProcessInstance) -> tuple[StepTime, ...]:
    """How long ``instance`` spent at each user task and each timer, in the order the steps were first reached.

    A user task's pass runs from its human task's creation to its completion or cancellation; a timer's
    from the moment its job was scheduled to the moment it fired or was withdrawn. A pass still open
    counts up to now. Only the database is read, not the workflow state.
    """
    at, names = now(), _element_names(instance.definition.source)
    spans: dict[str, _Span] = {}

    def add(bpmn_id: str, name: str, kind: str, start: datetime, end: datetime | None) -> None:
        span = spans.setdefault(bpmn_id, _Span(name, kind, 0, 0.0, False, start, None))
        span.add(start, end, at)

    tasks = session.execute(sa.select(HumanTask.bpmn_id, HumanTask.title, HumanTask.created_dt, HumanTask.completed_dt,
                                      HumanTask.status)
                            .where(HumanTask.instance_id == instance.id).order_by(HumanTask.created_dt, HumanTask.id))
    for bpmn_id, title, created, completed, status in tasks:
        add(bpmn_id, title, 'user_task', created, None if status == 'open' else completed or created)
    timers = session.execute(sa.select(Job.payload, Job.created_dt, Job.done_dt, Job.status)
                             .where(Job.instance_id == instance.id, Job.kind == 'timer')
                             .order_by(Job.created_dt, Job.id))
    for payload, created, done, status in timers:
        bpmn_id = str(payload.get('bpmn_id') or '')
        if bpmn_id:
            ended = done if status in ('done', 'cancelled') else None
            add(bpmn_id, names.get(bpmn_id, bpmn_id), 'timer', created, ended)
    ordered = sorted(spans.items(), key=lambda item: item[1].started_dt)
    return tuple(StepTime(bpmn_id, span.name, span.kind, span.passes, round(span.seconds), span.is_open,
                          span.started_dt, None if span.is_open else span.ended_dt) for bpmn_id, span in ordered)


@lru_cache(maxsize=64)
def _element_names(source: str) -> dict[str, str]:
    """Element id → name of every named BPMN element (definitions never change once deployed)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(source.encode('utf-8'), parser)
    return {str(element.get('id')): str(element.get('name')) for element in root.iter(f'{{{BPMN_NS}}}*')
            if element.get('id') and element.get('name')}
