"""Template filters: dates in the reader's convention and zone, masked ID numbers, dashes for blanks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from flask_babel import get_locale

from workflows.shared.id_numbers import mask_id_number

DASH = '—'


def is_chinese() -> bool:
    """Whether the current request reads Chinese (anything but English)."""
    locale = get_locale()
    return locale is None or locale.language != 'en'


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get('TIMEZONE', 'Asia/Shanghai'))


def _as_date(value: Any) -> date | None:
    """A date from a datetime (in the local zone), a date, or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return value.astimezone(_zone()).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def local_date(value: Any) -> str:
    """``2025年10月16日`` in Chinese, ``2025-10-16`` in English; ``—`` for no value."""
    day = _as_date(value)
    if day is None:
        return DASH if value in (None, '') else str(value)
    return f'{day.year}年{day.month}月{day.day}日' if is_chinese() else day.isoformat()


def local_datetime(value: datetime | None) -> str:
    """The date as :func:`local_date` and the local time, ``2025年10月16日 09:30``."""
    if value is None:
        return DASH
    return f'{local_date(value)} {value.astimezone(_zone()):%H:%M}'


def iso_datetime(value: datetime | None) -> str:
    """Machine-readable time for ``<time datetime=...>``."""
    return value.astimezone(_zone()).isoformat(timespec='minutes') if value else ''


def dash(value: Any) -> Any:
    """``—`` for an empty value, the value otherwise."""
    return DASH if value in (None, '') else value


def init_templating(app: Flask) -> None:
    """Register the filters on ``app``."""
    app.add_template_filter(local_date)
    app.add_template_filter(local_datetime)
    app.add_template_filter(iso_datetime)
    app.add_template_filter(dash)
    app.add_template_filter(mask_id_number, 'mask_id')
    app.add_template_global(is_chinese)
