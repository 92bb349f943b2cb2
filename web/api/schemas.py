"""API payloads: output schemas list exactly what goes out (``Meta.fields``); input schemas are separate.

Every message an input schema can produce is Simplified Chinese, because API clients show them to
staff as they are. Objects are dumped straight from the models (and a few plain dicts built in
``controllers``); nothing here touches the database.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from engine.models.cases import CASE_STATUSES
from engine.tasks import VIEWS
from workflows.shared.id_numbers import mask_id_number

#: the largest page any list endpoint serves
MAX_LIMIT = 200
DEFAULT_LIMIT = 50

_COMMON_MESSAGES = {
    'required': '此项为必填项。',
    'null': '此项不能为空值。',
    'validator_failed': '取值无效。',
}


# -- fields with Chinese messages -------------------------------------------------------------------

class Text(fields.String):
    """A string field whose errors read in Chinese; refuses NUL, which PostgreSQL cannot store."""

    default_error_messages = {**_COMMON_MESSAGES, 'invalid': '应为文本。', 'invalid_utf8': '包含无效的字符。',
                              'nul': '包含无法保存的字符。'}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if '\x00' in text:
            raise self.make_error('nul')
        return text


class Count(fields.Integer):
    """An integer field whose errors read in Chinese (query strings give it text, JSON gives numbers)."""

    default_error_messages = {**_COMMON_MESSAGES, 'invalid': '应为整数。', 'too_large': '数值过大。'}


class RecordId(fields.Integer):
    """A record id in a JSON body: a positive JSON integer, not text and not ``true``."""

    default_error_messages = {**_COMMON_MESSAGES, 'invalid': '应为正整数编号。', 'too_large': '编号过大。'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(min=1, error='应为正整数编号。'), **kwargs)

    def _validated(self, value: Any) -> int:
        # bool is an int subclass in Python; ``"assignee": true`` is a mistake, not user 1.
        if isinstance(value, bool):
            raise self.make_error('invalid')
        return super()._validated(value)


class JsonObject(fields.Dict):
    """A JSON object with string keys and any values."""

    default_error_messages = {**_COMMON_MESSAGES, 'invalid': '应为 JSON 对象。'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=Text(), values=fields.Raw(allow_none=True), **kwargs)


class MaskedIdNumber(fields.String):
    """An ID number shown as region code and last four only (lists, start responses)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return mask_id_number(value) if value else None


def _length(low: int, high: int) -> validate.Length:
    return validate.Length(min=low, max=high, error=f'长度应在 {low} 到 {high} 个字符之间。')


# -- input --------------------------------------------------------------------------------------------

class InputSchema(Schema):
    """Base of every request schema: unknown keys are errors, messages are Chinese."""

    error_messages = {'unknown': '不支持此字段。', 'type': '请求体应为 JSON 对象。'}

    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    """Base of query-string schemas: other parameters (``lang``...) belong to the app and are ignored."""

    error_messages = {'unknown': '不支持此参数。', 'type': '查询参数无效。'}

    class Meta:
        unknown = EXCLUDE


class TokenRequestSchema(InputSchema):
    """``POST /auth/token``."""

    username = Text(required=True, validate=_length(1, 64))
    password = Text(required=True, validate=_length(1, 256))


class DeployRequestSchema(InputSchema):
    """``POST /definitions`` as JSON; the same endpoint also takes a multipart ``file``."""

    source = Text(required=True, metadata={'description': 'BPMN 或 DMN 的 XML 源文件'})


class DeployUploadSchema(InputSchema):
    """``POST /definitions`` as multipart/form-data (documentation only: files are read directly)."""

    file = fields.Raw(required=True, metadata={'type': 'string', 'format': 'binary'})


class StartCaseRequestSchema(InputSchema):
    """``POST /cases``."""

    process_key = Text(required=True, validate=_length(1, 128))
    data = JsonObject(load_default=dict, metadata={'description': '开始表单的数据'})
    org_unit = Text(load_default=None, allow_none=True,
                    metadata={'description': '机构代码，默认为本人所在机构'})


class AssignRequestSchema(InputSchema):
    """``POST /tasks/<id>/assign``."""

    assignee = RecordId(required=True, metadata={'description': '被指派用户的编号'})


class CompleteRequestSchema(InputSchema):
    """``POST /tasks/<id>/complete``: ``data`` is checked against the task's form by the engine."""

    data = JsonObject(load_default=dict, metadata={'description': '任务表单的数据'})


class EmptyRequestSchema(InputSchema):
    """Claim and unclaim take no body; anything sent must be an empty object."""


class PageArgsSchema(QuerySchema):
    """``cursor`` and ``limit`` of every list."""

    cursor = Text(load_default=None, metadata={'description': '上一页返回的 next'})
    limit = Count(load_default=DEFAULT_LIMIT, validate=validate.Range(
        min=1, max=MAX_LIMIT, error=f'每页条数应在 1 到 {MAX_LIMIT} 之间。'))


