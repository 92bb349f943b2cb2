"""How a process key turns start data into a case: number prefix, title and subject columns.

Domain packages register a profile per process key (``register_profile``); the engine never imports
them. A key with no profile gets the default, which copies the well-known field names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import ValidationFailed

#: the Case columns a profile may fill from start data
SUBJECT_COLUMNS = ('person_name', 'id_number', 'hospital', 'claimed_amount', 'start_event_on', 'risk_colour')


def _default_columns(data: Mapping[str, Any]) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name in ('person_name', 'id_number', 'hospital', 'risk_colour'):
        if data.get(name):
            columns[name] = str(data[name])
    if data.get('claimed_amount') not in (None, ''):
        try:
            columns['claimed_amount'] = Decimal(str(data['claimed_amount']))
        except InvalidOperation:
            raise ValidationFailed('数据有误', {'claimed_amount': ['请输入金额。']}) from None
    return columns


@dataclass(frozen=True)
class CaseProfile:
    """What a process key's cases look like.

    :param prefix: case number prefix, e.g. ``SJ`` (社矫) or ``YT`` (医调)
    :param start_field: the start-data field holding the legal start date, if any
    :param title: builds the list title from start data
    :param columns: maps start data to subject columns; raises ValidationFailed on bad values
    :param validate: extra checks across fields; returns ``{field: [messages]}``
    :param attach_to_case: a request process (外出, 变更执行地, 报警核查...): started on the existing case
        named by the ``case_id`` start field instead of opening a new case
    :param case_kinds: the kinds (process keys) of the cases such a request may be started on; empty for any
    """

    prefix: str = 'AJ'
    start_field: str | None = None
    title: Callable[[Mapping[str, Any], str], str] = field(
        default=lambda data, name: str(data.get('person_name') or data.get('title') or name))
    columns: Callable[[Mapping[str, Any]], dict[str, Any]] = _default_columns
    validate: Callable[[Mapping[str, Any]], dict[str, list[str]]] = field(default=lambda data: {})
    attach_to_case: bool = False
    case_kinds: tuple[str, ...] = ()

    def subject_columns(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``data`` and return the Case column values it yields."""
        problems = self.validate(data)
        if problems:
            raise ValidationFailed('数据有误，请检查标出的字段。', problems)
        columns = self.columns(data)
        if self.start_field and data.get(self.start_field):
            columns['start_event_on'] = date.fromisoformat(str(data[self.start_field]))
        return columns


_profiles: dict[str, CaseProfile] = {}
DEFAULT_PROFILE = CaseProfile()


def register_profile(process_key: str, profile: CaseProfile) -> None:
    """Register how cases of ``process_key`` are numbered and described."""
    _profiles[process_key] = profile


def profile_for(process_key: str) -> CaseProfile:
    """Return the profile of ``process_key``, or the default one."""
    return _profiles.get(process_key, DEFAULT_PROFILE)
