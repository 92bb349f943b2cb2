"""The single serializer configuration: Camunda dialect, with the spec left out of instance state.

A parsed spec is stored once per definition (as its BPMN source, parsed and cached by ``engine.specs``);
each instance's state keeps only tasks and data, and gets the cached spec objects back on restore.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.migration.version_migration import MIGRATIONS
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG

SERIALIZER_VERSION = '1.5'


class SpeclessWorkflowConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Converts a top-level workflow without its spec; restore takes the spec objects as arguments."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct['subprocesses'] = self.mapping_to_dict(workflow.subprocesses)
        dct['bpmn_events'] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: BpmnProcessSpec | None = None,
                  subprocess_specs: dict[str, BpmnProcessSpec] | None = None) -> BpmnWorkflow:
        if spec is None:
            raise ValueError('restoring an instance needs its definition spec')
        workflow = self.target_class(spec, subprocess_specs or {}, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct['tasks'], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct['root']))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct['subprocesses'], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop('bpmn_events', []))
        return workflow


def _build() -> BpmnWorkflowSerializer:
    config = dict(CAMUNDA_CONFIG)
    config[BpmnWorkflow] = SpeclessWorkflowConverter
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config), version=SERIALIZER_VERSION)


_serializer = _build()


def dump_state(workflow: BpmnWorkflow) -> dict[str, Any]:
    """Return the JSON-ready state of ``workflow`` (no spec)."""
    dct: dict[str, Any] = _serializer.to_dict(workflow)
    return dct


def load_state(state: dict[str, Any], version: str, spec: BpmnProcessSpec,
               subprocess_specs: dict[str, BpmnProcessSpec]) -> BpmnWorkflow:
    """Rebuild a workflow from stored ``state`` and its definition's cached specs.

    Older payloads are upgraded through SpiffWorkflow's named migrations before restore. The caller
    must attach the sandboxed script engine: a restored workflow holds the default one.

    :param version: the serializer version the state was written with
    """
    dct = dict(state)
    if version != SERIALIZER_VERSION and version in MIGRATIONS:
        dct['serializer_version'] = version
        _serializer.migrate(dct)
    workflow: BpmnWorkflow = _serializer.from_dict(dct, spec=spec, subprocess_specs=subprocess_specs)
    return workflow
