"""Tests for engine.forms: reading camunda:formData and validating submitted values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.camunda.parser import CamundaParser
from werkzeug.datastructures import MultiDict

from engine.errors import DeploymentRejected, ValidationFailed
from engine.forms import (
    CAMUNDA_NS,
    FieldSpec,
    FormSpec,
    build_schema,
    form_from_spiff,
    form_from_xml,
    validate_form,
)
from engine.i18n import set_translator

BPMN_NS = 'http://www.omg.org/spec/BPMN/20100524/MODEL'
NSMAP = {'bpmn': BPMN_NS, 'camunda': CAMUNDA_NS}

# A medical-dispute intake with every field type and constraint, then a review task that has
# formData but no formKey.
MEDIATION_BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:camunda="{CAMUNDA_NS}"
                  id="Definitions_mediation" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="medical_mediation" name="医疗纠纷调解" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="flow_1" sourceRef="start" targetRef="intake" />
    <bpmn:userTask id="intake" name="登记调解申请" camunda:formKey="mediation-intake">
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="applicant_name" label="申请人姓名" type="string">
            <camunda:properties>
              <camunda:property id="placeholder" value="与身份证一致" />
            </camunda:properties>
            <camunda:validation>
              <camunda:constraint name="required" />
              <camunda:constraint name="minlength" config="2" />
              <camunda:constraint name="maxlength" config="20" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="people_involved" label="涉及人数" type="long" defaultValue="1">
            <camunda:validation>
              <camunda:constraint name="required" />
              <camunda:constraint name="min" config="1" />
              <camunda:constraint name="max" config="50" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="incident_date" label="发生日期" type="date">
            <camunda:validation>
              <camunda:constraint name="required" />
              <camunda:constraint name="min" config="2000-01-01" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="dispute_type" label="纠纷类型" type="enum">
            <camunda:value id="diagnosis" name="误诊漏诊" />
            <camunda:value id="surgery" name="手术损害" />
            <camunda:value id="medication" name="用药错误" />
            <camunda:validation>
              <camunda:constraint name="required" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="claim_amount" label="索赔金额（元）" type="decimal">
            <camunda:validation>
              <camunda:constraint name="min" config="0" />
              <camunda:constraint name="max" config="10000000" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="has_lawyer" label="是否委托律师" type="boolean" />
          <camunda:formField id="agrees_to_mediation" label="同意调解" type="boolean">
            <camunda:validation>
              <camunda:constraint name="required" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="case_number" label="案件编号" type="string" defaultValue="${{case_number}}">
            <camunda:validation>
              <camunda:constraint name="readonly" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="remarks" label="备注" type="string">
            <camunda:properties>
              <camunda:property id="widget" value="textarea" />
              <camunda:property id="rows" value="4" />
            </camunda:properties>
            <camunda:validation>
              <camunda:constraint name="maxlength" config="500" />
            </camunda:validation>
          </camunda:formField>
        </camunda:formData>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="flow_2" sourceRef="intake" targetRef="review" />
    <bpmn:userTask id="review" name="审核">
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="approved" label="是否受理" type="boolean">
            <camunda:validation>
              <camunda:constraint name="required" />
            </camunda:validation>
          </camunda:formField>
          <camunda:formField id="opinion" type="string" />
        </camunda:formData>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="flow_3" sourceRef="review" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>
"""

VALID_INPUT: dict[str, Any] = {
    'applicant_name': '张三',
    'people_involved': 2,
    'incident_date': '2024-03-15',
    'dispute_type': 'surgery',
    'claim_amount': '1200.50',
    'has_lawyer': True,
    'agrees_to_mediation': True,
    'remarks': '患者家属要求尽快调解。',
}


def user_task(task_id: str, source: str = MEDIATION_BPMN) -> Any:
    """The lxml element of one user task in ``source``."""
    root = etree.fromstring(source.encode('utf-8'))
    return root.find(f'.//{{{BPMN_NS}}}userTask[@id="{task_id}"]')


