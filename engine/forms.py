"""User-task forms: the ``camunda:formData`` model and validation of submitted values.

A user task declares its form in BPMN::

    <bpmn:userTask id="intake" camunda:formKey="mediation-intake">
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="applicant_name" label="申请人姓名" type="string">
            <camunda:validation>
              <camunda:constraint name="required" />
              <camunda:constraint name="maxlength" config="20" />
            </camunda:validation>
          </camunda:formField>
        </camunda:formData>
      </bpmn:extensionElements>
    </bpmn:userTask>

:func:`form_from_xml` (at deployment) or :func:`form_from_spiff` (from a parsed spec) turns that
into an immutable :class:`FormSpec`, rejecting definitions we could not enforce. :func:`validate_form`
checks what a user submitted against it and returns clean, JSON-serialisable task data.

Field types: ``string``, ``long``, ``boolean``, ``date``, ``enum`` (Camunda's own) and ``decimal``,
our extension for money, kept as a normalised string with two decimal places so no amount ever
passes through a binary float.

Input is expected from HTML forms as well as JSON, so strings are accepted for every type
(``"12"``, ``"on"``, ``"2024-05-01"``), surrounding whitespace is ignored and an empty value means
"not given".
"""

from __future__ import annotations

import datetime as dt
import functools
import keyword
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, cast

from marshmallow import RAISE, Schema, ValidationError, pre_load, validate
from marshmallow import fields as ma_fields

from engine.errors import DeploymentRejected, ValidationFailed
from engine.i18n import N_, _

CAMUNDA_NS = 'http://camunda.org/schema/1.0/bpmn'

#: The ``type`` values a form field may have.
FIELD_TYPES = frozenset({'string', 'long', 'boolean', 'date', 'enum', 'decimal'})

#: The ``camunda:constraint`` names we enforce; anything else is refused at deployment rather
#: than silently not enforced.
CONSTRAINTS = frozenset({'required', 'minlength', 'maxlength', 'min', 'max', 'readonly'})

# Camunda's ``long`` is a Java long; values outside it could not round-trip to Camunda-style
# consumers and are almost certainly typing mistakes.
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

Bound = int | Decimal | dt.date

# -- messages ---------------------------------------------------------------------------------
# Marked with N_ only: they are translated with _() when an error is produced, so each request
# gets its own language (see engine.i18n).

MSG_FORM_INVALID = N_('表单填写有误，请检查标出的项。')
MSG_REQUIRED = N_('此项为必填项。')
MSG_UNKNOWN_FIELD = N_('表单中没有此项。')
MSG_BAD_PAYLOAD = N_('提交的数据格式不正确。')
MSG_TEXT = N_('请输入文本。')
MSG_BAD_CHARACTER = N_('包含无法保存的字符。')
MSG_MIN_LENGTH = N_('长度不能少于 {min} 个字符。')
MSG_MAX_LENGTH = N_('长度不能超过 {max} 个字符。')
MSG_INTEGER = N_('请输入整数。')
MSG_OUT_OF_RANGE = N_('数值超出允许范围。')
MSG_DECIMAL = N_('请输入数字，最多保留两位小数。')
MSG_MINIMUM = N_('不能小于 {min}。')
MSG_MAXIMUM = N_('不能大于 {max}。')
MSG_BOOLEAN = N_('请选择是或否。')
MSG_DATE = N_('请输入 YYYY-MM-DD 格式的日期。')
MSG_NO_SUCH_DATE = N_('该日期不存在。')
MSG_DATE_MINIMUM = N_('不能早于 {min}。')
MSG_DATE_MAXIMUM = N_('不能晚于 {max}。')
MSG_ENUM = N_('请选择列表中的选项。')

