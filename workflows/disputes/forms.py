"""Hand-made forms of the medical-dispute lifecycle (``camunda:formKey``), registered with the engine.

The 调解协议书 carries a list of parties, which ``camunda:formData`` cannot express. Its schema checks
what makes the agreement take effect (人民调解法 §29; 医疗纠纷预防和处理条例 §39): both sides named, every
party's signature (or seal, or fingerprint), the mediator's signature and the committee's seal. Amounts are
decimals with at most two places; a float is refused, never rounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from engine.clock import get_clock
from engine.forms import register_form
from workflows.shared.id_numbers import id_number_problem

AGREEMENT_FORM = 'disputes.agreement'

PARTY_ROLES = ('患方', '医方', '保险机构')
PERFORMANCE_METHODS = ('一次性银行转账', '一次性现金支付', '分期支付', '保险机构直接赔付', '其他')

_AMOUNT = re.compile(r'[0-9]{1,12}(?:\.[0-9]{1,2})?')
# 统一社会信用代码 (GB 32100-2015): 18 characters of digits and capitals without I, O, S, V, Z.
_CREDIT_CODE = re.compile(r'[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}')


class Money(fields.Decimal):
    """A non-negative amount in yuan with at most two decimal places, as a string or an integer.

    Floats are refused outright: ``0.1 + 0.2`` style errors are what this field exists to keep out.
    """

    default_error_messages = {**fields.Decimal.default_error_messages,
                              'invalid': '请输入金额（元），最多保留两位小数。'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(places=2, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Decimal:
        if isinstance(value, (bool, float)):
            raise self.make_error('invalid')
        text = str(value).strip() if isinstance(value, (str, int, Decimal)) else ''
        if not _AMOUNT.fullmatch(text):
            raise self.make_error('invalid')
        try:
            return Decimal(text).quantize(Decimal('0.01'))
        except InvalidOperation:
            raise self.make_error('invalid') from None


def _required(label: str, message: str = '此项为必填项。', hint: str = '') -> dict[str, Any]:
    return {'required': True, 'error_messages': {'required': message, 'null': message},
            'metadata': {'label': label, 'hint': hint}}


def _optional(label: str, hint: str = '', **kwargs: Any) -> dict[str, Any]:
    return {'load_default': None, 'metadata': {'label': label, 'hint': hint}, **kwargs}


#: what a signature checkbox, a JSON client or a typed answer may say
_YES: set[Any] = {True, 'true', 'True', '1', 'on', 'yes', '是', '已签署'}
_NO: set[Any] = {False, 'false', 'False', '0', 'off', 'no', '否', '未签署'}


class YesNo(fields.Boolean):
    """A yes-or-no answer: a boolean, or 是/否 as typed in the generic form."""

    default_error_messages = {**fields.Boolean.default_error_messages, 'invalid': '请填写“是”或“否”。'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy=_YES, falsy=_NO, **kwargs)


class PartySchema(Schema):
    """One party to the agreement: a patient-side person, the hospital, or the insurer."""

    role = fields.String(**_required('当事人类别', hint='患方 / 医方 / 保险机构'),
                         validate=validate.OneOf(PARTY_ROLES, error='请选择当事人类别。'))
    name = fields.String(**_required('姓名或名称'), validate=validate.Length(min=1, max=100))
    #: natural persons: 公民身份号码 (GB 11643)
    id_number = fields.String(**_optional('公民身份号码', '患方当事人必填'))
    #: institutions: 统一社会信用代码
    credit_code = fields.String(**_optional('统一社会信用代码', '医疗机构、保险机构填写'))
    #: relation to the patient (本人, 配偶, 子女...) or the institution's 法定代表人/委托代理人
    representative = fields.String(**_optional('与患者关系或代理人', validate=validate.Length(max=100)))
    address = fields.String(**_optional('住所', validate=validate.Length(max=200)))
    phone = fields.String(**_optional('联系电话', validate=validate.Length(max=30)))
    #: signed, sealed or fingerprinted the agreement
    signed = YesNo(**_required('已签名（盖章、按指印）', '请确认该当事人是否已签名（盖章、按指印）。', '是 / 否'))

    @validates_schema
    def _identity(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        if data.get('id_number'):
            problem = id_number_problem(data['id_number'])
            if problem:
                errors['id_number'] = [problem]
        if data.get('credit_code') and not _CREDIT_CODE.fullmatch(data['credit_code'].strip().upper()):
            errors['credit_code'] = ['统一社会信用代码应为 18 位数字或大写字母。']
        if data.get('role') == '患方' and not data.get('id_number'):
            errors['id_number'] = ['患方当事人须填写公民身份号码。']
        if data.get('signed') is False:
            errors['signed'] = ['调解协议书须经各方当事人签名、盖章或按指印后生效（人民调解法 §29）。']
        if errors:
            raise ValidationError(errors)


class AgreementSchema(Schema):
    """人民调解协议书 of a medical dispute (人民调解法 §28–29; 医疗纠纷预防和处理条例 §39)."""

    parties = fields.List(fields.Nested(PartySchema), **_required('当事人', hint='至少列明患方和医方各一方'),
                          validate=validate.Length(min=2, max=12, error='协议须列明医患双方当事人（2 至 12 方）。'))
    #: 纠纷的主要事实、争议事项
    facts = fields.String(**_required('纠纷主要事实、争议事项'), validate=validate.Length(min=10, max=4000))
    #: 各方当事人的责任 (with the appraisal's 责任程度 if there was one)
    responsibility = fields.String(**_required('各方责任'), validate=validate.Length(min=2, max=2000))
    amount_claimed = Money(**_required('索赔金额（元）'))
    amount_agreed = Money(**_required('协议赔偿金额（元）'))
    #: what the 医疗责任保险 pays of the agreed amount
    insurer_share = Money(load_default=Decimal('0.00'),
                          metadata={'label': '其中保险赔付（元）', 'hint': '医疗责任保险承担的部分，没有填 0'})
    performance_method = fields.String(**_required('履行方式', hint='、'.join(PERFORMANCE_METHODS)),
                                       validate=validate.OneOf(PERFORMANCE_METHODS, error='请选择履行方式。'))
    performance_due_on = fields.Date(**_required('履行期限'))
    #: the day the last signature and the committee's seal were put on it: the agreement takes effect
    signed_on = fields.Date(**_required('签署（生效）日期', hint='各方签名并加盖医调委印章之日'))
    other_terms = fields.String(**_optional('其他约定', validate=validate.Length(max=2000)))
    mediator_name = fields.String(**_required('人民调解员'), validate=validate.Length(min=2, max=50))
    mediator_signed = YesNo(**_required('调解员已签名', hint='是 / 否'))
    seal_affixed = YesNo(**_required('已加盖医调委印章', hint='是 / 否'))

    @validates_schema
    def _takes_effect(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        roles = {party.get('role') for party in data.get('parties') or ()}
        if not {'患方', '医方'} <= roles:
            errors['parties'] = ['协议须同时列明患方和医方当事人。']
        agreed, insurer = data.get('amount_agreed'), data.get('insurer_share')
        if agreed is not None and insurer is not None and insurer > agreed:
            errors['insurer_share'] = ['保险赔付部分不能超过协议赔偿总额。']
        signed_on, due_on = data.get('signed_on'), data.get('performance_due_on')
        if signed_on is not None and signed_on > get_clock().today():
            errors['signed_on'] = ['签署日期不能晚于今天。']
        if signed_on is not None and due_on is not None and due_on < signed_on:
            errors['performance_due_on'] = ['履行期限不能早于协议签署日期。']
        if data.get('mediator_signed') is False:
            errors['mediator_signed'] = ['调解协议书须经人民调解员签名后生效（医疗纠纷预防和处理条例 §39）。']
        if data.get('seal_affixed') is False:
            errors['seal_affixed'] = ['调解协议书须加盖医疗纠纷人民调解委员会印章后生效'
                                      '（医疗纠纷预防和处理条例 §39）。']
        if errors:
            raise ValidationError(errors)

    @post_load
    def _shares(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The hospital pays what the insurer does not."""
        data['hospital_share'] = data['amount_agreed'] - data['insurer_share']
        for party in data['parties']:
            if party.get('id_number'):
                party['id_number'] = party['id_number'].strip().upper()
            if party.get('credit_code'):
                party['credit_code'] = party['credit_code'].strip().upper()
        return data


def register() -> None:
    """Register the hand-made forms with the engine."""
    register_form(AGREEMENT_FORM, AgreementSchema)
