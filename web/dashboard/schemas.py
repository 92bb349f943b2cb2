"""Input schema of the dashboard area's one posted form besides the weights (validated in engine.ranking)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from web.dashboard.util import MSG_MONTH


class MonthSchema(Schema):
    """Publish a month's ranking: the month, ``YYYY-MM``."""

    month = fields.String(required=True, validate=validate.Regexp(r'^\d{4}-\d{2}$', error=MSG_MONTH),
                          error_messages={'required': MSG_MONTH})
