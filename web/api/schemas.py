"""API payloads: output schemas list exactly what goes out (``Meta.fields``); input schemas are separate.

Every message an input schema can produce is Simplified Chinese, because API clients show them to
staff as they are. Objects are dumped straight from the models (and a few plain dicts built in
``controllers``); nothing here touches the database.
"""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

from engine.models.cases import CASE_STATUSES
from engine.tasks import BULK_MAX, NOTE_MAX, RISK_COLOURS, SORTS, VIEWS
from workflows.shared.id_numbers import mask_id_number
from workflows.shared.sensitive import mask_data

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


class Flag(fields.Boolean):
    """A boolean whose errors read in Chinese (JSON gives true/false, a multipart form gives text)."""

    default_error_messages = {**_COMMON_MESSAGES, 'invalid': '应为 true 或 false。'}


class JsonObject(fields.Dict):
    """A JSON object with string keys and any values."""

    default_error_messages = {**_COMMON_MESSAGES, 'invalid': '应为 JSON 对象。'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(keys=Text(), values=fields.Raw(allow_none=True), **kwargs)


class MaskedIdNumber(fields.String):
    """An ID number shown as region code and last four only (lists, start responses)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return mask_id_number(value) if value else None


_DATE_MESSAGES = {**_COMMON_MESSAGES, 'invalid': '请按“年-月-日”填写日期（YYYY-MM-DD）。'}


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


_ACCEPT_WARNINGS = '确认校验报告中的警告并照常部署；为 false（默认）时有警告则返回 409 和校验报告'


class ValidateRequestSchema(InputSchema):
    """``POST /definitions/validate`` as JSON; the same endpoint also takes a multipart ``file``."""

    source = Text(required=True, metadata={'description': 'BPMN 或 DMN 的 XML 源文件'})


class ValidateUploadSchema(InputSchema):
    """``POST /definitions/validate`` as multipart/form-data (documentation only: files are read directly)."""

    file = fields.Raw(required=True, metadata={'type': 'string', 'format': 'binary'})


class DeployRequestSchema(ValidateRequestSchema):
    """``POST /definitions`` as JSON; the same endpoint also takes a multipart ``file``."""

    accept_warnings = Flag(load_default=False, metadata={'description': _ACCEPT_WARNINGS})


class DeployUploadSchema(ValidateUploadSchema):
    """``POST /definitions`` as multipart/form-data (documentation only: files are read directly)."""

    accept_warnings = Flag(load_default=False, metadata={'description': _ACCEPT_WARNINGS})


class AcceptWarningsSchema(InputSchema):
    """The ``accept_warnings`` field of a multipart deployment (the file is read directly)."""

    accept_warnings = Flag(load_default=False)

    class Meta:
        unknown = EXCLUDE


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
    """Filters of ``GET /cases``; every one narrows, and they combine."""

    kind = Text(load_default=None, metadata={'description': '流程编码'})
    status = Text(load_default=None, validate=validate.OneOf(CASE_STATUSES, error='可选值：{choices}。'))
    q = Text(load_default=None, validate=_length(0, 64),
             metadata={'description': '案件编号或姓名的开头，或完整的身份证号'})
    number = Text(load_default=None, validate=_length(0, 32), metadata={'description': '案件编号，完整或开头部分'})
    name = Text(load_default=None, validate=_length(0, 64), metadata={'description': '当事人姓名的开头'})
    id_number = Text(load_default=None, validate=_length(0, 18),
                     metadata={'description': '完整的公民身份号码（只做精确匹配）'})
    org_unit = Text(load_default=None, validate=_length(0, 32),
                    metadata={'description': '机构代码（须在本人范围内）：该机构及其下级机构的案件'})
    opened_from = fields.Date(load_default=None, error_messages=_DATE_MESSAGES,
                              metadata={'description': '立案日期不早于（含），YYYY-MM-DD，北京时间'})
    opened_to = fields.Date(load_default=None, error_messages=_DATE_MESSAGES,
                            metadata={'description': '立案日期不晚于（含），YYYY-MM-DD，北京时间'})

    @pre_load
    def _blank_dates(self, data: Any, **kwargs: Any) -> Any:
        """An empty date (``opened_from=``) filters nothing, like every other empty filter."""
        if not hasattr(data, 'items'):
            return data
        return {key: value for key, value in data.items()
                if not (key in ('opened_from', 'opened_to') and isinstance(value, str) and not value.strip())}

    @validates_schema
    def _check_range(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get('opened_from'), data.get('opened_to')
        if start and end and end < start:
            raise ValidationError('结束日期不能早于开始日期。', 'opened_to')


class TaskFilterArgsSchema(QuerySchema):
    """The to-do filters (``engine.tasks.TaskFilter``); dates are local calendar days, both ends included."""

    process = Text(load_default=None, metadata={'description': '流程编码'})
    stage = Text(load_default=None, metadata={'description': '环节：BPMN 用户任务的 id'})
    org_unit = Text(load_default=None, metadata={'description': '机构代码（须在本人辖区内），含下级机构'})
    risk_colour = Text(load_default=None, validate=validate.OneOf(RISK_COLOURS, error='可选值：{choices}。'))
    due_from = Text(load_default=None, metadata={'format': 'date', 'description': '期限不早于（含）'})
    due_to = Text(load_default=None, metadata={'format': 'date', 'description': '期限不晚于（含）'})
    created_from = Text(load_default=None, metadata={'format': 'date', 'description': '到达不早于（含）'})
    created_to = Text(load_default=None, metadata={'format': 'date', 'description': '到达不晚于（含）'})
    q = Text(load_default=None, validate=_length(0, 64),
             metadata={'description': '案件编号或姓名的开头，或完整的身份证号'})


class TaskArgsSchema(PageArgsSchema, TaskFilterArgsSchema):
    """``GET /tasks``: a view, the filters, a sort order (or a saved filter's), keyset paging."""

    view = Text(load_default='mine', validate=validate.OneOf(VIEWS, error='可选值：{choices}。'))
    sort = Text(load_default=None, validate=validate.OneOf(tuple(SORTS), error='可选值：{choices}。'),
                metadata={'description': 'due 按期限（默认）、priority 按紧急程度、created 按到达时间（新的在前）'})
    filter = Count(load_default=None, metadata={'description': '常用筛选的编号：采用其视图、条件和排序'})


class TaskCountArgsSchema(TaskFilterArgsSchema):
    """``GET /tasks/counts``."""


class DelegateRequestSchema(InputSchema):
    """``POST /tasks/<id>/delegate``."""

    delegate = RecordId(required=True, metadata={'description': '受托人（本辖区内的工作人员）的用户编号'})
    note = Text(load_default=None, allow_none=True, validate=_length(0, NOTE_MAX))


class ResolveRequestSchema(InputSchema):
    """``POST /tasks/<id>/resolve``."""

    note = Text(load_default=None, allow_none=True, validate=_length(0, NOTE_MAX))


class BulkClaimRequestSchema(InputSchema):
    """``POST /tasks/bulk/claim``."""

    tasks = fields.List(RecordId(), required=True, validate=validate.Length(
        min=1, max=BULK_MAX, error=f'请选择 1 到 {BULK_MAX} 项任务。'))


class BulkAssignRequestSchema(BulkClaimRequestSchema):
    """``POST /tasks/bulk/assign``."""

    assignee = RecordId(required=True, metadata={'description': '被指派用户的编号'})


class SavedFilterRequestSchema(InputSchema):
    """``POST /filters``."""

    name = Text(required=True, validate=_length(1, 60))
    view = Text(required=True, validate=validate.OneOf(VIEWS, error='可选值：{choices}。'))
    criteria = JsonObject(load_default=dict, metadata={
        'description': '筛选条件：process、stage、org_unit、risk_colour、due_from、due_to、created_from、'
                       'created_to、text'})
    sort = Text(load_default='due', validate=validate.OneOf(tuple(SORTS), error='可选值：{choices}。'))
    share_group = Text(load_default=None, allow_none=True,
                       metadata={'description': '共享给本人所在的组（在本人机构及下级机构中）；不填为个人筛选'})


# -- output -------------------------------------------------------------------------------------------

class FindingSchema(Schema):
    """One finding of a validation report."""

    rule = fields.String(metadata={'description': '规则名（bpmnlint 的规则沿用其名称）'})
    severity = fields.String(metadata={'enum': ['error', 'warning']})
    element_id = fields.String(allow_none=True, metadata={'description': '元素 id；针对整个文件时为 null'})
    element_name = fields.String(allow_none=True)
    message = fields.String()

    class Meta:
        fields = ('rule', 'severity', 'element_id', 'element_name', 'message')


class ReportSchema(Schema):
    """A validation report: errors block a deployment, warnings may be accepted."""

    key = fields.String(allow_none=True)
    kind = fields.String(allow_none=True, metadata={'enum': ['bpmn', 'dmn']})
    name = fields.String(allow_none=True)
    valid = fields.Boolean(metadata={'description': '没有错误（可能有待确认的警告）'})
    errors = fields.List(fields.Nested(FindingSchema))
    warnings = fields.List(fields.Nested(FindingSchema))

    class Meta:
        fields = ('key', 'kind', 'name', 'valid', 'errors', 'warnings')


class ErrorSchema(Schema):
    """Every error response."""

    error = fields.String(required=True)
    message = fields.String(required=True)
    # Named apart from its key: a field called ``fields`` would shadow Schema.fields.
    field_errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                               attribute='fields', data_key='fields')
    problems = fields.List(fields.Dict(), metadata={'description': '部署失败时：[{"element", "message"}]'})
    report = fields.Nested(ReportSchema, metadata={'description': '部署或校验被拒时：完整的校验报告'})

    class Meta:
        fields = ('error', 'message', 'field_errors', 'problems', 'report')


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
    accepted_warnings = fields.List(fields.Nested(FindingSchema),
                                    metadata={'description': '部署时确认接受的警告（未创建新版本时为空）'})

    class Meta:
        fields = ('id', 'key', 'version', 'created', 'accepted_warnings')


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

    process_key = fields.String(metadata={'description': '流程编码'})
    org_unit = fields.String(attribute='org_unit.code', metadata={'description': '办理机构代码'})
    priority = fields.Integer(metadata={'description': '紧急程度：camunda:priority 加案件颜色权重，越大越紧急'})
    risk_colour = fields.String(allow_none=True, metadata={'enum': list(RISK_COLOURS)})
    owner = fields.Integer(attribute='owner_id', allow_none=True, metadata={'description': '委托人'})
    delegation_state = fields.String(allow_none=True, metadata={'enum': ['pending', 'resolved']})
    is_escalated = fields.Boolean()
    completed_at = fields.DateTime(attribute='completed_dt', allow_none=True)

    class Meta:
        fields = ('id', 'name', 'title', 'case_id', 'case_number', 'candidate_group', 'assignee', 'due_at',
                  'status', 'created_at', 'process_key', 'org_unit', 'priority', 'risk_colour', 'owner',
                  'delegation_state', 'is_escalated', 'completed_at')


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
    """One case with its instances and open tasks; the ID number masked unless asked for with ``reveal``."""

    instances = fields.List(fields.Nested(InstanceSchema))
    tasks = fields.List(fields.Nested(TaskSchema))

    class Meta:
        fields = (*CaseSchema.Meta.fields, 'instances', 'tasks')


class RevealedCaseDetailSchema(CaseDetailSchema):
    """``CaseDetailSchema`` with the ID number in full (``?reveal=1``, audited)."""

    id_number = fields.String(allow_none=True)


class CaseRevealArgsSchema(QuerySchema):
    """``GET /cases/<id>``: whether to reveal the sensitive fields."""

    reveal = Flag(load_default=False, metadata={'description': (
        '1/true：返回完整的公民身份号码（仅限案件所在机构及其上级的办案人员；每次调用记入审计日志 '
        'case.sensitive_viewed）。默认脱敏，如 430922********123X。')})


class MaskedData(fields.Dict):
    """Recorded before/after values with every sensitive field (ID numbers, phones, addresses, medical text)
    masked, as every list shows them."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return mask_data(value) if value is not None else None


class EventSchema(Schema):
    """One audit event of a case."""

    id = fields.Integer()
    at = fields.DateTime(attribute='occurred_dt')
    actor = fields.String(attribute='actor_name', metadata={'description': '当时的姓名；系统操作为“系统”'})
    actor_id = fields.Integer(allow_none=True)
    kind = fields.String()
    before = MaskedData(allow_none=True, metadata={'description': '变更前的值（敏感信息已脱敏）'})
    after = MaskedData(allow_none=True, metadata={'description': '变更后的值（敏感信息已脱敏）'})
    note = fields.String(allow_none=True)

    class Meta:
        fields = ('id', 'at', 'actor', 'actor_id', 'kind', 'before', 'after', 'note')


class BulkResultSchema(Schema):
    """One task's outcome in a bulk action."""

    task_id = fields.Integer()
    ok = fields.Boolean()
    message = fields.String(metadata={'description': '未成功时的原因'})
    task = fields.Nested(TaskSchema, allow_none=True)

    class Meta:
        fields = ('task_id', 'ok', 'message', 'task')


class BulkResultsSchema(Schema):
    """Every task's outcome, in the order sent."""

    results = fields.List(fields.Nested(BulkResultSchema))

    class Meta:
        fields = ('results',)


class TaskCountsSchema(Schema):
    """How many tasks each view holds; a count of ``cap`` + 1 means "more than cap"."""

    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    cap = fields.Integer()

    class Meta:
        fields = ('counts', 'cap')


class SavedFilterSchema(Schema):
    """A saved to-do filter with its live (capped) count."""

    id = fields.Integer()
    name = fields.String()
    view = fields.String()
    criteria = fields.Dict(metadata={'description': '筛选条件与 sort'})
    owner = fields.Integer(attribute='owner_id')
    shared_group = fields.String(allow_none=True)
    count = fields.Integer()

    class Meta:
        fields = ('id', 'name', 'view', 'criteria', 'owner', 'shared_group', 'count')


class SavedFilterListSchema(Schema):
    """The caller's saved filters and those shared with them."""

    items = fields.List(fields.Nested(SavedFilterSchema))

    class Meta:
        fields = ('items',)


class EmptySchema(Schema):
    """An empty object: the action was done and there is nothing to return."""

    class Meta:
        fields = ()


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



# -- comments and attachments ---------------------------------------------------------------------------

class CommentRequestSchema(InputSchema):
    """``POST /cases/<id>/comments``: the text is trimmed and checked by the engine (1 to 2000 characters)."""

    body = Text(required=True, metadata={'description': '意见内容，最多 2000 字'})
    task_id = RecordId(load_default=None, allow_none=True, metadata={'description': '所涉及的任务（须属于本案件）'})


class AttachmentFormSchema(InputSchema):
    """The form fields of ``POST /cases/<id>/attachments`` besides the file (read from ``request.form``)."""

    task_id = Count(load_default=None, validate=validate.Range(min=1, max=2**31 - 1, error='应为正整数编号。'),
                    metadata={'description': '所涉及的任务（须属于本案件）'})


class AttachmentUploadSchema(AttachmentFormSchema):
    """``POST /cases/<id>/attachments`` as multipart/form-data (documentation: the file is read directly)."""

    file = fields.Raw(required=True, metadata={
        'type': 'string', 'format': 'binary',
        'description': 'PDF、JPEG、PNG、Word（.docx）或 Excel（.xlsx），按文件内容识别；默认不超过 10 MB'})


class CommentSchema(Schema):
    """A comment on a case."""

    id = fields.Integer()
    case_id = fields.Integer()
    task_id = fields.Integer(allow_none=True, metadata={'description': '所涉及的任务'})
    author = fields.Nested(UserRefSchema)
    body = fields.String()
    created_at = fields.DateTime(attribute='created_dt')

    class Meta:
        fields = ('id', 'case_id', 'task_id', 'author', 'body', 'created_at')


class AttachmentSchema(Schema):
    """An attachment's description; its bytes come from ``GET .../attachments/<id>/content``."""

    id = fields.Integer()
    case_id = fields.Integer()
    task_id = fields.Integer(allow_none=True, metadata={'description': '所涉及的任务'})
    filename = fields.String()
    content_type = fields.String(metadata={'description': '按文件内容识别的类型'})
    size = fields.Integer(metadata={'description': '字节数'})
    sha256 = fields.String(metadata={'description': '内容的 SHA-256（十六进制），下载时校验'})
    uploaded_by = fields.Nested(UserRefSchema)
    created_at = fields.DateTime(attribute='created_dt')

    class Meta:
        fields = ('id', 'case_id', 'task_id', 'filename', 'content_type', 'size', 'sha256', 'uploaded_by',
                  'created_at')


CommentPageSchema = _page_schema(CommentSchema, 'CommentPageSchema')
AttachmentPageSchema = _page_schema(AttachmentSchema, 'AttachmentPageSchema')
