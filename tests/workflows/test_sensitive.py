"""The classification of sensitive fields and the masking rule of each kind."""

from __future__ import annotations

import pytest

from engine.forms import FieldSpec
from workflows.shared.sensitive import (
    ID_NUMBER,
    LOCATION,
    MEDICAL,
    PHONE,
    county_prefix,
    field_kind,
    looks_like_id_number,
    mask_data,
    mask_value,
    sensitive_keys,
)

HIDDEN = '（敏感信息，已隐藏）'


def _spec(field_id: str, label: str, **properties: str) -> FieldSpec:
    return FieldSpec(id=field_id, label=label, type='string', properties=properties)


@pytest.mark.parametrize(('kind', 'value', 'shown'), [
    (ID_NUMBER, '430922198001010010', '430922********0010'),
    (PHONE, '13812345678', '138****5678'),
    (PHONE, '0737-4221234', '073*****1234'),
    (PHONE, '110', '***'),
    (LOCATION, '湖南省益阳市桃江县桃花江镇资江路12号', '湖南省益阳市桃江县****'),
    (LOCATION, '冷水江市锡矿山街道七里江社区', '冷水江市****'),
    (LOCATION, '益阳市资阳区长春镇', '益阳市资阳区****'),
    (LOCATION, '28.5312,112.1423', HIDDEN),
    (LOCATION, '锡矿山街道七里江社区', HIDDEN),
    (MEDICAL, '患者入院诊断为急性阑尾炎', HIDDEN),
    (MEDICAL, True, HIDDEN),
])
def test_each_kind_is_masked_by_its_rule(kind: str, value: object, shown: str) -> None:
    assert mask_value(kind, value) == shown


def test_nothing_stays_nothing() -> None:
    assert mask_value(PHONE, None) == '' and mask_value(MEDICAL, '') == ''


def test_the_county_prefix_stops_before_the_township() -> None:
    assert county_prefix('湖南省益阳市桃江县桃花江镇') == '湖南省益阳市桃江县'
    assert county_prefix('长沙市湘雅医院') == '长沙市'
    assert county_prefix('七里江社区') == ''


def test_a_marker_on_the_form_field_wins_over_the_id_and_label() -> None:
    assert field_kind('illness', _spec('illness', '既往情况', sensitive='medical')) == MEDICAL
    assert field_kind('phone', _spec('phone', '联系电话', sensitive='no')) is None
    assert field_kind('notes', _spec('notes', '备注', sensitive='bogus')) is None


def test_ids_of_the_shipped_processes_and_medical_labels_are_classified() -> None:
    assert field_kind('id_number') == ID_NUMBER
    assert field_kind('applicant_phone') == PHONE
    assert field_kind('residence_address') == LOCATION and field_kind('location') == LOCATION
    assert field_kind('hospital_statement') == MEDICAL and field_kind('appraisal_opinion') == MEDICAL
    # One id, two meanings: the label tells a 身体情况 from an ordinary report.
    assert field_kind('report_content', _spec('report_content', '身体情况')) == MEDICAL
    assert field_kind('report_content', _spec('report_content', '报告情况')) is None
    assert field_kind('findings') is None and field_kind('person_name') is None


def test_nested_rows_are_masked_inside_and_their_keys_found() -> None:
    data = {'parties': [{'name': '谢某', 'id_number': '430922198001010010', 'phone': '13812345678'}],
            'summary': '协议', 'medical_damage': '十级伤残'}
    assert mask_data(data) == {'parties': [{'name': '谢某', 'id_number': '430922********0010',
                                            'phone': '138****5678'}],
                               'summary': '协议', 'medical_damage': HIDDEN}
    assert sensitive_keys(data) == ['parties.id_number', 'parties.phone', 'medical_damage']


@pytest.mark.parametrize(('text', 'expected'), [
    ('430922198001010010', True), (' 43092219800101001x ', True), ('4309221980', False), ('谢某某', False),
    ('SJ-2025-000001', False), ('', False), (None, False)])
def test_id_number_shaped_search_text_is_recognised(text: str | None, expected: bool) -> None:
    assert looks_like_id_number(text) is expected
