"""Input schemas of the supervision pages' forms: a reason for retrying or cancelling, an export's format."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.i18n import N_
from engine.incidents import MSG_REASON, MSG_REASON_LONG, REASON_MAX

EXPORT_FORMATS = ('csv', 'xlsx')
MSG_FORMAT = N_('请选择导出格式（CSV 或 Excel）。')


class ReasonSchema(Schema):
    """重试 / 取消 / 终止: why (written to the audit log)."""

    reason = fields.String(required=True, validate=validate.Length(max=REASON_MAX, error=MSG_REASON_LONG),
                           error_messages={'required': MSG_REASON})


class ExportSchema(Schema):
    """导出审计日志: the format (the filters travel as the log's own inputs beside it)."""

    format = fields.String(required=True, validate=validate.OneOf(EXPORT_FORMATS, error=MSG_FORMAT),
                           error_messages={'required': MSG_FORMAT})
