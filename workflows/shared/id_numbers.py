"""Chinese resident identity numbers (公民身份号码, GB 11643-1999)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = '10X98765432'


def check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def id_number_problem(value: str) -> str | None:
    """Return what is wrong with ``value`` as an 18-digit ID number, or None when it is valid."""
    value = value.strip().upper()
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] == 'X'):
        return '公民身份号码应为 18 位（最后一位可为 X）。'
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return '公民身份号码中的出生日期无效。'
    if born.year < 1900 or born > date.today():
        return '公民身份号码中的出生日期无效。'
    if check_digit(value[:17]) != value[17]:
        return '公民身份号码校验位不正确。'
    return None


def mask_id_number(value: str | None) -> str:
    """Show the region and check digit only: 430922********123X."""
    if not value:
        return ''
    return value[:6] + '*' * (len(value) - 10) + value[-4:] if len(value) > 10 else '*' * len(value)


def id_number_field_problems(data: Mapping[str, Any], field: str = 'id_number') -> dict[str, list[str]]:
    """``{field: [message]}`` when ``data[field]`` is given and not a valid ID number, else ``{}``."""
    value = data.get(field)
    problem = id_number_problem(str(value)) if value else None
    return {field: [problem]} if problem else {}
