"""Render a task or start form (engine.forms.FormSpec) as HTML inputs, and read a submission back.

The server validates with ``engine.forms.validate_form``; the HTML constraint attributes are emitted as
well so that phones show the right keyboard and assistive technology announces the rules, but forms
carry ``novalidate``: the server's messages, in the user's language and next to the field, are the
single source of truth (the browser's own bubbles differ per browser and vanish on scroll).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext

from engine.forms import FieldSpec, FormSpec
from web.core.pages import translate

#: a string field longer than this gets a textarea
TEXTAREA_ABOVE = 200


@dataclass(frozen=True)
class Widget:
    """One field ready for the ``form_field`` macro: which input, its current text and its errors."""

    field: FieldSpec
    kind: str
    value: str
    errors: tuple[str, ...]

    @property
    def dom_id(self) -> str:
        """The input's id, which its <label for> and error text refer to."""
        return f'field-{self.field.id}'

    @property
    def hint(self) -> str:
        """The field's rules in words (``2–30 个字符``), shown under its label."""
        spec = self.field
        if spec.type == 'string':
            return _length_hint(spec.min_length, spec.max_length)
        if spec.minimum is not None and spec.maximum is not None:
            return gettext('%(min)s 至 %(max)s', min=spec.minimum, max=spec.maximum)
        if spec.minimum is not None:
            return gettext('不小于 %(min)s', min=spec.minimum)
        if spec.maximum is not None:
            return gettext('不大于 %(max)s', max=spec.maximum)
        return gettext('金额，最多两位小数') if spec.type == 'decimal' else ''

    @property
    def described_by(self) -> str:
        """Ids of the hint and error texts, for ``aria-describedby``."""
        ids = [f'{self.dom_id}-hint'] if self.hint else []
        return ' '.join(ids + ([f'{self.dom_id}-error'] if self.errors else []))

    @property
    def attrs(self) -> dict[str, str]:
        """Length and range constraints as HTML attributes."""
        spec, attrs = self.field, {}
        if spec.min_length is not None:
            attrs['minlength'] = str(spec.min_length)
        if spec.max_length is not None:
            attrs['maxlength'] = str(spec.max_length)
        if spec.minimum is not None:
            attrs['min'] = str(spec.minimum)
        if spec.maximum is not None:
            attrs['max'] = str(spec.maximum)
        return attrs


def _length_hint(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return gettext('%(min)s–%(max)s 个字符', min=minimum, max=maximum)
    if minimum is not None:
        return gettext('至少 %(min)s 个字符', min=minimum)
    if maximum is not None:
        return gettext('最多 %(max)s 个字符', max=maximum)
    return ''


def widget_kind(spec: FieldSpec) -> str:
    """The input a field type is shown with."""
    if spec.type == 'string':
        return 'textarea' if (spec.max_length or 0) > TEXTAREA_ABOVE else 'text'
    return {'long': 'number', 'boolean': 'yesno', 'date': 'date', 'enum': 'select',
            'decimal': 'decimal'}.get(spec.type, 'text')


def as_input_text(value: Any) -> str:
    """A stored task-data value as the text its input holds (``True`` → ``'true'``)."""
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def initial_values(form: FormSpec, data: Mapping[str, Any]) -> dict[str, str]:
    """Pre-fill from the task's data, else the field's literal default (not a ``${...}`` expression)."""
    values = {}
    for spec in form.fields:
        if spec.id in data:
            values[spec.id] = as_input_text(data[spec.id])
        elif spec.default and not spec.default.startswith(('${', '#{')):
            values[spec.id] = spec.default
    return values


def submitted_values(form: FormSpec, formdata: Mapping[str, str]) -> dict[str, str]:
    """Exactly what the user typed, to show again beside the errors."""
    return {spec.id: formdata.get(spec.id, '') for spec in form.fields}


def submitted_data(form: FormSpec, formdata: Mapping[str, str]) -> dict[str, str]:
    """The submission for ``validate_form``: the form's own fields only (not csrf_token)."""
    return {spec.id: formdata[spec.id] for spec in form.fields if spec.id in formdata and not spec.readonly}


def widgets(form: FormSpec, values: Mapping[str, str],
            errors: Mapping[str, list[str]] | None = None) -> list[Widget]:
    """The form's fields in order, with their values and translated errors."""
    errors = errors or {}
    return [Widget(spec, widget_kind(spec), values.get(spec.id, ''),
                   tuple(translate(message) for message in errors.get(spec.id, ())))
            for spec in form.fields]


def form_level_errors(form: FormSpec, errors: Mapping[str, list[str]]) -> list[str]:
    """Errors that belong to no field of the form (cross-field checks, unknown keys)."""
    ids = {spec.id for spec in form.fields}
    return [translate(message) for key, messages in errors.items() if key not in ids for message in messages]