MSG_FORM_REJECTED = N_('用户任务“{task}”的表单定义有误。')
MSG_FORM_REJECTED_NO_TASK = N_('表单定义有误。')
MSG_FIELD_NO_ID = N_('表单字段缺少 id。')
MSG_FIELD_BAD_ID = N_('字段 id“{id}”不能用作变量名：只能包含字母、数字和下划线，且不能以数字开头。')
MSG_FIELD_DUPLICATE = N_('字段 id“{id}”重复。')
MSG_FIELD_NO_TYPE = N_('字段“{id}”缺少类型。')
MSG_FIELD_BAD_TYPE = N_('字段“{id}”的类型“{type}”不受支持。')
MSG_CONSTRAINT_UNKNOWN = N_('字段“{id}”的校验规则“{name}”不受支持。')
MSG_CONSTRAINT_NOT_FOR_TYPE = N_('字段“{id}”的校验规则“{name}”不适用于“{type}”类型。')
MSG_CONSTRAINT_BAD_CONFIG = N_('字段“{id}”的校验规则“{name}”的配置“{config}”无效。')
MSG_CONSTRAINT_CONFLICT = N_('字段“{id}”的下限大于上限。')
MSG_ENUM_NO_OPTIONS = N_('下拉字段“{id}”没有任何选项。')
MSG_ENUM_BAD_OPTION = N_('下拉字段“{id}”有选项缺少 id。')
MSG_ENUM_DUPLICATE_OPTION = N_('下拉字段“{id}”的选项“{option}”重复。')