def single_task_bpmn(form_data: str, form_key: str | None = 'test-form') -> str:
    """A one-task process around the given formField elements."""
    key = f' camunda:formKey="{form_key}"' if form_key else ''
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:camunda="{CAMUNDA_NS}" id="d" targetNamespace="x">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task" />
    <bpmn:userTask id="task"{key}>
      <bpmn:extensionElements><camunda:formData>{form_data}</camunda:formData></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture(scope='module')
def intake() -> FormSpec:
    return form_from_xml(user_task('intake'), NSMAP)


def errors_for(form: FormSpec, data: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        validate_form(form, data)
    return caught.value.fields


# -- reading the model ------------------------------------------------------------------------


def test_form_from_xml_reads_every_field(intake: FormSpec) -> None:
    assert intake.key == 'mediation-intake'
    assert [spec.id for spec in intake.fields] == [
        'applicant_name',
        'people_involved',
        'incident_date',
        'dispute_type',
        'claim_amount',
        'has_lawyer',
        'agrees_to_mediation',
        'case_number',
        'remarks',
    ]
    by_id = {spec.id: spec for spec in intake.fields}
    assert by_id['applicant_name'] == FieldSpec(
        id='applicant_name',
        label='申请人姓名',
        type='string',
        required=True,
        min_length=2,
        max_length=20,
        properties={'placeholder': '与身份证一致'},
    )
    assert by_id['people_involved'] == FieldSpec(
        id='people_involved', label='涉及人数', type='long', required=True, minimum=1, maximum=50, default='1'
    )
    assert by_id['incident_date'].minimum == dt.date(2000, 1, 1)
    assert by_id['dispute_type'].options == (
        ('diagnosis', '误诊漏诊'),
        ('surgery', '手术损害'),
        ('medication', '用药错误'),
    )
    assert by_id['claim_amount'].minimum == Decimal('0')
    assert isinstance(by_id['claim_amount'].maximum, Decimal)
    assert by_id['has_lawyer'].required is False
    assert by_id['case_number'].readonly is True
    assert by_id['case_number'].default == '${case_number}'
    assert by_id['remarks'].properties == {'widget': 'textarea', 'rows': '4'}


def test_form_without_form_key_still_has_its_fields() -> None:
    review = form_from_xml(user_task('review'), NSMAP)
    assert review.key is None
    assert review.fields == (
        FieldSpec(id='approved', label='是否受理', type='boolean', required=True),
        # No label in the XML: the id stands in, so a generic renderer always has a caption.
        FieldSpec(id='opinion', label='opinion', type='string'),
    )


def test_form_from_xml_defaults_to_the_camunda_namespace() -> None:
    assert form_from_xml(user_task('intake')) == form_from_xml(user_task('intake'), NSMAP)


def test_task_without_form_data_has_empty_form() -> None:
    source = single_task_bpmn('').replace('<camunda:formData></camunda:formData>', '')
    assert form_from_xml(user_task('task', source), NSMAP) == FormSpec(key='test-form', fields=())


def test_form_spec_is_hashable_and_schema_cached(intake: FormSpec) -> None:
    again = form_from_xml(user_task('intake'), NSMAP)
    assert again == intake and hash(again) == hash(intake)
    assert build_schema(again) is build_schema(intake)


@pytest.mark.parametrize('task_id', ['intake', 'review'])
def test_form_from_spiff_agrees_with_form_from_xml(task_id: str) -> None:
    parser = CamundaParser()
    parser.add_bpmn_str(MEDIATION_BPMN.encode('utf-8'))
    spiff_form = parser.get_spec('medical_mediation').task_specs[task_id].form
    assert form_from_spiff(spiff_form) == form_from_xml(user_task(task_id), NSMAP)


def test_form_from_spiff_accepts_no_form() -> None:
    assert form_from_spiff(None) == FormSpec(key=None)


# -- deployment-time rejection ----------------------------------------------------------------


@pytest.mark.parametrize(
    ('form_field', 'element', 'fragment'),
    [
        ('<camunda:formField id="f" type="file" />', 'f', '“file”不受支持'),
        ('<camunda:formField id="f" />', 'f', '缺少类型'),
        ('<camunda:formField type="string" />', None, '缺少 id'),
        ('<camunda:formField id="2nd" type="string" />', '2nd', '不能用作变量名'),
        ('<camunda:formField id="class" type="string" />', 'class', '不能用作变量名'),
        (
            '<camunda:formField id="f" type="string"><camunda:validation>'
            '<camunda:constraint name="validator" config="com.example.Check" />'
            '</camunda:validation></camunda:formField>',
            'f',
            '“validator”不受支持',
        ),
        (
            '<camunda:formField id="f" type="string"><camunda:validation>'
            '<camunda:constraint name="maxlength" config="ten" />'
            '</camunda:validation></camunda:formField>',
            'f',
            '配置“ten”无效',
        ),
        (
            '<camunda:formField id="f" type="long"><camunda:validation>'
            '<camunda:constraint name="minlength" config="2" />'
            '</camunda:validation></camunda:formField>',
            'f',
            '不适用于“long”类型',
        ),
        (
            '<camunda:formField id="f" type="boolean"><camunda:validation>'
            '<camunda:constraint name="min" config="0" />'
            '</camunda:validation></camunda:formField>',
            'f',
            '不适用于“boolean”类型',
        ),
        (
            '<camunda:formField id="f" type="long"><camunda:validation>'
            '<camunda:constraint name="min" config="1.5" />'
            '</camunda:validation></camunda:formField>',
            'f',
            '配置“1.5”无效',
        ),
        (
            '<camunda:formField id="f" type="date"><camunda:validation>'
            '<camunda:constraint name="max" config="2024-02-30" />'
            '</camunda:validation></camunda:formField>',
            'f',
            '配置“2024-02-30”无效',
        ),
        (
            '<camunda:formField id="f" type="long"><camunda:validation>'
            '<camunda:constraint name="min" config="10" /><camunda:constraint name="max" config="1" />'
            '</camunda:validation></camunda:formField>',
            'f',
            '下限大于上限',
        ),
        ('<camunda:formField id="f" type="enum" />', 'f', '没有任何选项'),
        (
            '<camunda:formField id="f" type="enum">'
            '<camunda:value id="a" name="甲" /><camunda:value id="a" name="乙" /></camunda:formField>',
            'f',
            '选项“a”重复',
        ),
        (
            '<camunda:formField id="f" type="string" /><camunda:formField id="f" type="long" />',
            'f',
            '“f”重复',
        ),
    ],
)
def test_bad_definitions_are_rejected(form_field: str, element: str | None, fragment: str) -> None:
    with pytest.raises(DeploymentRejected) as caught:
        form_from_xml(user_task('task', single_task_bpmn(form_field)), NSMAP)
    assert '“task”' in caught.value.message
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem['element'] == element
    assert fragment in problem['message']


def test_all_definition_problems_are_reported_together() -> None:
    source = single_task_bpmn(
        '<camunda:formField id="a" type="money" />'
        '<camunda:formField id="b" type="string" />'
        '<camunda:formField id="c" type="enum" />'
    )
    with pytest.raises(DeploymentRejected) as caught:
        form_from_xml(user_task('task', source), NSMAP)
    assert [problem['element'] for problem in caught.value.problems] == ['a', 'c']


def test_form_from_spiff_rejects_the_same_problems() -> None:
    parser = CamundaParser()
    parser.add_bpmn_str(single_task_bpmn('<camunda:formField id="f" type="file" />').encode('utf-8'))
    with pytest.raises(DeploymentRejected) as caught:
        form_from_spiff(parser.get_spec('p').task_specs['task'].form)
    assert caught.value.problems[0]['element'] == 'f'


def test_decimal_type_is_accepted() -> None:
    form = form_from_xml(
        user_task('task', single_task_bpmn('<camunda:formField id="fee" type="decimal" />')), NSMAP
    )
    assert form.fields[0].type == 'decimal'


# -- validation: valid input ------------------------------------------------------------------


def test_valid_input_is_cleaned(intake: FormSpec) -> None:
    assert validate_form(intake, VALID_INPUT) == {
        'applicant_name': '张三',
        'people_involved': 2,
        'incident_date': '2024-03-15',
        'dispute_type': 'surgery',
        'claim_amount': '1200.50',
        'has_lawyer': True,
        'agrees_to_mediation': True,
        'remarks': '患者家属要求尽快调解。',
    }


def test_html_form_strings_are_converted(intake: FormSpec) -> None:
    submitted = {
        'applicant_name': '  李四 ',
        'people_involved': '12',
        'incident_date': '2024-03-15',
        'dispute_type': 'diagnosis',
        'claim_amount': '',
        'has_lawyer': 'on',
        'agrees_to_mediation': 'false',
        'remarks': '',
    }
    assert validate_form(intake, submitted) == {
        'applicant_name': '李四',
        'people_involved': 12,
        'incident_date': '2024-03-15',
        'dispute_type': 'diagnosis',
        'claim_amount': None,
        'has_lawyer': True,
        'agrees_to_mediation': False,
        'remarks': None,
    }


def test_multidict_from_a_browser_post(intake: FormSpec) -> None:
    # An unticked optional checkbox is simply absent from a browser's POST.
    submitted = MultiDict(
        [
            ('applicant_name', '王五'),
            ('people_involved', '3'),
            ('incident_date', '2023-12-01'),
            ('dispute_type', 'medication'),
            ('claim_amount', '88'),
            ('agrees_to_mediation', '1'),
        ]
    )
    cleaned = validate_form(intake, submitted)
    assert cleaned['people_involved'] == 3
    assert cleaned['has_lawyer'] is False
    assert cleaned['claim_amount'] == '88.00'


@pytest.mark.parametrize(
    ('value', 'expected'),
    [('on', True), ('true', True), ('TRUE', True), ('1', True), (1, True), (True, True),
     ('false', False), ('0', False), ('off', False), (0, False), (False, False), ('', False)],
)
def test_optional_boolean_values(intake: FormSpec, value: Any, expected: bool) -> None:
    assert validate_form(intake, {**VALID_INPUT, 'has_lawyer': value})['has_lawyer'] is expected


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        ('1200.50', '1200.50'),
        ('1200.5', '1200.50'),
        ('1200', '1200.00'),
        ('0012.30', '12.30'),
        (' 7.05 ', '7.05'),
        ('-0', '0.00'),
        (1200, '1200.00'),
        (Decimal('99.9'), '99.90'),
        ('10000000.00', '10000000.00'),
    ],
)
def test_decimal_accepts_and_normalises(intake: FormSpec, value: Any, expected: str) -> None:
    assert validate_form(intake, {**VALID_INPUT, 'claim_amount': value})['claim_amount'] == expected


