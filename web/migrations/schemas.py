"""Input schemas of the migration forms, and the output schema of a batch's progress (polled as JSON)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from engine.i18n import N_
from engine.migration import REASON_MAX

MSG_VERSION = N_('请选择版本。')
MSG_REASON = N_('请填写迁移原因。')
MSG_REASON_LONG = N_('迁移原因最多 1000 个字。')
MSG_REVISION = N_('提交的数据有误。')

_VERSION_ERRORS: dict[str, Any] = {'required': MSG_VERSION, 'invalid': MSG_VERSION, 'too_large': MSG_VERSION}


class VersionPairSchema(Schema):
    """The version an instance runs on (``from``) and the one it moves to (``to``), by version number."""

    from_version = fields.Integer(required=True, data_key='from', validate=validate.Range(min=1, error=MSG_VERSION),
                                  error_messages=_VERSION_ERRORS)
    to_version = fields.Integer(required=True, data_key='to', validate=validate.Range(min=1, error=MSG_VERSION),
                                error_messages=_VERSION_ERRORS)


class MoveSchema(VersionPairSchema):
    """The move form: the version pair and why (the instances come as repeated ``instance`` checkboxes)."""

    reason = fields.String(required=True, validate=validate.Length(max=REASON_MAX, error=MSG_REASON_LONG),
                           error_messages={'required': MSG_REASON})


class MoveOneSchema(MoveSchema):
    """Moving one instance from its preview row: plus the revision the preview showed."""

    revision = fields.Integer(required=True, validate=validate.Range(min=1, error=MSG_REVISION),
                              error_messages={'required': MSG_REVISION, 'invalid': MSG_REVISION})


class ItemProgressSchema(Schema):
    """One instance of a batch as the progress call reports it."""

    id = fields.Integer()
    instance_id = fields.Integer()
    status = fields.String(metadata={'enum': ['pending', 'migrated', 'failed', 'skipped']})
    status_label = fields.String()
    message = fields.String(allow_none=True)
    finished = fields.String(allow_none=True, metadata={'description': '办结时间（本地时间的文字）'})

    class Meta:
        fields = ('id', 'instance_id', 'status', 'status_label', 'message', 'finished')


class BatchProgressSchema(Schema):
    """A batch's counts and each visible instance's result."""

    id = fields.Integer()
    status = fields.String(metadata={'enum': ['queued', 'running', 'done']})
    status_label = fields.String()
    done = fields.Boolean()
    total = fields.Integer()
    migrated = fields.Integer()
    failed = fields.Integer()
    skipped = fields.Integer()
    pending = fields.Integer()
    items = fields.List(fields.Nested(ItemProgressSchema))

    class Meta:
        fields = ('id', 'status', 'status_label', 'done', 'total', 'migrated', 'failed', 'skipped', 'pending', 'items')