# -- the model --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One ``camunda:formField``, checked and normalised.

    :param id: the task-data key the value is stored under
    :param label: text shown next to the input; the id when the designer gave none
    :param type: one of :data:`FIELD_TYPES`
    :param required: a value must be given
    :param min_length: fewest characters (``string`` only)
    :param max_length: most characters (``string`` only)
    :param minimum: smallest value, inclusive (``int`` for long, ``Decimal`` for decimal, ``date``)
    :param maximum: largest value, inclusive, same types as ``minimum``
    :param readonly: shown but never taken from input
    :param default: ``defaultValue`` exactly as written (may be a Camunda expression), for the
        renderer to pre-fill; validation does not apply it, so a user can still clear the field
    :param options: ``(id, name)`` pairs of an ``enum`` field, in document order
    :param properties: ``camunda:property`` ids to values, free-form hints for the renderer.
        Left out of the hash (dicts are unhashable) but still compared, so equal specs share
        one cached schema; treat it as read-only.
    """

    id: str
    label: str
    type: str
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    minimum: Bound | None = None
    maximum: Bound | None = None
    readonly: bool = False
    default: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    properties: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class FormSpec:
    """A user task's form.

    :param key: ``camunda:formKey``, naming a custom template; ``None`` when the task has none
        and the form is rendered generically from ``fields``
    :param fields: the fields in document order
    """

    key: str | None
    fields: tuple[FieldSpec, ...] = ()


@dataclass
class _RawField:
    """A form field as found in the source, before any checking; both readers produce these."""

    id: str | None
    type: str | None
    label: str | None
    default: str | None
    properties: list[tuple[str | None, str | None]] = field(default_factory=list)
    constraints: list[tuple[str | None, str | None]] = field(default_factory=list)
    options: list[tuple[str | None, str | None]] = field(default_factory=list)


def form_from_xml(user_task_node: Any, nsmap: Mapping[str, str] | None = None) -> FormSpec:
    """Read the form of a ``bpmn:userTask`` element.

    Reads the XML itself rather than relying on SpiffWorkflow's parser, so that the model does
    not depend on whether the task also has a ``camunda:formKey``.

    :param user_task_node: the lxml element of the user task
    :param nsmap: prefix-to-URI map as SpiffWorkflow's parsers carry it; only its ``camunda``
        entry is used, and the standard Camunda URI is assumed when it is missing
    :return: the checked form; a task without ``camunda:formData`` has no fields
    :raise DeploymentRejected: listing every problem in the form definition
    """
    namespace = (nsmap or {}).get('camunda') or CAMUNDA_NS

    def tag(local: str) -> str:
        return f'{{{namespace}}}{local}'

    raw_fields: list[_RawField] = []
    # Same path SpiffWorkflow uses, so both readers see the same fields.
    for xml_field in user_task_node.iterfind(f'.//{tag("formData")}/{tag("formField")}'):
        raw = _RawField(
            id=xml_field.get('id'),
            type=xml_field.get('type'),
            label=xml_field.get('label'),
            default=xml_field.get('defaultValue'),
        )
        for child in xml_field:
            if child.tag == tag('properties'):
                raw.properties.extend(
                    (prop.get('id'), prop.get('value')) for prop in child if prop.tag == tag('property')
                )
            elif child.tag == tag('validation'):
                raw.constraints.extend(
                    (rule.get('name'), rule.get('config')) for rule in child if rule.tag == tag('constraint')
                )
            elif child.tag == tag('value'):
                raw.options.append((child.get('id'), child.get('name')))
        raw_fields.append(raw)
    return _build_form(user_task_node.get(tag('formKey')), raw_fields, user_task_node.get('id'))


def form_from_spiff(form: Any) -> FormSpec:
    """Convert the ``Form`` SpiffWorkflow's ``CamundaParser`` put on a ``UserTask`` spec.

    Applies exactly the checks of :func:`form_from_xml`, so both give equal results for the
    same task.

    :param form: ``task_spec.form`` (a ``SpiffWorkflow.camunda.specs.user_task.Form``) or ``None``
    :return: the checked form
    :raise DeploymentRejected: listing every problem in the form definition
    """
    if form is None:
        return FormSpec(key=None)
    raw_fields = [
        _RawField(
            id=spiff_field.id,
            type=spiff_field.type,
            label=spiff_field.label,
            default=spiff_field.default_value,
            properties=[(prop.id, prop.value) for prop in spiff_field.properties],
            constraints=[(rule.name, rule.config) for rule in spiff_field.validation],
            # Only EnumFormField has options.
            options=[(option.id, option.name) for option in getattr(spiff_field, 'options', [])],
        )
        for spiff_field in form.fields
    ]
    return _build_form(form.key, raw_fields, None)


def _build_form(key: str | None, raw_fields: Iterable[_RawField], task_id: str | None) -> FormSpec:
    """Check every raw field and assemble the form, or reject it with all problems at once.

    Collecting all problems (not stopping at the first) lets a designer fix a model in one
    round trip instead of one deployment attempt per mistake.
    """
    problems: list[dict[str, Any]] = []
    specs: list[FieldSpec] = []
    seen: set[str] = set()
    for raw in raw_fields:
        spec = _build_field(raw, seen, problems)
        if spec is not None:
            specs.append(spec)
    if problems:
        if task_id:
            message = _(MSG_FORM_REJECTED).format(task=task_id)
        else:
            message = _(MSG_FORM_REJECTED_NO_TASK)
        raise DeploymentRejected(message, problems=problems)
    # An empty formKey is no key; both readers must agree on None.
    return FormSpec(key=key or None, fields=tuple(specs))


def _build_field(raw: _RawField, seen: set[str], problems: list[dict[str, Any]]) -> FieldSpec | None:
    """Check one field; append its problems and return ``None`` if it has any."""
    start = len(problems)

    def problem(msgid: str, **values: Any) -> None:
        problems.append({'element': raw.id or None, 'message': _(msgid).format(id=raw.id, **values)})

    field_id = raw.id or ''
    if not field_id:
        problem(MSG_FIELD_NO_ID)
        return None
    # Ids become task-data keys that gateway conditions and scripts read as Python names.
    if not field_id.isidentifier() or keyword.iskeyword(field_id):
        problem(MSG_FIELD_BAD_ID)
    if field_id in seen:
        problem(MSG_FIELD_DUPLICATE)
    seen.add(field_id)

    field_type = raw.type or ''
    if not field_type:
        problem(MSG_FIELD_NO_TYPE)
    elif field_type not in FIELD_TYPES:
        problem(MSG_FIELD_BAD_TYPE, type=field_type)
    # With no usable type, whether a constraint applies cannot be judged; saying so for every
    # constraint would only bury the real problem.
    type_known = field_type in FIELD_TYPES

    required = readonly = False
    min_length: int | None = None
    max_length: int | None = None
    minimum: Bound | None = None
    maximum: Bound | None = None
    for name, config in raw.constraints:
        if name == 'required':
            required = True
        elif name == 'readonly':
            readonly = True
        elif name in ('minlength', 'maxlength'):
            if not type_known:
                continue
            if field_type != 'string':
                problem(MSG_CONSTRAINT_NOT_FOR_TYPE, name=name, type=field_type)
                continue
            length = _parse_length(config)
            if length is None:
                problem(MSG_CONSTRAINT_BAD_CONFIG, name=name, config=config)
            elif name == 'minlength':
                min_length = length
            else:
                max_length = length
        elif name in ('min', 'max'):
            if not type_known:
                continue
            if field_type not in ('long', 'decimal', 'date'):
                problem(MSG_CONSTRAINT_NOT_FOR_TYPE, name=name, type=field_type)
                continue
            bound = _parse_bound(field_type, config)
            if bound is None:
                problem(MSG_CONSTRAINT_BAD_CONFIG, name=name, config=config)
            elif name == 'min':
                minimum = bound
            else:
                maximum = bound
        else:
            problem(MSG_CONSTRAINT_UNKNOWN, name=name)
    if min_length is not None and max_length is not None and min_length > max_length:
        problem(MSG_CONSTRAINT_CONFLICT)
    # Bounds share the field's type, so they are comparable; the ignore is for mypy's view of
    # the int | Decimal | date union.
    if minimum is not None and maximum is not None and minimum > maximum:  # type: ignore[operator]
        problem(MSG_CONSTRAINT_CONFLICT)

    options: list[tuple[str, str]] = []
    if field_type == 'enum':
        option_ids: set[str] = set()
        for option_id, option_name in raw.options:
            if not option_id:
                problem(MSG_ENUM_BAD_OPTION)
                continue
            if option_id in option_ids:
                problem(MSG_ENUM_DUPLICATE_OPTION, option=option_id)
            option_ids.add(option_id)
            options.append((option_id, option_name or option_id))
        # Without options the field could never be filled in, and a required one would make
        # the task impossible to complete.
        if not raw.options:
            problem(MSG_ENUM_NO_OPTIONS)

    if len(problems) > start:
        return None
    return FieldSpec(
        id=field_id,
        label=raw.label or field_id,
        type=field_type,
        required=required,
        min_length=min_length,
        max_length=max_length,
        minimum=minimum,
        maximum=maximum,
        readonly=readonly,
        default=raw.default,
        options=tuple(options),
        properties={prop_id: value or '' for prop_id, value in raw.properties if prop_id},
    )


# ASCII only: Python's int(), Decimal() and \d also accept full-width and other Unicode digits,
# which would let visually ambiguous input through.
_INTEGER_RE = re.compile(r'[+-]?[0-9]+')
_DECIMAL_RE = re.compile(r'[+-]?[0-9]+(?:\.[0-9]{1,2})?')
_DATE_RE = re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2}')
_CENT = Decimal('0.01')


def _parse_length(config: str | None) -> int | None:
    """Parse a minlength/maxlength config; ``None`` if it is not a non-negative integer."""
    text = (config or '').strip()
    return int(text) if _INTEGER_RE.fullmatch(text) and int(text) >= 0 else None


def _parse_bound(field_type: str, config: str | None) -> Bound | None:
    """Parse a min/max config in the field's own type; ``None`` if it does not parse."""
    text = (config or '').strip()
    if field_type == 'long':
        return int(text) if _INTEGER_RE.fullmatch(text) and len(text) <= 20 else None
    if field_type == 'decimal':
        try:
            value = Decimal(text)
        except InvalidOperation:
            return None
        return value if value.is_finite() else None
    if _DATE_RE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None
    return None


