"""Input schema of the public page's form: the party's second factor."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.i18n import N_

MSG_SECRET = N_('请输入 6 位查询密码或登记手机号的后 4 位。')


class VerifyFormSchema(Schema):
    """The 查询密码 (6 digits) or the last 4 digits of the registered phone number."""

    secret = fields.String(required=True, validate=validate.Length(min=1, max=64, error=MSG_SECRET),
                           error_messages={'required': MSG_SECRET, 'invalid': MSG_SECRET},
                           metadata={'description': '查询密码或手机号后四位'})
