"""Output schema of the diagram data the browser draws."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from engine.diagrams import InstanceDiagram
from web.diagrams.util import time_rows


class DiagramSchema(Schema):
    """An ``engine.diagrams.InstanceDiagram`` as ``{"xml", "completed", "active", "flows", "times"}``.

    ``times`` lists ``{"id", "label", "passes", "open"}`` per user task and timer: the time spent there in
    the reader's language, for the badges on the diagram.
    """

    xml = fields.String()
    completed = fields.Dict(keys=fields.String(), values=fields.Integer())
    active = fields.List(fields.String(), attribute='active_ids')
    flows = fields.List(fields.String())
    times = fields.Method('dump_times')

    class Meta:
        fields = ('xml', 'completed', 'active', 'flows', 'times')

    def dump_times(self, diagram: InstanceDiagram) -> list[dict[str, Any]]:
        """Each step's time as a badge reads it."""
        return [{'id': row.bpmn_id, 'label': row.duration, 'passes': row.passes, 'open': row.is_open}
                for row in time_rows(diagram.times)]
