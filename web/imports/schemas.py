"""The output schema of an import batch's progress (polled as JSON by the batch page)."""

from __future__ import annotations

from marshmallow import Schema, fields


class RowProgressSchema(Schema):
    """One row of a batch as the progress call reports it."""

    id = fields.Integer()
    row_number = fields.Integer()
    status = fields.String(metadata={'enum': ['pending', 'imported', 'failed']})
    status_label = fields.String()
    message = fields.String(allow_none=True)
    case_url = fields.String(allow_none=True)

    class Meta:
        fields = ('id', 'row_number', 'status', 'status_label', 'message', 'case_url')


class BatchProgressSchema(Schema):
    """A batch's counts and each visible row's result."""

    id = fields.Integer()
    status = fields.String(metadata={'enum': ['queued', 'running', 'done']})
    status_label = fields.String()
    done = fields.Boolean()
    total = fields.Integer()
    imported = fields.Integer()
    failed = fields.Integer()
    pending = fields.Integer()
    rows = fields.List(fields.Nested(RowProgressSchema))

    class Meta:
        fields = ('id', 'status', 'status_label', 'done', 'total', 'imported', 'failed', 'pending', 'rows')
