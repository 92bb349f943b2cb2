"""Hand-made task forms of community corrections (a ``camunda:formKey`` with a marshmallow schema)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from workflows.corrections.operations import MANAGEMENT_LEVELS

_REQUIRED: dict[str, str | list[Any] | dict[Any, Any]] = {'required': '此项为必填项。', 'null': '此项为必填项。'}
_TEXT: dict[str, str | list[Any] | dict[Any, Any]] = {**_REQUIRED, 'invalid': '请输入文本。'}


class TeamMemberSchema(Schema):
    """One member of a 矫正小组 (社区矫正法 §25)."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=2, max=30, error='姓名为 2 至 30 个字符。'),
                         error_messages=_TEXT, metadata={'label': '姓名'})
    role = fields.String(required=True, validate=validate.OneOf(
        ('司法所工作人员', '社会工作者', '志愿者', '村（居）委会人员', '所在单位或学校人员', '家庭成员或监护人',
         '保证人'),
        error='请选择小组成员身份：司法所工作人员、社会工作者、志愿者、村（居）委会人员、所在单位或学校人员、家庭成员或监护人、保证人。'),
        error_messages=_TEXT, metadata={'label': '身份'})
    gender = fields.String(required=True, validate=validate.OneOf(('男', '女'), error='请填写男或女。'),
                           error_messages=_TEXT, metadata={'label': '性别'})
    phone = fields.String(load_default=None, validate=validate.Length(max=20, error='电话最长 20 个字符。'),
                          metadata={'label': '联系电话'})


class CorrectionTeamSchema(Schema):
    """组建矫正小组、制定矫正方案: the members, the plan and the proposed 管理类别."""

    class Meta:
        unknown = RAISE

    members = fields.List(fields.Nested(TeamMemberSchema), required=True,
                          validate=validate.Length(min=2, max=12, error='矫正小组应有 2 至 12 名成员。'),
                          error_messages=_REQUIRED, metadata={'label': '矫正小组成员'})
    plan_summary = fields.String(required=True, validate=validate.Length(min=10, max=2000,
                                                                        error='矫正方案要点为 10 至 2000 个字符。'),
                                 error_messages=_TEXT, metadata={'label': '矫正方案要点'})
    risk_assessment = fields.String(required=True, validate=validate.Length(min=2, max=1000,
                                                                           error='风险评估为 2 至 1000 个字符。'),
                                    error_messages=_TEXT, metadata={'label': '入矫风险评估'})
    proposed_level = fields.String(required=True, validate=validate.OneOf(MANAGEMENT_LEVELS,
                                                                          error='请选择严管、普管或宽管。'),
                                   error_messages=_TEXT, metadata={'label': '建议管理类别'})

    @validates_schema
    def _one_staff_member(self, data: dict[str, Any], **kwargs: Any) -> None:
        # 法 §25: the group is led by the 司法所 (or the county agency); one of its staff must be in it.
        if not any(member.get('role') == '司法所工作人员' for member in data.get('members') or ()):
            raise ValidationError('矫正小组中应有司法所工作人员。', field_name='members')


def has_female_member(data: dict[str, Any]) -> bool:
    """Whether the team submitted in ``data`` has a woman in it."""
    return any(isinstance(m, dict) and m.get('gender') == '女' for m in data.get('members') or ())
