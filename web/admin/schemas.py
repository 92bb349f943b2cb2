"""Input schemas of the admin pages: a working-calendar override, an account, a password, a role grant."""

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


# -- 用户管理 and 角色权限 ---------------------------------------------------------------------------------------

#: login names: letters, digits and ``._-``, as the command line and the API tokens expect them
USERNAME = r'^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$'
#: what an e-mail address must at least look like (``name@host.domain``), as ``create-user --email``
EMAIL = r'^[^@\s]+@[^@\s]+\.[^@\s]+$'

MSG_USERNAME = N_('请填写用户名。')
MSG_USERNAME_FORMAT = N_('用户名为 2–64 个字母、数字或 . _ -，以字母或数字开头。')
MSG_DISPLAY_NAME = N_('请填写姓名。')
MSG_DISPLAY_NAME_LONG = N_('姓名最多 120 个字。')
MSG_UNIT = N_('请选择所属机构。')
MSG_EMAIL = N_('电子邮件地址格式不正确。')
MSG_PASSWORD = N_('请填写密码。')
MSG_GROUP = N_('请选择角色。')
MSG_GRANT_UNIT = N_('请选择授权机构。')


class UserDetailsSchema(Schema):
    """Edit an account: display name, unit (its code) and e-mail."""

    display_name = fields.String(required=True, validate=validate.Length(max=120, error=MSG_DISPLAY_NAME_LONG),
                                 error_messages={'required': MSG_DISPLAY_NAME})
    org_unit = fields.String(required=True, validate=validate.Length(max=32, error=MSG_CODE_LONG),
                             error_messages={'required': MSG_UNIT})
    email = fields.String(load_default=None, validate=[validate.Length(max=254, error=MSG_EMAIL),
                                                       validate.Regexp(EMAIL, error=MSG_EMAIL)])


class NewUserSchema(UserDetailsSchema):
    """Create an account: the details, a username and an initial password (the policy is the engine's)."""

    username = fields.String(required=True, validate=validate.Regexp(USERNAME, error=MSG_USERNAME_FORMAT),
                             error_messages={'required': MSG_USERNAME})
    password = fields.String(required=True, error_messages={'required': MSG_PASSWORD})


class PasswordSchema(Schema):
    """Reset a password: the new one (the policy is the engine's)."""

    password = fields.String(required=True, error_messages={'required': MSG_PASSWORD})


class GrantSchema(Schema):
    """Grant a role: the group's code and the unit's code."""

    group = fields.String(required=True, validate=validate.Length(max=64, error=MSG_GROUP),
                          error_messages={'required': MSG_GROUP})
    org_unit = fields.String(required=True, validate=validate.Length(max=32, error=MSG_CODE_LONG),
                             error_messages={'required': MSG_GRANT_UNIT})