@pytest.mark.parametrize('value', [dt.date(2024, 3, 15), '2024-03-15'])
def test_date_accepts_iso_string_and_date(intake: FormSpec, value: Any) -> None:
    assert validate_form(intake, {**VALID_INPUT, 'incident_date': value})['incident_date'] == '2024-03-15'


def test_result_is_json_serialisable(intake: FormSpec) -> None:
    import json

    cleaned = validate_form(intake, {**VALID_INPUT, 'incident_date': dt.date(2024, 3, 15)})
    assert json.loads(json.dumps(cleaned)) == cleaned


def test_readonly_field_is_ignored(intake: FormSpec) -> None:
    cleaned = validate_form(intake, {**VALID_INPUT, 'case_number': '(2024)医调字第999号'})
    assert 'case_number' not in cleaned


def test_field_ids_that_are_schema_member_names_work() -> None:
    form = FormSpec(
        key=None,
        fields=(
            FieldSpec(id='load', label='load', type='string'),
            FieldSpec(id='fields', label='fields', type='long'),
        ),
    )
    assert validate_form(form, {'load': 'x', 'fields': '3'}) == {'load': 'x', 'fields': 3}


# -- validation: invalid input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ('field_id', 'value', 'message'),
    [
        ('applicant_name', '张', '长度不能少于 2 个字符。'),
        ('applicant_name', '张' * 21, '长度不能超过 20 个字符。'),
        ('applicant_name', '   ', '此项为必填项。'),
        ('applicant_name', None, '此项为必填项。'),
        ('applicant_name', 42, '请输入文本。'),
        ('applicant_name', '张\x00三', '包含无法保存的字符。'),
        ('applicant_name', '张\ud800三', '包含无法保存的字符。'),
        ('people_involved', '12a', '请输入整数。'),
        ('people_involved', '1.0', '请输入整数。'),
        ('people_involved', 2.0, '请输入整数。'),
        ('people_involved', True, '请输入整数。'),
        ('people_involved', '１２', '请输入整数。'),
        ('people_involved', '0', '不能小于 1。'),
        ('people_involved', 51, '不能大于 50。'),
        ('people_involved', '9' * 30, '数值超出允许范围。'),
        ('people_involved', '', '此项为必填项。'),
        ('incident_date', '2024/03/15', '请输入 YYYY-MM-DD 格式的日期。'),
        ('incident_date', '20240315', '请输入 YYYY-MM-DD 格式的日期。'),
        ('incident_date', dt.datetime(2024, 3, 15, 9, 30), '请输入 YYYY-MM-DD 格式的日期。'),
        ('incident_date', '2024-02-30', '该日期不存在。'),
        ('incident_date', '1999-12-31', '不能早于 2000-01-01。'),
        ('dispute_type', 'other', '请选择列表中的选项。'),
        ('dispute_type', '误诊漏诊', '请选择列表中的选项。'),
        ('dispute_type', 1, '请选择列表中的选项。'),
        ('claim_amount', '1.234', '请输入数字，最多保留两位小数。'),
        ('claim_amount', 'abc', '请输入数字，最多保留两位小数。'),
        ('claim_amount', 1200.5, '请输入数字，最多保留两位小数。'),
        ('claim_amount', '1e3', '请输入数字，最多保留两位小数。'),
        ('claim_amount', 'NaN', '请输入数字，最多保留两位小数。'),
        ('claim_amount', '1,200.50', '请输入数字，最多保留两位小数。'),
        ('claim_amount', Decimal('1.001'), '请输入数字，最多保留两位小数。'),
        ('claim_amount', '-0.01', '不能小于 0。'),
        ('claim_amount', '10000000.01', '不能大于 10000000。'),
        ('claim_amount', '9' * 40, '数值超出允许范围。'),
        ('has_lawyer', 'yes please', '请选择是或否。'),
        ('has_lawyer', 2, '请选择是或否。'),
        ('agrees_to_mediation', '', '此项为必填项。'),
    ],
)
def test_invalid_value_gives_field_error(intake: FormSpec, field_id: str, value: Any, message: str) -> None:
    assert errors_for(intake, {**VALID_INPUT, field_id: value}) == {field_id: [message]}