class CaseArgsSchema(PageArgsSchema):
    """Filters of ``GET /cases``."""

    kind = Text(load_default=None, metadata={'description': '流程编码'})
    status = Text(load_default=None, validate=validate.OneOf(CASE_STATUSES, error='可选值：{choices}。'))
    q = Text(load_default=None, validate=_length(0, 64),
             metadata={'description': '案件编号或姓名的开头，或完整的身份证号'})


class TaskArgsSchema(PageArgsSchema):
    """``GET /tasks``."""

    view = Text(load_default='mine', validate=validate.OneOf(VIEWS, error='可选值：{choices}。'))


# -- output -------------------------------------------------------------------------------------------

class ErrorSchema(Schema):
    """Every error response."""

    error = fields.String(required=True)
    message = fields.String(required=True)
    # Named apart from its key: a field called ``fields`` would shadow Schema.fields.
    field_errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                               attribute='fields', data_key='fields')
    problems = fields.List(fields.Dict(), metadata={'description': '部署失败时：[{"element", "message"}]'})

    class Meta:
        fields = ('error', 'message', 'field_errors', 'problems')


class TokenSchema(Schema):
    """A bearer token."""

    token = fields.String(required=True)

    class Meta:
        fields = ('token',)


class UserRefSchema(Schema):
    """A user as other records name them."""

    id = fields.Integer()
    username = fields.String()
    name = fields.String(attribute='display_name')

    class Meta:
        fields = ('id', 'username', 'name')


class OrgUnitRefSchema(Schema):
    """An org unit as other records name it."""

    code = fields.String()
    name = fields.String()

    class Meta:
        fields = ('code', 'name')


class DefinitionSchema(Schema):
    """One deployed version of a BPMN process or DMN decision."""

    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    kind = fields.String(metadata={'enum': ['bpmn', 'dmn']})
    name = fields.String()
    checksum = fields.String()
    deployed_at = fields.DateTime(attribute='deployed_dt')
    deployed_by = fields.Nested(UserRefSchema, allow_none=True)

    class Meta:
        fields = ('id', 'key', 'version', 'kind', 'name', 'checksum', 'deployed_at', 'deployed_by')


class DeployedSchema(Schema):
    """The outcome of a deployment."""

    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    created = fields.Boolean(metadata={'description': 'false：源文件与最新版本相同，未创建新版本'})

    class Meta:
        fields = ('id', 'key', 'version', 'created')


class TaskSchema(Schema):
    """A human task as every list shows it."""

    id = fields.Integer()
    name = fields.String(attribute='bpmn_id', metadata={'description': 'BPMN 用户任务的 id'})
    title = fields.String()
    case_id = fields.Integer()
    case_number = fields.String(attribute='case.number')
    candidate_group = fields.String(allow_none=True)
    assignee = fields.Integer(attribute='assignee_id', allow_none=True)
    due_at = fields.DateTime(attribute='due_dt', allow_none=True)
    status = fields.String(metadata={'enum': ['open', 'completed', 'cancelled']})
    created_at = fields.DateTime(attribute='created_dt')

    class Meta:
        fields = ('id', 'name', 'title', 'case_id', 'case_number', 'candidate_group', 'assignee', 'due_at',
                  'status', 'created_at')


class CompletedTaskSchema(TaskSchema):
    """A completed task and what the instance waits for next."""

    next_tasks = fields.List(fields.Nested(TaskSchema))

    class Meta:
        fields = (*TaskSchema.Meta.fields, 'next_tasks')


class FormOptionSchema(Schema):
    """One choice of an enum field."""

    id = fields.String()
    name = fields.String()

    class Meta:
        fields = ('id', 'name')


class FormConstraintsSchema(Schema):
    """A field's limits; bounds are numbers, decimal strings or ISO dates, by field type."""

    min_length = fields.Integer(allow_none=True)
    max_length = fields.Integer(allow_none=True)
    minimum = fields.Raw(allow_none=True)
    maximum = fields.Raw(allow_none=True)
    readonly = fields.Boolean()

    class Meta:
        fields = ('min_length', 'max_length', 'minimum', 'maximum', 'readonly')


class FormFieldSchema(Schema):
    """One field of a task's form."""

    id = fields.String()
    label = fields.String()
    type = fields.String(metadata={'enum': ['string', 'long', 'boolean', 'date', 'enum', 'decimal']})
    required = fields.Boolean()
    default = fields.String(allow_none=True)
    options = fields.List(fields.Nested(FormOptionSchema))
    constraints = fields.Nested(FormConstraintsSchema)

    class Meta:
        fields = ('id', 'label', 'type', 'required', 'default', 'options', 'constraints')


