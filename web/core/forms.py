"""Render a task or start form (engine.forms.FormSpec) as HTML inputs, and read a submission back.

The server validates with ``engine.forms.validate_form``; the HTML constraint attributes are emitted as
well so that phones show the right keyboard and assistive technology announces the rules, but forms
carry ``novalidate``: the server's messages, in the user's language and next to the field, are the
single source of truth (the browser's own bubbles differ per browser and vanish on scroll).

Hand-made forms (a ``camunda:formKey`` with a registered marshmallow schema, such as a mediation
agreement with its list of parties) are read and rendered from the schema itself: see
:func:`parse_indexed` and :func:`schema_form` at the end of this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext
from marshmallow import Schema, ValidationError
from marshmallow import fields as ma_fields

from engine.errors import ValidationFailed
from engine.forms import FieldSpec, FormSpec
from engine.i18n import N_
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


# -- hand-made forms: a registered marshmallow schema, nested lists in indexed input names ----------------

#: blank rows offered below the filled ones of a list field (without JavaScript no row can be added)
BLANK_ROWS = 2
#: a list field shows at least this many rows
MIN_ROWS = 2
#: rows read back from one list field at most (the row indexes come from the client)
MAX_ROWS = 200
_INDEX = re.compile(r'^(\d{1,4})(?:-(.+))?$')

#: marshmallow's own messages, for schemas that keep them: the catalogue's msgids with the same meaning
MARSHMALLOW_MESSAGES = {
    'Missing data for required field.': N_('此项为必填项。'),
    'Field may not be null.': N_('此项为必填项。'),
    'Not a valid string.': N_('请输入文本。'),
    'Not a valid integer.': N_('请输入整数。'),
    'Not a valid number.': N_('请输入数字，最多保留两位小数。'),
    'Not a valid date.': N_('请输入 YYYY-MM-DD 格式的日期。'),
    'Not a valid boolean.': N_('请选择是或否。'),
    'Unknown field.': N_('表单中没有此项。'),
    'Invalid input type.': N_('提交的数据格式不正确。'),
    'Invalid type.': N_('提交的数据格式不正确。'),
    'Not a valid list.': N_('提交的数据格式不正确。'),
}


def schema_message(message: str) -> str:
    """A hand-made form's error in the reader's language (marshmallow's English defaults included)."""
    return translate(MARSHMALLOW_MESSAGES.get(message, message))


def input_name(path: str) -> str:
    """The input name of a data path: ``parties.0.name`` → ``parties-0-name``."""
    return path.replace('.', '-')


def _input_fields(schema: Schema) -> list[tuple[str, ma_fields.Field[Any]]]:
    """The schema's loadable fields as ``(input key, field)``, in declaration order."""
    return [(spec.data_key or name, spec) for name, spec in schema.load_fields.items()]


def _row_schema(spec: ma_fields.Field[Any]) -> Schema | None:
    """The schema of each row of a ``List(Nested(...))`` field, else None."""
    if isinstance(spec, ma_fields.List) and isinstance(spec.inner, ma_fields.Nested):
        inner = spec.inner.schema
        return inner if isinstance(inner, Schema) else None
    return None


def _nested_schema(spec: ma_fields.Field[Any]) -> Schema | None:
    """The schema of a single ``Nested(...)`` field, else None."""
    if isinstance(spec, ma_fields.Nested) and isinstance(spec.schema, Schema):
        return spec.schema
    return None


def _under(formdata: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The entries whose names start with ``prefix-``, with the prefix taken off."""
    start = f'{prefix}-'
    return {key[len(start):]: formdata[key] for key in formdata if key.startswith(start)}


def _indexed(entries: Mapping[str, str]) -> dict[int, dict[str, str]]:
    """``{'0-name': 'a', '1': 'b'}`` → ``{0: {'name': 'a'}, 1: {'': 'b'}}`` (other keys ignored)."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in entries.items():
        match = _INDEX.match(key)
        if match and int(match.group(1)) < MAX_ROWS:
            rows.setdefault(int(match.group(1)), {})[match.group(2) or ''] = value
    return rows


def _text(value: Any) -> str | None:
    """A submitted value stripped, or None when blank."""
    text = value.strip() if isinstance(value, str) else ''
    return text or None


def parse_indexed(schema: Schema, formdata: Mapping[str, str]) -> dict[str, Any]:
    """Read a hand-made form's submission into the nested data its schema loads.

    List fields use indexed names: ``parties-0-name``, ``parties-0-role``, ``parties-1-name`` →
    ``{'parties': [{'name': ..., 'role': ...}, {'name': ...}]}``; a nested field ``address-city`` →
    ``{'address': {'city': ...}}``. Blank values are left out (so that required fields say so), rows
    left entirely blank are dropped and the rest renumbered in order. Names that are not the schema's
    (``csrf_token``) are ignored.

    :param schema: the registered schema (an instance)
    :param formdata: ``request.form`` or any mapping of input names to text
    """
    data: dict[str, Any] = {}
    for key, spec in _input_fields(schema):
        value = _parse_field(key, spec, formdata)
        if value is not None:
            data[key] = value
    return data


def _parse_field(key: str, spec: ma_fields.Field[Any], formdata: Mapping[str, str]) -> Any:
    rows, nested = _row_schema(spec), _nested_schema(spec)
    if rows is not None:
        indexed = _indexed(_under(formdata, key))
        parsed = [parse_indexed(rows, {k: v for k, v in row.items() if k}) for _, row in sorted(indexed.items())]
        return [row for row in parsed if row] or None
    if isinstance(spec, ma_fields.List):
        items = [_text(row.get('')) for _, row in sorted(_indexed(_under(formdata, key)).items())]
        return [item for item in items if item is not None] or None
    if nested is not None:
        return parse_indexed(nested, _under(formdata, key)) or None
    return _text(formdata.get(key))


def schema_values(schema: Schema, data: Mapping[str, Any]) -> dict[str, str]:
    """Stored (or parsed) data as the texts of the inputs named as :func:`parse_indexed` reads them."""
    values: dict[str, str] = {}
    for key, spec in _input_fields(schema):
        if key in data and data[key] is not None:
            values.update(_flatten(key, spec, data[key]))
    return values


def _flatten(name: str, spec: ma_fields.Field[Any], value: Any) -> dict[str, str]:
    rows, nested = _row_schema(spec), _nested_schema(spec)
    if rows is not None and isinstance(value, list):
        return {f'{name}-{index}-{key}': text for index, row in enumerate(value) if isinstance(row, Mapping)
                for key, text in schema_values(rows, row).items()}
    if isinstance(spec, ma_fields.List) and isinstance(value, list):
        return {f'{name}-{index}': as_input_text(item) for index, item in enumerate(value)}
    if nested is not None and isinstance(value, Mapping):
        return {f'{name}-{key}': text for key, text in schema_values(nested, value).items()}
    return {name: as_input_text(value)}


def _schema_kind(spec: ma_fields.Field[Any]) -> str:
    """The input a hand-made form's field is shown with (text, except dates and numbers)."""
    if isinstance(spec, ma_fields.Date):
        return 'date'
    if isinstance(spec, ma_fields.Integer):
        return 'number'
    if isinstance(spec, ma_fields.Number):
        return 'decimal'
    return 'text'


def _label(key: str, spec: ma_fields.Field[Any]) -> str:
    return str(spec.metadata.get('label') or key)


@dataclass(frozen=True)
class SchemaInput:
    """One input of a hand-made form: its indexed name, label, text and errors."""

    name: str
    label: str
    kind: str
    value: str
    required: bool
    errors: tuple[str, ...] = ()
    hint: str = ''

    @property
    def dom_id(self) -> str:
        """The input's id, which its <label for> and error text refer to."""
        return f'field-{self.name}'

    @property
    def described_by(self) -> str:
        """Ids of the hint and error texts, for ``aria-describedby``."""
        ids = [f'{self.dom_id}-hint'] if self.hint else []
        return ' '.join(ids + ([f'{self.dom_id}-error'] if self.errors else []))


@dataclass(frozen=True)
class SchemaList:
    """A list field of a hand-made form: a table of rows, one input per column of the row schema."""

    name: str
    label: str
    required: bool
    columns: tuple[tuple[str, bool], ...]
    rows: tuple[tuple[SchemaInput, ...], ...]
    errors: tuple[str, ...] = ()
    hint: str = ''

    @property
    def dom_id(self) -> str:
        """The id of the fieldset, which its error text refers to."""
        return f'field-{self.name}'


@dataclass
class SchemaForm:
    """A hand-made form ready for its template: its inputs and lists in order, and the errors of no input.

    :param template: the form's own template, or None for the generic one
    """

    items: list[SchemaInput | SchemaList]
    form_errors: list[str]
    template: str | None = None
    _by_name: dict[str, SchemaInput | SchemaList] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {item.name: item for item in self.items}

    def __getitem__(self, name: str) -> SchemaInput | SchemaList:
        """An item by input name, for hand-written templates: ``form['parties']``."""
        return self._by_name[name]


class _ErrorSink:
    """Hands out the errors of each rendered path once; what is left belongs to no input."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.left = {key: list(messages) for key, messages in errors.items()}

    def take(self, path: str) -> tuple[str, ...]:
        return tuple(schema_message(message) for message in self.left.pop(path, []))

    def take_under(self, path: str) -> tuple[str, ...]:
        """Errors of ``path`` and of anything below it that no input took (a row's ``_schema``)."""
        keys = [key for key in self.left if key == path or key.startswith(f'{path}.')]
        return tuple(schema_message(message) for key in keys for message in self.left.pop(key))


def _inputs(schema: Schema, prefix: str, values: Mapping[str, str], sink: _ErrorSink) -> list[SchemaInput]:
    """One input per field of ``schema`` (a row or a nested record), named under ``prefix``.

    Deeper structure (a list inside a row) is not laid out generically: such a form needs its own template.
    """
    return [_scalar(f'{prefix}.{key}', spec, values, sink, label_key=key) for key, spec in _input_fields(schema)]


def _row_count(name: str, values: Mapping[str, str], extra: int) -> int:
    filled = {int(match.group(1)) for key in values if key.startswith(f'{name}-')
              and (match := _INDEX.match(key[len(name) + 1:]))}
    return min(max(len(filled) + BLANK_ROWS, MIN_ROWS) + extra, MAX_ROWS)


def _list_item(key: str, spec: ma_fields.Field[Any], rows: Schema, values: Mapping[str, str],
               sink: _ErrorSink, extra: int) -> SchemaList:
    count = _row_count(key, values, extra)
    built = tuple(tuple(_inputs(rows, f'{key}.{index}', values, sink)) for index in range(count))
    columns = tuple((_label(name, sub), sub.required) for name, sub in _input_fields(rows))
    return SchemaList(key, _label(key, spec), spec.required, columns, built, sink.take_under(key),
                      str(spec.metadata.get('hint') or ''))


def schema_form(schema: Schema, values: Mapping[str, str], errors: Mapping[str, list[str]] | None = None,
                template: str | None = None, add_row: str | None = None) -> SchemaForm:
    """Lay out a hand-made form: a text input per scalar field, a table of rows per list of records.

    Errors arrive keyed by data path (``parties.0.name``, as ``ValidationFailed.fields`` has them) and
    are put beside the input of the same indexed name; those of a whole list above its table; any
    other (a cross-field check) at the top of the form.

    :param values: input texts by input name (:func:`schema_values`)
    :param template: the form's own template, if it has one
    :param add_row: the list field whose 增加一行 button was pressed: it gets one more blank row
    """
    sink = _ErrorSink(errors or {})
    items: list[SchemaInput | SchemaList] = []
    for key, spec in _input_fields(schema):
        rows, nested = _row_schema(spec), _nested_schema(spec)
        if rows is not None:
            items.append(_list_item(key, spec, rows, values, sink, 1 if key == add_row else 0))
        elif nested is not None:
            items.extend(_inputs(nested, key, values, sink))
        else:
            items.append(_scalar(key, spec, values, sink))
    form_errors = [schema_message(message) for messages in sink.left.values() for message in messages]
    return SchemaForm(items, form_errors, template)


def _scalar(path: str, spec: ma_fields.Field[Any], values: Mapping[str, str], sink: _ErrorSink, *,
            label_key: str | None = None) -> SchemaInput:
    """The input of the field at data ``path`` (``amount``, ``parties.0.name`` → ``parties-0-name``)."""
    name = input_name(path)
    return SchemaInput(name, _label(label_key or path, spec), _schema_kind(spec), values.get(name, ''),
                       spec.required, sink.take(path), str(spec.metadata.get('hint') or ''))


# -- small page forms (snooze a reminder, add a calendar day) read through a marshmallow input schema ------

def load_form(schema: Schema, formdata: Mapping[str, str]) -> dict[str, Any]:
    """Load a posted page form through ``schema``: blank inputs count as missing, csrf_token is ignored.

    :raise ValidationFailed: with every field's messages (msgids, translated where they are shown)
    """
    data = {key: text for key, spec in _input_fields(schema) if (text := _text(formdata.get(key))) is not None}
    try:
        return dict(schema.load(data))
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {'_schema': error.messages}
        raise ValidationFailed('数据有误，请检查标出的字段。',
                               {str(key): [str(m) for m in (value if isinstance(value, list) else [value])]
                                for key, value in messages.items()}) from None


def field_errors(errors: Mapping[str, list[str]], name: str) -> list[str]:
    """The translated errors of one input of a page form."""
    return [schema_message(message) for message in errors.get(name, ())]
