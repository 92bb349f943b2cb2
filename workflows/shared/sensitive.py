"""Sensitive personal data (个人信息保护法 §28): which form fields hold it, and how each kind is masked.

One classification serves every page, list, export and API response. A field is sensitive when

1. its ``camunda:formField`` carries ``<camunda:property id="sensitive" value="medical"/>`` (any of
   :data:`KINDS`; ``value="no"`` declares a field harmless whatever its id), else
2. its id is in :data:`FIELD_KINDS` (the ids the shipped BPMN and the start data use), else
3. its label names medical content (:data:`MEDICAL_LABEL_WORDS`): one id such as ``report_content``
   holds a 身体情况 in one task and an ordinary 报告情况 in another.

Masking keeps what a list needs to tell records apart and nothing more: the region and last four of an
ID number, the first three and last four of a phone number, the county-level part of an address; medical
text is replaced whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from engine.forms import FieldSpec
from engine.i18n import N_, _
from workflows.shared.id_numbers import mask_id_number

ID_NUMBER = 'id_number'
PHONE = 'phone'
LOCATION = 'location'
MEDICAL = 'medical'
#: every kind of sensitive field
KINDS = (ID_NUMBER, PHONE, LOCATION, MEDICAL)
#: the form-field property that marks a field explicitly
PROPERTY = 'sensitive'
#: the property value that declares a field not sensitive
NOT_SENSITIVE = 'no'

#: what a masked medical value (or a location with no county to keep) reads
MSG_HIDDEN = N_('（敏感信息，已隐藏）')

#: field ids of the shipped processes (BPMN form fields, start data, request data) by kind
FIELD_KINDS: dict[str, str] = {
    'id_number': ID_NUMBER,
    'phone': PHONE, 'applicant_phone': PHONE, 'contact_phone': PHONE,
    'residence_address': LOCATION, 'new_address': LOCATION, 'location': LOCATION, 'destination': LOCATION,
    'coordinates': LOCATION, 'latitude': LOCATION, 'longitude': LOCATION,
    'hospital_statement': MEDICAL, 'medical_damage': MEDICAL, 'appraisal_opinion': MEDICAL,
    'expert_opinion': MEDICAL, 'committee_opinion': MEDICAL, 'dispute_summary': MEDICAL, 'causation': MEDICAL,
    'medical_fault': MEDICAL, 'liability_degree': MEDICAL, 'temporary_release_reason': MEDICAL,
}
#: words in a field's label that make it medical whatever its id
MEDICAL_LABEL_WORDS = ('诊疗', '病历', '病情', '诊断', '伤残', '鉴定意见', '身体情况', '复查结论')

#: where an address goes below county level: the township, street, village or house part starts
_BELOW_COUNTY = re.compile('乡|镇|街道|村|社区|路|街|巷|号|小区|组')
#: the county-level (or higher) unit names an address starts with
_COUNTY_SUFFIXES = '县区旗市'
#: an 18-character resident ID number, as typed into a search box
_ID_SHAPE = re.compile(r'[0-9]{17}[0-9Xx]')


def field_kind(key: str, spec: FieldSpec | None = None) -> str | None:
    """The sensitive kind of the field ``key`` (its spec's marker, its id, its label), or None.

    :param key: the data key (the form field id)
    :param spec: the field's spec when known: its ``sensitive`` property and label are consulted
    :return: one of :data:`KINDS`, or None for an ordinary field
    """
    if spec is not None:
        marker = spec.properties.get(PROPERTY)
        if marker == NOT_SENSITIVE:
            return None
        if marker in KINDS:
            return marker
    if key in FIELD_KINDS:
        return FIELD_KINDS[key]
    if spec is not None and any(word in spec.label for word in MEDICAL_LABEL_WORDS):
        return MEDICAL
    return None


def mask_phone(value: str) -> str:
    """``13812345678`` → ``138****5678``; shorter numbers lose all but their last four."""
    value = value.strip()
    if len(value) >= 8:
        return value[:3] + '*' * (len(value) - 7) + value[-4:]
    return '*' * len(value)


def county_prefix(address: str) -> str:
    """The province-to-county part of ``address`` (``湖南省益阳市桃江县`` of ``…桃江县桃花江镇…``), or ''."""
    cut = _BELOW_COUNTY.search(address)
    head = address[:cut.start()] if cut else address
    end = max(head.rfind(suffix) for suffix in _COUNTY_SUFFIXES)
    return head[:end + 1] if end >= 0 else ''


def mask_location(value: str) -> str:
    """Keep the county-level prefix of an address; anything without one (coordinates, a bare street) goes."""
    prefix = county_prefix(value.strip())
    return f'{prefix}****' if prefix else _(MSG_HIDDEN)


def mask_value(kind: str, value: Any) -> str:
    """``value`` masked by the rule of ``kind`` (text in the reader's language for the hidden ones).

    :param kind: one of :data:`KINDS`
    :param value: the stored value; None and '' stay ''
    """
    if value is None or value == '':
        return ''
    text = str(value)
    if kind == ID_NUMBER:
        return mask_id_number(text)
    if kind == PHONE:
        return mask_phone(text)
    if kind == LOCATION:
        return mask_location(text)
    return _(MSG_HIDDEN)


def mask_data(data: Any, fields: Mapping[str, FieldSpec] | None = None) -> Any:
    """A copy of ``data`` (nested dicts and lists too: a hand-made form's rows) with every sensitive value masked.

    :param fields: the specs of the fields by id, when known (for markers and labels)
    """
    specs = fields or {}
    if isinstance(data, Mapping):
        masked: dict[str, Any] = {}
        for key, value in data.items():
            kind = field_kind(str(key), specs.get(str(key)))
            masked[key] = _mask_leaf(kind, value) if kind else mask_data(value, specs)
        return masked
    if isinstance(data, list):
        return [mask_data(item, specs) for item in data]
    return data


def _mask_leaf(kind: str, value: Any) -> Any:
    """A sensitive field's value masked; a list of values item by item; None stays None."""
    if value is None:
        return None
    if isinstance(value, list):
        return [_mask_leaf(kind, item) for item in value]
    return mask_value(kind, value)


def sensitive_keys(data: Mapping[str, Any], fields: Mapping[str, FieldSpec] | None = None) -> list[str]:
    """The keys of ``data`` (nested ones as ``parent.key``) that hold a sensitive value, in order."""
    specs, found = fields or {}, []
    for key, value in data.items():
        if field_kind(str(key), specs.get(str(key))) and value not in (None, ''):
            found.append(str(key))
        elif isinstance(value, Mapping):
            found.extend(f'{key}.{inner}' for inner in sensitive_keys(value, specs))
        elif isinstance(value, list):
            found.extend(f'{key}.{inner}' for item in value if isinstance(item, Mapping)
                         for inner in sensitive_keys(item, specs))
    return list(dict.fromkeys(found))


def looks_like_id_number(text: str | None) -> bool:
    """Whether search text is an ID number (18 characters, the last maybe X), which must never go in a URL."""
    return bool(text) and _ID_SHAPE.fullmatch(str(text).strip()) is not None


def holds_id_number(values: Iterable[str | None]) -> bool:
    """Whether any of ``values`` (the inputs of a search) is an ID number."""
    return any(looks_like_id_number(value) for value in values)
