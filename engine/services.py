"""Service operations: domain code that BPMN service tasks call by name.

A designer draws a service task as a Camunda external task (``camunda:type="external"``,
``camunda:topic="corrections.transfer_case"``); the engine runs the operation registered under that
topic synchronously, inside the command that reached it, with the database session and the case. The
engine never imports a domain package: domain packages register with ``@service(name)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.mixins.bpmn_spec_mixin import BpmnSpecMixin
from SpiffWorkflow.bpmn.specs.mixins.service_task import ServiceTask as ServiceTaskMixin
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.camunda.parser.task_spec import CAMUNDA_MODEL_NS, CamundaTaskParser
from SpiffWorkflow.task import Task

from engine.errors import WorkflowFault

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from engine.models.cases import Case
    from engine.models.instances import ProcessInstance
    from engine.models.users import User


@dataclass
class ServiceContext:
    """What an operation may touch: the command's session, the case, the instance and the actor."""

    session: Session
    case: Case
    instance: ProcessInstance
    actor: User | None
    #: camunda:properties of the service task being run (operation parameters)
    properties: Mapping[str, str] = field(default_factory=dict)


#: an operation takes the context and a copy of the task data, and returns data updates (or None)
ServiceOperation = Callable[[ServiceContext, dict[str, Any]], Mapping[str, Any] | None]

_operations: dict[str, ServiceOperation] = {}
_current: ContextVar[ServiceContext | None] = ContextVar('fengqiao_service_context', default=None)


def service(name: str) -> Callable[[ServiceOperation], ServiceOperation]:
    """Register the decorated function as the operation ``name`` (e.g. ``corrections.transfer_case``)."""
    def register(fn: ServiceOperation) -> ServiceOperation:
        _operations[name] = fn
        return fn
    return register


def is_registered(name: str) -> bool:
    """Whether an operation is registered under ``name``."""
    return name in _operations


def registered_names() -> list[str]:
    """Every registered operation name, sorted."""
    return sorted(_operations)


@contextmanager
def service_context(context: ServiceContext) -> Iterator[None]:
    """Make ``context`` available to service tasks run inside this block (one command)."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


class ServiceCallTask(ServiceTaskMixin, BpmnSpecMixin):  # type: ignore[misc]
    """A service task that runs the registered operation named by its topic."""

    def __init__(self, wf_spec: Any, bpmn_id: str, topic: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.topic = topic

    def _execute(self, task: Task) -> bool:
        context = _current.get()
        operation = _operations.get(self.topic)
        if context is None or operation is None:
            raise WorkflowFault(f'服务操作 "{self.topic}" 无法执行（未注册或不在命令中）。')
        scoped = ServiceContext(context.session, context.case, context.instance, context.actor,
                                dict(getattr(self, 'extensions', {}) or {}))
        updates = operation(scoped, dict(task.data))
        if updates:
            task.data.update(updates)
        return True


class ServiceTaskParser(CamundaTaskParser):  # type: ignore[misc]
    """Reads ``camunda:topic`` from an external-type service task."""

    def create_task(self) -> ServiceCallTask:
        topic = self.node.get(f'{{{CAMUNDA_MODEL_NS}}}topic')
        kind = self.node.get(f'{{{CAMUNDA_MODEL_NS}}}type')
        if kind != 'external' or not topic:
            raise ValidationException(
                '服务任务须为 camunda:type="external" 并指定 camunda:topic（已注册的服务操作名）。',
                node=self.node, file_name=self.filename)
        return ServiceCallTask(self.spec, self.bpmn_id, topic=topic, **self.bpmn_attributes)


class FengqiaoParser(CamundaParser):  # type: ignore[misc]
    """The Camunda dialect plus service tasks that call registered operations."""

    OVERRIDE_PARSER_CLASSES = {
        **CamundaParser.OVERRIDE_PARSER_CLASSES,
        full_tag('serviceTask'): (ServiceTaskParser, ServiceCallTask),
    }