# -- marshmallow schema -----------------------------------------------------------------------


class _FormField(ma_fields.Field[Any]):
    """Base of our fields: error messages are translated when raised, not when defined.

    Schemas are cached and shared across requests, so messages fixed at construction would be
    in whichever language was active then.
    """

    msgids: ClassVar[dict[str, str]] = {'required': MSG_REQUIRED, 'null': MSG_REQUIRED}

    def make_error(self, key: str, **kwargs: Any) -> ValidationError:
        """Build the error for ``key`` in the current request's language.

        :param key: ``required``, ``null``, ``invalid`` or a field-specific key
        :param kwargs: values for the message's placeholders
        :return: the error to raise
        """
        return ValidationError(_(self.msgids[key]).format(**kwargs))


class _Text(_FormField):
    msgids = {**_FormField.msgids, 'invalid': MSG_TEXT, 'bad_character': MSG_BAD_CHARACTER}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if not isinstance(value, str):
            raise self.make_error('invalid')
        # PostgreSQL's jsonb refuses \u0000, and lone surrogates (possible from JSON "\ud800")
        # cannot be encoded; refuse them here rather than fail when the task data is stored.
        if '\x00' in value:
            raise self.make_error('bad_character')
        try:
            value.encode('utf-8')
        except UnicodeEncodeError:
            raise self.make_error('bad_character') from None
        return value


