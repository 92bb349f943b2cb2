"""Input schema of the calendar admin's form: one day declared a rest day or a make-up working day."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.i18n import N_

#: how the form names the two kinds of day
DAY_KINDS = ('rest', 'work')
NOTE_MAX = 500

MSG_DAY = N_('请填写日期。')
MSG_DAY_FORMAT = N_('请输入 YYYY-MM-DD 格式的日期。')
MSG_KIND = N_('请选择休息日或补班工作日。')
MSG_NOTE = N_('请说明调整依据。')
MSG_NOTE_LONG = N_('说明最多 500 个字。')
MSG_CODE_LONG = N_('机构代码最多 32 个字符。')


class OverrideSchema(Schema):
    """Add (or change) an override: the day, rest or work, optionally one unit's code, and why."""

    day = fields.Date(required=True, error_messages={'required': MSG_DAY, 'invalid': MSG_DAY_FORMAT})
    kind = fields.String(required=True, validate=validate.OneOf(DAY_KINDS, error=MSG_KIND),
                         error_messages={'required': MSG_KIND})
    org_unit = fields.String(load_default=None, validate=validate.Length(max=32, error=MSG_CODE_LONG))
    note = fields.String(required=True, validate=validate.Length(max=NOTE_MAX, error=MSG_NOTE_LONG),
                         error_messages={'required': MSG_NOTE})