def test_missing_required_fields(intake: FormSpec) -> None:
    assert errors_for(intake, {}) == {
        'applicant_name': ['此项为必填项。'],
        'people_involved': ['此项为必填项。'],
        'incident_date': ['此项为必填项。'],
        'dispute_type': ['此项为必填项。'],
        'agrees_to_mediation': ['此项为必填项。'],
    }


def test_all_errors_are_reported_at_once(intake: FormSpec) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_form(
            intake,
            {
                **VALID_INPUT,
                'applicant_name': '张',
                'people_involved': 'many',
                'claim_amount': '1.234',
                'incident_date': 'yesterday',
                'hacked': 'x',
            },
        )
    assert caught.value.message == '表单填写有误，请检查标出的项。'
    assert caught.value.fields == {
        'applicant_name': ['长度不能少于 2 个字符。'],
        'people_involved': ['请输入整数。'],
        'claim_amount': ['请输入数字，最多保留两位小数。'],
        'incident_date': ['请输入 YYYY-MM-DD 格式的日期。'],
        'hacked': ['表单中没有此项。'],
    }


def test_unknown_field_is_rejected(intake: FormSpec) -> None:
    assert errors_for(intake, {**VALID_INPUT, 'is_admin': 'true'}) == {'is_admin': ['表单中没有此项。']}


