"""Input schema of the case search: the same fields arrive as a query string (GET) or a form body (POST).

Messages are Chinese msgids, translated when the form is shown again (``web.core.pages.translate``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates, validates_schema

from engine.i18n import N_
from engine.models.cases import CASE_STATUSES
from workflows.shared.id_numbers import id_number_problem

MSG_DATE = N_('请按“年-月-日”填写日期，如 2025-09-26。')
MSG_DATE_RANGE = N_('结束日期不能早于开始日期。')
MSG_KIND = N_('请从列表中选择流程。')
MSG_STATUS = N_('请从列表中选择状态。')
MSG_UNIT = N_('请从列表中选择机构：该机构不存在或不在您的范围内。')
MSG_TOO_LONG = N_('内容过长。')
MSG_CURSOR = N_('无法识别的分页游标。')

#: 2025-09-26, 2025/9/26, 2025.9.26 or 2025年9月26日 (what people type when a browser shows no date picker)
_DAY = re.compile(r'([0-9]{4})\s*[-/.年]\s*([0-9]{1,2})\s*[-/.月]\s*([0-9]{1,2})\s*日?')
#: a cursor longer than this cannot be an id we issued
_CURSOR_DIGITS = 18
#: the search fields, in the order the form and the URL show them
SEARCH_FIELDS = ('number', 'name', 'id_number', 'kind', 'status', 'org_unit', 'opened_from', 'opened_to')


def parse_day(text: str) -> date:
    """A calendar day typed as ISO ``YYYY-MM-DD`` or in the Chinese way (``2025年9月26日``).

    :raise ValueError: for anything else, or a day that does not exist
    """
    match = _DAY.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    year, month, day = (int(part) for part in match.groups())
    return date(year, month, day)


class Day(fields.Field[date | None]):
    """A date input; an empty one is no date."""

    default_error_messages = {'invalid': MSG_DATE}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date | None:
        if not isinstance(value, str):
            raise self.make_error('invalid')
        if not value.strip():
            return None
        try:
            return parse_day(value)
        except ValueError:
            raise self.make_error('invalid') from None


def _text(maximum: int) -> fields.String:
    return fields.String(load_default='', validate=validate.Length(max=maximum, error=MSG_TOO_LONG))


class CaseSearchSchema(Schema):
    """The filters of the case list; every one may be left empty.

    :param kinds: the process keys that may be chosen (the processes that open cases)
    :param units: the org unit codes that may be chosen (the caller's subtrees)
    """

    number = _text(32)
    name = _text(64)
    id_number = _text(18)
    kind = _text(128)
    status = _text(16)
    org_unit = _text(32)
    opened_from = Day(load_default=None)
    opened_to = Day(load_default=None)
    #: the id of the last case of the previous page
    before = _text(_CURSOR_DIGITS)
    #: the old single search box: a case-number or name prefix, or a whole ID number
    q = _text(64)

    class Meta:
        unknown = EXCLUDE  # csrf_token, lang

    def __init__(self, *, kinds: Collection[str], units: Collection[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kinds = kinds
        self.units = units

    @pre_load
    def _strip(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Blanks around a value are not part of it; the first of repeated keys counts."""
        return {key: data[key].strip() if isinstance(data[key], str) else data[key] for key in data}

    @validates('id_number')
    def _check_id_number(self, value: str, **kwargs: Any) -> None:
        problem = id_number_problem(value) if value else None
        if problem:
            raise ValidationError(problem)

    @validates('kind')
    def _check_kind(self, value: str, **kwargs: Any) -> None:
        if value and value not in self.kinds:
            raise ValidationError(MSG_KIND)

    @validates('status')
    def _check_status(self, value: str, **kwargs: Any) -> None:
        if value and value not in CASE_STATUSES:
            raise ValidationError(MSG_STATUS)

    @validates('org_unit')
    def _check_unit(self, value: str, **kwargs: Any) -> None:
        if value and value not in self.units:
            raise ValidationError(MSG_UNIT)

    @validates('before')
    def _check_cursor(self, value: str, **kwargs: Any) -> None:
        if value and not (value.isascii() and value.isdigit()):
            raise ValidationError(MSG_CURSOR)

    @validates_schema
    def _check_range(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        start, end = data.get('opened_from'), data.get('opened_to')
        if start and end and end < start:
            raise ValidationError(MSG_DATE_RANGE, 'opened_to')