class _Enum(_FormField):
    msgids = {**_FormField.msgids, 'invalid': MSG_ENUM}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        # Membership itself is checked by _OneOf; this only keeps non-strings (e.g. a JSON 1 for
        # option "1") from being compared at all.
        if not isinstance(value, str):
            raise self.make_error('invalid')
        return value


class _Long(_FormField):
    msgids = {**_FormField.msgids, 'invalid': MSG_INTEGER, 'out_of_range': MSG_OUT_OF_RANGE}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        # bool is an int subclass; True is not the number 1 a user typed. Floats are refused even
        # when whole: a JSON 12.0 usually means the client computed it, and "12a" must not pass
        # by way of lenient coercion either.
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and _INTEGER_RE.fullmatch(value):
            # Checked before int(): very long digit strings are slow to convert and beyond
            # Python's default conversion limit.
            if len(value.lstrip('+-').lstrip('0')) > 19:
                raise self.make_error('out_of_range')
            number = int(value)
        else:
            raise self.make_error('invalid')
        if not LONG_MIN <= number <= LONG_MAX:
            raise self.make_error('out_of_range')
        return number


class _Money(_FormField):
    """The ``decimal`` type: at most two places, normalised to exactly two, never a float."""

    msgids = {**_FormField.msgids, 'invalid': MSG_DECIMAL, 'out_of_range': MSG_OUT_OF_RANGE}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Decimal:
        # Returns Decimal so _Range can compare; the post_load hook turns it into a string.
        if isinstance(value, int) and not isinstance(value, bool):
            amount = Decimal(value)
        elif isinstance(value, Decimal) and value.is_finite() and _places(value) <= 2:
            amount = value
        elif isinstance(value, str) and _DECIMAL_RE.fullmatch(value):
            amount = Decimal(value)
        else:
            # Floats included: 0.1 + 0.2 style errors are exactly what this type exists to avoid.
            raise self.make_error('invalid')
        try:
            amount = amount.quantize(_CENT)
        except InvalidOperation:
            # More digits than the decimal context's precision (28): no real amount is that big.
            raise self.make_error('out_of_range') from None
        # "-0" is a valid input but "-0.00" would be a confusing thing to store.
        return amount.copy_abs() if amount.is_zero() else amount


