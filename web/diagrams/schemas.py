"""Output schema of the diagram data the browser draws."""

from __future__ import annotations

from marshmallow import Schema, fields


class DiagramSchema(Schema):
    """An ``engine.diagrams.InstanceDiagram`` as ``{"xml", "completed", "active", "flows"}``."""

    xml = fields.String()
    completed = fields.Dict(keys=fields.String(), values=fields.Integer())
    active = fields.List(fields.String(), attribute='active_ids')
    flows = fields.List(fields.String())

    class Meta:
        fields = ('xml', 'completed', 'active', 'flows')