class FormSchema(Schema):
    """A task's form."""

    key = fields.String(allow_none=True, metadata={'description': 'camunda:formKey（自定义表单）'})
    form_fields = fields.List(fields.Nested(FormFieldSchema), attribute='fields', data_key='fields')

    class Meta:
        fields = ('key', 'form_fields')


class TaskDetailSchema(TaskSchema):
    """A task with its form and the values the form would be pre-filled with."""

    form = fields.Nested(FormSchema)
    data = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True))

    class Meta:
        fields = (*TaskSchema.Meta.fields, 'form', 'data')


class CaseSchema(Schema):
    """A case as lists show it: the ID number masked."""

    id = fields.Integer()
    number = fields.String()
    public_code = fields.String()
    kind = fields.String()
    title = fields.String()
    status = fields.String(metadata={'enum': list(CASE_STATUSES)})
    org_unit = fields.Nested(OrgUnitRefSchema)
    risk_colour = fields.String(allow_none=True)
    person_name = fields.String(allow_none=True)
    id_number: fields.String = MaskedIdNumber(allow_none=True)
    hospital = fields.String(allow_none=True)
    claimed_amount = fields.Decimal(as_string=True, allow_none=True)
    start_event_on = fields.Date(allow_none=True)
    created_at = fields.DateTime(attribute='created_dt')
    closed_at = fields.DateTime(attribute='closed_dt', allow_none=True)

    class Meta:
        fields = ('id', 'number', 'public_code', 'kind', 'title', 'status', 'org_unit', 'risk_colour',
                  'person_name', 'id_number', 'hospital', 'claimed_amount', 'start_event_on', 'created_at',
                  'closed_at')


class StartedCaseSchema(CaseSchema):
    """A case just opened, with its first open tasks."""

    tasks = fields.List(fields.Nested(TaskSchema))

    class Meta:
        fields = (*CaseSchema.Meta.fields, 'tasks')


class InstanceSchema(Schema):
    """A process instance of a case."""

    id = fields.Integer()
    key = fields.String(attribute='definition.key')
    version = fields.Integer(attribute='definition.version')
    is_lifecycle = fields.Boolean()
    status = fields.String(metadata={'enum': ['running', 'waiting', 'completed', 'error', 'suspended']})
    revision = fields.Integer()
    error_message = fields.String(allow_none=True)
    created_at = fields.DateTime(attribute='created_dt')
    completed_at = fields.DateTime(attribute='completed_dt', allow_none=True)

    class Meta:
        fields = ('id', 'key', 'version', 'is_lifecycle', 'status', 'revision', 'error_message', 'created_at',
                  'completed_at')


class CaseDetailSchema(CaseSchema):
    """One case in full: the ID number unmasked, its instances and open tasks."""

    id_number = fields.String(allow_none=True)
    instances = fields.List(fields.Nested(InstanceSchema))
    tasks = fields.List(fields.Nested(TaskSchema))

    class Meta:
        fields = (*CaseSchema.Meta.fields, 'instances', 'tasks')


class EventSchema(Schema):
    """One audit event of a case."""

    id = fields.Integer()
    at = fields.DateTime(attribute='occurred_dt')
    actor = fields.String(attribute='actor_name', metadata={'description': '当时的姓名；系统操作为“系统”'})
    actor_id = fields.Integer(allow_none=True)
    kind = fields.String()
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    note = fields.String(allow_none=True)

    class Meta:
        fields = ('id', 'at', 'actor', 'actor_id', 'kind', 'before', 'after', 'note')


def _page_schema(item: type[Schema], name: str) -> type[Schema]:
    """A ``{"items": [...], "next": cursor}`` schema around ``item``."""
    attrs: dict[str, Any] = {
        'items': fields.List(fields.Nested(item), required=True),
        'next': fields.String(allow_none=True, required=True,
                              metadata={'description': '下一页的 cursor；没有则为 null'}),
        'Meta': type('Meta', (), {'fields': ('items', 'next')}),
        '__doc__': f'One page of {item.__name__} items.',
    }
    return type(name, (Schema,), attrs)


DefinitionPageSchema = _page_schema(DefinitionSchema, 'DefinitionPageSchema')
CasePageSchema = _page_schema(CaseSchema, 'CasePageSchema')
EventPageSchema = _page_schema(EventSchema, 'EventPageSchema')
TaskPageSchema = _page_schema(TaskSchema, 'TaskPageSchema')


def flat_messages(messages: Any, prefix: str = '') -> dict[str, list[str]]:
    """marshmallow's nested error structure as ``{"field" or "field.key": [message, ...]}``."""
    if not isinstance(messages, dict):
        items = messages if isinstance(messages, list) else [messages]
        return {prefix or '_schema': [str(m) for m in items]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        flat.update(flat_messages(value, f'{prefix}.{key}' if prefix else str(key)))
    return flat