def test_non_mapping_payload_is_rejected(intake: FormSpec) -> None:
    assert errors_for(intake, ['not', 'a', 'form']) == {'_schema': ['提交的数据格式不正确。']}


# -- translation hook -------------------------------------------------------------------------

ENGLISH = {
    '此项为必填项。': 'This field is required.',
    '长度不能少于 {min} 个字符。': 'Must be at least {min} characters.',
    '表单中没有此项。': 'Unknown field.',
    '表单填写有误，请检查标出的项。': 'Please correct the marked fields.',
    '下拉字段“{id}”没有任何选项。': 'Drop-down "{id}" has no options.',
}


@pytest.fixture
def english() -> Iterator[None]:
    previous = set_translator(lambda text: ENGLISH.get(text, text))
    try:
        yield
    finally:
        set_translator(previous)


def test_translator_changes_messages_at_validation_time(intake: FormSpec) -> None:
    # The schema is built (and cached) while no translator is installed ...
    build_schema(intake)
    previous = set_translator(lambda text: ENGLISH.get(text, text))
    try:
        # ... and still reports in the language active when validation happens.
        with pytest.raises(ValidationFailed) as caught:
            validate_form(intake, {**VALID_INPUT, 'applicant_name': '张', 'agrees_to_mediation': '', 'x': 1})
    finally:
        set_translator(previous)
    assert caught.value.message == 'Please correct the marked fields.'
    assert caught.value.fields == {
        'applicant_name': ['Must be at least 2 characters.'],
        'agrees_to_mediation': ['This field is required.'],
        'x': ['Unknown field.'],
    }
    # Back to the identity translator afterwards.
    assert errors_for(intake, {**VALID_INPUT, 'applicant_name': '张'}) == {
        'applicant_name': ['长度不能少于 2 个字符。']
    }