def _places(value: Decimal) -> int:
    """Number of decimal places ``value`` is written with."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _money_text(value: Decimal) -> str:
    """Render a quantised amount as plain digits, never in exponent notation."""
    return format(value, 'f')


class _Boolean(_FormField):
    msgids = {**_FormField.msgids, 'invalid': MSG_BOOLEAN}

    # What HTML checkboxes, selects and JSON clients send; anything else is more likely a
    # mistake than a yes or no.
    truthy: ClassVar[frozenset[str]] = frozenset({'true', 'on', '1'})
    falsy: ClassVar[frozenset[str]] = frozenset({'false', 'off', '0'})

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            lowered = value.lower()
            if lowered in self.truthy:
                return True
            if lowered in self.falsy:
                return False
        raise self.make_error('invalid')


class _Date(_FormField):
    msgids = {**_FormField.msgids, 'invalid': MSG_DATE, 'no_such_date': MSG_NO_SUCH_DATE}

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dt.date:
        # A datetime is a date subclass; accepting it would silently drop the time of day.
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        # The regex first: date.fromisoformat also takes "20240501" and week dates, which the
        # message promises we do not.
        if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
            raise self.make_error('invalid')
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise self.make_error('no_such_date') from None


class _Length(validate.Length):
    """``validate.Length`` with one bound per instance and messages translated when raised."""

    message_min = MSG_MIN_LENGTH
    message_max = MSG_MAX_LENGTH

    def _format_error(self, value: Any, message: str) -> str:
        # The input itself is deliberately not interpolated: messages may end up in logs.
        return _(message).format(min=self.min, max=self.max)


class _Range(validate.Range):
    """``validate.Range`` (inclusive) with one bound per instance and translated messages.

    One bound per instance so the message says which way the value is wrong; Range would use
    its combined "between" message whenever both bounds are set.
    """

    def __init__(self, *, min: Bound | None = None, max: Bound | None = None, msgid: str) -> None:
        super().__init__(min=min, max=max)
        self.msgid = msgid

    def _format_error(self, value: Any, message: str) -> str:
        return _(self.msgid).format(min=self.min, max=self.max)


class _OneOf(validate.OneOf):
    """``validate.OneOf`` with its message translated when raised."""

    def _format_error(self, value: Any) -> str:
        return _(MSG_ENUM)


class _TranslatedMessages(dict[str, str]):
    """Schema-level messages (unknown field, wrong payload type), translated on lookup.

    marshmallow reads ``schema.error_messages[...]`` at the moment it reports the error, which
    is the hook for translating them per request in a shared schema.
    """

    def __getitem__(self, key: str) -> str:
        return _(super().__getitem__(key))


class _FormSchema(Schema):
    """Base class of the schemas :func:`build_schema` generates."""

    #: ids of readonly fields: dropped from input without complaint (see ``_normalise_input``)
    readonly_ids: ClassVar[frozenset[str]] = frozenset()

    error_messages = {'unknown': MSG_UNKNOWN_FIELD, 'type': MSG_BAD_PAYLOAD}

    class Meta(Schema.Meta):
        unknown = RAISE
        # Generated classes must not enter marshmallow's global class registry, which would keep
        # every one alive after the lru_cache evicts it.
        register = False

    def __init__(self) -> None:
        super().__init__()
        self.error_messages = _TranslatedMessages(self.error_messages)

    @pre_load
    def _normalise_input(self, data: Any, **kwargs: Any) -> Any:
        """Drop readonly keys and empty values, and strip surrounding whitespace.

        Browsers submit every input, filled in or not, so ``""`` (or spaces) must mean "not
        given" for required/optional handling to work. Readonly values are shown, not edited;
        whatever a client sends for them is discarded instead of rejected, because a plain HTML
        form may well echo them back.
        """
        if not isinstance(data, Mapping):
            return data  # marshmallow reports the "type" error
        cleaned: dict[str, Any] = {}
        # data[key] rather than data.items(): for a werkzeug MultiDict it yields the first value,
        # where dict-level access would give lists.
        for key in data:
            if key in self.readonly_ids:
                continue
            value = data[key]
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
            if value is None:
                continue
            cleaned[key] = value
        return cleaned


def _make_field(spec: FieldSpec) -> ma_fields.Field[Any]:
    """The marshmallow field enforcing one :class:`FieldSpec`."""
    kwargs: dict[str, Any] = {'data_key': spec.id, 'attribute': spec.id}
    if spec.required:
        kwargs['required'] = True
    else:
        # Absent optional values come out explicitly (not missing), so submitting a cleared
        # field clears the stored value; an unticked checkbox is False, not "unknown".
        kwargs['load_default'] = False if spec.type == 'boolean' else None
    validators: list[Callable[[Any], Any]] = []
    if spec.min_length is not None:
        validators.append(_Length(min=spec.min_length))
    if spec.max_length is not None:
        validators.append(_Length(max=spec.max_length))
    is_date = spec.type == 'date'
    if spec.minimum is not None:
        validators.append(_Range(min=spec.minimum, msgid=MSG_DATE_MINIMUM if is_date else MSG_MINIMUM))
    if spec.maximum is not None:
        validators.append(_Range(max=spec.maximum, msgid=MSG_DATE_MAXIMUM if is_date else MSG_MAXIMUM))
    if validators:
        kwargs['validate'] = validators

    if spec.type == 'string':
        return _Text(**kwargs)
    if spec.type == 'long':
        return _Long(**kwargs)
    if spec.type == 'boolean':
        return _Boolean(**kwargs)
    if spec.type == 'date':
        # Validators compare date objects; the stored value is the ISO string.
        return _Date(post_load=dt.date.isoformat, **kwargs)
    if spec.type == 'decimal':
        return _Money(post_load=_money_text, **kwargs)
    if spec.type == 'enum':
        kwargs['validate'] = [*validators, _OneOf([option_id for option_id, _name in spec.options])]
        return _Enum(**kwargs)
    # Only reachable with a hand-built FieldSpec: the readers refuse unknown types.
    raise ValueError(f'unsupported form field type {spec.type!r}')


@functools.lru_cache(maxsize=256)
def build_schema(form: FormSpec) -> Schema:
    """The marshmallow schema enforcing ``form``, built once per distinct form.

    ``schema.load(data)`` returns the same clean data as :func:`validate_form` but raises
    marshmallow's ``ValidationError``. The instance is shared between callers and threads:
    never modify it.

    :param form: the form to enforce
    :return: a schema that rejects unknown keys and ignores readonly fields
    """
    attrs: dict[str, Any] = {'readonly_ids': frozenset(spec.id for spec in form.fields if spec.readonly)}
    for index, spec in enumerate(form.fields):
        if not spec.readonly:
            # Positional attribute names, with the id as data_key/attribute: an id such as
            # "load" or "fields" must not shadow Schema's own members.
            attrs[f'field_{index}'] = _make_field(spec)
    schema_class = cast(type[_FormSchema], type('FormSchema', (_FormSchema,), attrs))
    return schema_class()


#: hand-made forms: formKey → marshmallow schema class (e.g. a mediation agreement with its parties)
_registered_forms: dict[str, type[Schema]] = {}


def register_form(key: str, schema: type[Schema]) -> None:
    """Register ``schema`` as the hand-made form ``camunda:formKey="key"`` (a domain package calls this).

    The schema's ``load`` validates the submission; its result must be JSON-serialisable or made of
    dates, datetimes and decimals (converted to ISO strings and decimal strings).
    """
    _registered_forms[key] = schema


def registered_form(key: str | None) -> type[Schema] | None:
    """The schema registered for form key ``key``, if any."""
    return _registered_forms.get(key) if key else None


def validate_form(form: FormSpec, data: Mapping[str, Any]) -> dict[str, Any]:
    """Check submitted values against ``form`` and return clean task data.

    A form whose key names a registered hand-made form is validated by that form's schema. Otherwise
    every non-readonly field appears in the result: strings, ``int`` for long, ``bool`` for
    boolean, ISO ``YYYY-MM-DD`` strings for date, option ids for enum, and strings with exactly
    two decimal places for decimal; optional fields left empty are ``None`` (booleans ``False``).

    :param form: the task's form
    :param data: submitted values, e.g. parsed JSON or ``request.form``; with repeated keys the
        first value counts
    :return: JSON-serialisable values keyed by field id
    :raise ValidationFailed: with every field's messages at once; unknown keys are reported
        under their own name
    """
    schema_class = registered_form(form.key)
    try:
        if schema_class is not None:
            return _jsonable(schema_class().load(data))
        return dict(build_schema(form).load(data))
    except ValidationError as error:
        raise ValidationFailed(_(MSG_FORM_INVALID), fields=_field_messages(error.messages)) from None


def _jsonable(value: Any) -> dict[str, Any]:
    def convert(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {str(k): convert(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [convert(v) for v in item]
        if isinstance(item, (dt.date, dt.datetime)):
            return item.isoformat()
        if isinstance(item, Decimal):
            return str(item)
        return item
    result = convert(value)
    return result if isinstance(result, dict) else {'value': result}


def _field_messages(messages: Any, prefix: str = '') -> dict[str, list[str]]:
    """marshmallow's error structure as ``{field_id: [message, ...]}``; nested fields as ``parties.0.name``."""
    if not isinstance(messages, dict):
        return {prefix or '_schema': [str(message) for message in _as_list(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        name = f'{prefix}.{key}' if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_field_messages(value, name))
        else:
            flat[name] = [str(message) for message in _as_list(value)]
    return flat


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