@pytest.mark.usefixtures('english')
def test_translator_applies_to_deployment_problems() -> None:
    with pytest.raises(DeploymentRejected) as caught:
        form_from_xml(user_task('task', single_task_bpmn('<camunda:formField id="f" type="enum" />')), NSMAP)
    assert caught.value.problems == [{'element': 'f', 'message': 'Drop-down "f" has no options.'}]


def test_set_translator_none_restores_identity() -> None:
    original = set_translator(str.upper)
    try:
        assert set_translator(None) is str.upper
        form = FormSpec(key=None, fields=(FieldSpec(id='a', label='a', type='string', required=True),))
        assert errors_for(form, {}) == {'a': ['此项为必填项。']}
    finally:
        set_translator(original)


def test_registered_hand_made_form_validates_nested_data() -> None:
    from marshmallow import Schema
    from marshmallow import fields as mf
    from marshmallow import validate as mv

    from engine.forms import register_form

    class Party(Schema):
        name = mf.String(required=True, validate=mv.Length(min=2))
        role = mf.String(required=True, validate=mv.OneOf(['患方', '医方']))

    class Agreement(Schema):
        parties = mf.List(mf.Nested(Party), required=True, validate=mv.Length(min=2))
        amount = mf.Decimal(required=True, places=2, as_string=False)
        pay_by = mf.Date(required=True)

    register_form('tests.agreement', Agreement)
    form = FormSpec(key='tests.agreement', fields=())
    clean = validate_form(form, {'parties': [{'name': '张某', 'role': '患方'}, {'name': '某医院', 'role': '医方'}],
                                 'amount': '1200.50', 'pay_by': '2025-11-01'})
    assert clean == {'parties': [{'name': '张某', 'role': '患方'}, {'name': '某医院', 'role': '医方'}],
                     'amount': '1200.50', 'pay_by': '2025-11-01'}
    with pytest.raises(ValidationFailed) as exc:
        validate_form(form, {'parties': [{'name': '张', 'role': '其他'}], 'amount': 'x'})
    assert {'parties.0.name', 'parties.0.role', 'amount', 'pay_by'} <= set(exc.value.fields)
