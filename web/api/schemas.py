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
#: the largest record id: every primary key is an INTEGER (int4 on PostgreSQL)
MAX_RECORD_ID = 2**31 - 1

_COMMON_MESSAGES = {
    'required': '此项为必填项。',
    'null': '此项不能为空值。',
    'validator_failed': '取值无效。',
}

# Example values for the OpenAPI document (field metadata ``example``; web.api.openapi composes whole bodies).
EXAMPLE_SHA256 = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
EXAMPLE_BPMN = ('<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions '
                'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" ...>...</bpmn:definitions>')
EXAMPLE_START_DATA = {'applied_on': '2025-09-26', 'source': '当事人申请', 'applicant_name': '谢某某',
                      'person_name': '谢某某', 'hospital': '桃江县人民医院',
                      'dispute_summary': '术后感染，患方认为诊疗有过错', 'claimed_amount': '120000.00',
                      'patient_died': False, 'people_involved': 3}
EXAMPLE_TASK_DATA = {'consent_status': 'joint', 'court_accepted': False, 'health_bureau_accepted': False,
                     'accepted_on': '2025-09-28'}


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
    """A record id in a JSON body: a positive JSON integer, not text and not ``true``.

    Ids are INTEGER columns (int4 on PostgreSQL), like the ids in URLs (``RecordIdConverter``): a larger
    number names no record and must not reach the database, which would refuse it with an error.
    """

    default_error_messages = {**_COMMON_MESSAGES, 'invalid': '应为正整数编号。', 'too_large': '编号过大。'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, validate=validate.Range(min=1, max=MAX_RECORD_ID, error='应为正整数编号。'),
                         **kwargs)

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

    username = Text(required=True, validate=_length(1, 64), metadata={'example': 'alarm-gateway'})
    password = Text(required=True, validate=_length(1, 256), metadata={'example': 'S3cure-Passw0rd!'})


_ACCEPT_WARNINGS = '确认校验报告中的警告并照常部署；为 false（默认）时有警告则返回 409 和校验报告'


class ValidateRequestSchema(InputSchema):
    """``POST /definitions/validate`` as JSON; the same endpoint also takes a multipart ``file``."""

    source = Text(required=True, metadata={'description': 'BPMN 或 DMN 的 XML 源文件', 'example': EXAMPLE_BPMN})


class ValidateUploadSchema(InputSchema):
    """``POST /definitions/validate`` as multipart/form-data (documentation only: files are read directly)."""

    file = fields.Raw(required=True, metadata={'type': 'string', 'format': 'binary',
                                               'example': 'dispute_mediation.bpmn 的内容'})


class DeployRequestSchema(ValidateRequestSchema):
    """``POST /definitions`` as JSON; the same endpoint also takes a multipart ``file``."""

    accept_warnings = Flag(load_default=False, metadata={'description': _ACCEPT_WARNINGS, 'example': False})


class DeployUploadSchema(ValidateUploadSchema):
    """``POST /definitions`` as multipart/form-data (documentation only: files are read directly)."""

    accept_warnings = Flag(load_default=False, metadata={'description': _ACCEPT_WARNINGS, 'example': False})


class AcceptWarningsSchema(InputSchema):
    """The ``accept_warnings`` field of a multipart deployment (the file is read directly)."""

    accept_warnings = Flag(load_default=False)

    class Meta:
        unknown = EXCLUDE


class StartCaseRequestSchema(InputSchema):
    """``POST /cases``."""

    process_key = Text(required=True, validate=_length(1, 128),
                       metadata={'description': '流程编码（见流程目录）', 'example': 'dispute_mediation'})
    data = JsonObject(load_default=dict, metadata={'description': '开始表单的数据', 'example': EXAMPLE_START_DATA})
    org_unit = Text(load_default=None, allow_none=True,
                    metadata={'description': '机构代码，默认为本人所在机构', 'example': '430922'})


class AssignRequestSchema(InputSchema):
    """``POST /tasks/<id>/assign``."""

    assignee = RecordId(required=True, metadata={'description': '被指派用户的编号', 'example': 12})


class CompleteRequestSchema(InputSchema):
    """``POST /tasks/<id>/complete``: ``data`` is checked against the task's form by the engine."""

    data = JsonObject(load_default=dict, metadata={'description': '任务表单的数据', 'example': EXAMPLE_TASK_DATA})


class EmptyRequestSchema(InputSchema):
    """Claim and unclaim take no body; anything sent must be an empty object."""


class PageArgsSchema(QuerySchema):
    """``cursor`` and ``limit`` of every list."""

    cursor = Text(load_default=None, metadata={'description': '上一页返回的 next', 'example': '1042'})
    limit = Count(load_default=DEFAULT_LIMIT, validate=validate.Range(
        min=1, max=MAX_LIMIT, error=f'每页条数应在 1 到 {MAX_LIMIT} 之间。'), metadata={'example': 20})


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
    filter = Count(load_default=None, validate=validate.Range(min=1, max=MAX_RECORD_ID, error='应为正整数编号。'),
                   metadata={'description': '常用筛选的编号：采用其视图、条件和排序'})


class TaskCountArgsSchema(TaskFilterArgsSchema):
    """``GET /tasks/counts``."""


class DelegateRequestSchema(InputSchema):
    """``POST /tasks/<id>/delegate``."""

    delegate = RecordId(required=True,
                        metadata={'description': '受托人（本辖区内的工作人员）的用户编号', 'example': 15})
    note = Text(load_default=None, allow_none=True, validate=_length(0, NOTE_MAX),
                metadata={'example': '请协助核实居住地'})


class ResolveRequestSchema(InputSchema):
    """``POST /tasks/<id>/resolve``."""

    note = Text(load_default=None, allow_none=True, validate=_length(0, NOTE_MAX),
                metadata={'example': '已走访核实，居住地属实'})


class BulkClaimRequestSchema(InputSchema):
    """``POST /tasks/bulk/claim``."""

    tasks = fields.List(RecordId(), required=True, validate=validate.Length(
        min=1, max=BULK_MAX, error=f'请选择 1 到 {BULK_MAX} 项任务。'), metadata={'example': [301, 302]})


class BulkAssignRequestSchema(BulkClaimRequestSchema):
    """``POST /tasks/bulk/assign``."""

    assignee = RecordId(required=True, metadata={'description': '被指派用户的编号', 'example': 12})


class SavedFilterRequestSchema(InputSchema):
    """``POST /filters``."""

    name = Text(required=True, validate=_length(1, 60), metadata={'example': '本周到期的红色预警'})
    view = Text(required=True, validate=validate.OneOf(VIEWS, error='可选值：{choices}。'),
                metadata={'example': 'due_soon'})
    criteria = JsonObject(load_default=dict, metadata={
        'description': '筛选条件：process、stage、org_unit、risk_colour、due_from、due_to、created_from、'
                       'created_to、text', 'example': {'process': 'dispute_mediation', 'risk_colour': 'red'}})
    sort = Text(load_default='due', validate=validate.OneOf(tuple(SORTS), error='可选值：{choices}。'),
                metadata={'example': 'due'})
    share_group = Text(load_default=None, allow_none=True,
                       metadata={'description': '共享给本人所在的组（在本人机构及下级机构中）；不填为个人筛选',
                                 'example': 'mediator'})


# -- output -------------------------------------------------------------------------------------------

class FindingSchema(Schema):
    """One finding of a validation report."""

    rule = fields.String(metadata={'description': '规则名（bpmnlint 的规则沿用其名称）', 'example': 'label-required'})
    severity = fields.String(metadata={'enum': ['error', 'warning'], 'example': 'warning'})
    element_id = fields.String(allow_none=True, metadata={'description': '元素 id；针对整个文件时为 null',
                                                          'example': 'Gateway_1'})
    element_name = fields.String(allow_none=True, metadata={'example': None})
    message = fields.String(metadata={'example': '元素缺少名称'})

    class Meta:
        fields = ('rule', 'severity', 'element_id', 'element_name', 'message')


class ReportSchema(Schema):
    """A validation report: errors block a deployment, warnings may be accepted."""

    key = fields.String(allow_none=True, metadata={'example': 'dispute_mediation'})
    # null is listed: in OpenAPI 3.0.3 ``nullable`` does not extend an ``enum``.
    kind = fields.String(allow_none=True, metadata={'enum': ['bpmn', 'dmn', None], 'example': 'bpmn'})
    name = fields.String(allow_none=True, metadata={'example': '医疗纠纷人民调解'})
    valid = fields.Boolean(metadata={'description': '没有错误（可能有待确认的警告）', 'example': True})
    errors = fields.List(fields.Nested(FindingSchema))
    warnings = fields.List(fields.Nested(FindingSchema))

    class Meta:
        fields = ('key', 'kind', 'name', 'valid', 'errors', 'warnings')


class ErrorSchema(Schema):
    """Every error response."""

    error = fields.String(required=True, metadata={'example': 'invalid'})
    message = fields.String(required=True, metadata={'example': '请求数据有误，请检查标出的字段。'})
    # Named apart from its key: a field called ``fields`` would shadow Schema.fields.
    field_errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                               attribute='fields', data_key='fields',
                               metadata={'example': {'process_key': ['此项为必填项。']}})
    problems = fields.List(fields.Dict(), metadata={'description': '部署失败时：[{"element", "message"}]'})
    report = fields.Nested(ReportSchema, metadata={'description': '部署或校验被拒时：完整的校验报告'})

    class Meta:
        fields = ('error', 'message', 'field_errors', 'problems', 'report')


class TokenSchema(Schema):
    """A bearer token."""

    token = fields.String(required=True, metadata={'example': 'q7Yf0cV1mN2bX8tR4kLp9sW3eH6jD5aG0zU1iO2yT3c'})

    class Meta:
        fields = ('token',)


class UserRefSchema(Schema):
    """A user as other records name them."""

    id = fields.Integer(metadata={'example': 12})
    username = fields.String(metadata={'example': 'lixiao'})
    name = fields.String(attribute='display_name', metadata={'example': '李晓'})

    class Meta:
        fields = ('id', 'username', 'name')


class OrgUnitRefSchema(Schema):
    """An org unit as other records name it."""

    code = fields.String(metadata={'example': '430922101'})
    name = fields.String(metadata={'example': '桃花江镇司法所'})

    class Meta:
        fields = ('code', 'name')


class DefinitionSchema(Schema):
    """One deployed version of a BPMN process or DMN decision."""

    id = fields.Integer(metadata={'example': 7})
    key = fields.String(metadata={'example': 'dispute_mediation'})
    version = fields.Integer(metadata={'example': 3})
    kind = fields.String(metadata={'enum': ['bpmn', 'dmn'], 'example': 'bpmn'})
    name = fields.String(metadata={'example': '医疗纠纷人民调解'})
    checksum = fields.String(metadata={'example': EXAMPLE_SHA256})
    deployed_at = fields.DateTime(attribute='deployed_dt', metadata={'example': '2025-09-20T02:30:00+00:00'})
    deployed_by = fields.Nested(UserRefSchema, allow_none=True)

    class Meta:
        fields = ('id', 'key', 'version', 'kind', 'name', 'checksum', 'deployed_at', 'deployed_by')


class DeployedSchema(Schema):
    """The outcome of a deployment."""

    id = fields.Integer(metadata={'example': 8})
    key = fields.String(metadata={'example': 'dispute_mediation'})
    version = fields.Integer(metadata={'example': 4})
    created = fields.Boolean(metadata={'description': 'false：源文件与最新版本相同，未创建新版本', 'example': True})
    accepted_warnings = fields.List(fields.Nested(FindingSchema),
                                    metadata={'description': '部署时确认接受的警告（未创建新版本时为空）'})

    class Meta:
        fields = ('id', 'key', 'version', 'created', 'accepted_warnings')


class TaskSchema(Schema):
    """A human task as every list shows it."""

    id = fields.Integer(metadata={'example': 301})
    name = fields.String(attribute='bpmn_id',
                         metadata={'description': 'BPMN 用户任务的 id', 'example': 'accept_review'})
    title = fields.String(metadata={'example': '受理审查'})
    case_id = fields.Integer(metadata={'example': 1042})
    case_number = fields.String(attribute='case.number', metadata={'example': 'YT-2025-001042'})
    candidate_group = fields.String(allow_none=True, metadata={'example': 'mediator'})
    assignee = fields.Integer(attribute='assignee_id', allow_none=True, metadata={'example': None})
    due_at = fields.DateTime(attribute='due_dt', allow_none=True, metadata={'example': '2025-10-09T15:59:59+00:00'})
    status = fields.String(metadata={'enum': ['open', 'completed', 'cancelled'], 'example': 'open'})
    created_at = fields.DateTime(attribute='created_dt', metadata={'example': '2025-09-26T01:00:00+00:00'})

    process_key = fields.String(metadata={'description': '流程编码', 'example': 'dispute_mediation'})
    org_unit = fields.String(attribute='org_unit.code',
                             metadata={'description': '办理机构代码', 'example': '430922101'})
    priority = fields.Integer(metadata={'description': '紧急程度：camunda:priority 加案件颜色权重，越大越紧急',
                                        'example': 50})
    # null is listed: in OpenAPI 3.0.3 ``nullable`` does not extend an ``enum``.
    risk_colour = fields.String(allow_none=True, metadata={'enum': [*RISK_COLOURS, None], 'example': 'yellow'})
    owner = fields.Integer(attribute='owner_id', allow_none=True, metadata={'description': '委托人', 'example': None})
    delegation_state = fields.String(allow_none=True,
                                     metadata={'enum': ['pending', 'resolved', None], 'example': None})
    is_escalated = fields.Boolean(metadata={'example': False})
    completed_at = fields.DateTime(attribute='completed_dt', allow_none=True, metadata={'example': None})

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

    id = fields.String(metadata={'example': 'joint'})
    name = fields.String(metadata={'example': '医患双方共同申请'})

    class Meta:
        fields = ('id', 'name')


class FormConstraintsSchema(Schema):
    """A field's limits; bounds are numbers, decimal strings or ISO dates, by field type."""

    min_length = fields.Integer(allow_none=True, metadata={'example': None})
    max_length = fields.Integer(allow_none=True, metadata={'example': None})
    minimum = fields.Raw(allow_none=True, metadata={'example': None})
    maximum = fields.Raw(allow_none=True, metadata={'example': None})
    readonly = fields.Boolean(metadata={'example': False})

    class Meta:
        fields = ('min_length', 'max_length', 'minimum', 'maximum', 'readonly')


class FormFieldSchema(Schema):
    """One field of a task's form."""

    id = fields.String(metadata={'example': 'consent_status'})
    label = fields.String(metadata={'example': '调解意愿'})
    type = fields.String(metadata={'enum': ['string', 'long', 'boolean', 'date', 'enum', 'decimal'], 'example': 'enum'})
    required = fields.Boolean(metadata={'example': True})
    default = fields.String(allow_none=True, metadata={'example': None})
    options = fields.List(fields.Nested(FormOptionSchema))
    constraints = fields.Nested(FormConstraintsSchema)

    class Meta:
        fields = ('id', 'label', 'type', 'required', 'default', 'options', 'constraints')


class FormSchema(Schema):
    """A task's form."""

    key = fields.String(allow_none=True, metadata={'description': 'camunda:formKey（自定义表单）', 'example': None})
    form_fields = fields.List(fields.Nested(FormFieldSchema), attribute='fields', data_key='fields')

    class Meta:
        fields = ('key', 'form_fields')


class TaskDetailSchema(TaskSchema):
    """A task with its form and the values the form would be pre-filled with."""

    form = fields.Nested(FormSchema)
    data = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                       metadata={'example': {'consent_status': None}})

    class Meta:
        fields = (*TaskSchema.Meta.fields, 'form', 'data')


class CaseSchema(Schema):
    """A case as lists show it: the ID number masked."""

    id = fields.Integer(metadata={'example': 1042})
    number = fields.String(metadata={'example': 'YT-2025-001042'})
    public_code = fields.String(metadata={'description': '一案一码（公开页面 /c/<code>）',
                                          'example': 'Xk3v9QpL2mZ7aB4c'})
    kind = fields.String(metadata={'description': '流程编码', 'example': 'dispute_mediation'})
    title = fields.String(metadata={'example': '谢某某与桃江县人民医院医疗纠纷'})
    status = fields.String(metadata={'enum': list(CASE_STATUSES), 'example': 'open'})
    org_unit = fields.Nested(OrgUnitRefSchema)
    risk_colour = fields.String(allow_none=True, metadata={'example': 'yellow'})
    person_name = fields.String(allow_none=True, metadata={'example': '谢某某'})
    id_number: fields.String = MaskedIdNumber(allow_none=True, metadata={'example': '430922********001X'})
    hospital = fields.String(allow_none=True, metadata={'example': '桃江县人民医院'})
    # Dumped as text (no float ever touches money), so documented as a string, not apispec's number.
    claimed_amount = fields.Decimal(as_string=True, allow_none=True,
                                    metadata={'type': 'string', 'format': 'decimal', 'example': '120000.00'})
    start_event_on = fields.Date(allow_none=True, metadata={'description': '法定期限的起算日', 'example': '2025-09-26'})
    created_at = fields.DateTime(attribute='created_dt', metadata={'example': '2025-09-26T01:00:00+00:00'})
    closed_at = fields.DateTime(attribute='closed_dt', allow_none=True, metadata={'example': None})

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

    id = fields.Integer(metadata={'example': 2077})
    key = fields.String(attribute='definition.key', metadata={'example': 'dispute_mediation'})
    version = fields.Integer(attribute='definition.version', metadata={'example': 3})
    is_lifecycle = fields.Boolean(metadata={'example': True})
    status = fields.String(metadata={'enum': ['running', 'waiting', 'completed', 'error', 'suspended'],
                                     'example': 'waiting'})
    revision = fields.Integer(metadata={'example': 4})
    error_message = fields.String(allow_none=True, metadata={'example': None})
    created_at = fields.DateTime(attribute='created_dt', metadata={'example': '2025-09-26T01:00:00+00:00'})
    completed_at = fields.DateTime(attribute='completed_dt', allow_none=True, metadata={'example': None})

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

    id_number = fields.String(allow_none=True, metadata={'example': '43092219800101001X'})


class CaseRevealArgsSchema(QuerySchema):
    """``GET /cases/<id>``: whether to reveal the sensitive fields."""

    reveal = Flag(load_default=False, metadata={'description': (
        '1/true：返回完整的公民身份号码（仅限案件所在机构及其上级的办案人员；每次调用记入审计日志 '
        'case.sensitive_viewed）。默认脱敏，如 430922********123X。'), 'example': True})


class MaskedData(fields.Dict):
    """Recorded before/after values with every sensitive field (ID numbers, phones, addresses, medical text)
    masked, as every list shows them."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return mask_data(value) if value is not None else None


class EventSchema(Schema):
    """One audit event of a case."""

    id = fields.Integer(metadata={'example': 58213})
    at = fields.DateTime(attribute='occurred_dt', metadata={'example': '2025-09-26T01:00:00+00:00'})
    actor = fields.String(attribute='actor_name', metadata={'description': '当时的姓名；系统操作为“系统”',
                                                            'example': '李晓'})
    actor_id = fields.Integer(allow_none=True, metadata={'example': 12})
    kind = fields.String(metadata={'example': 'task.completed'})
    before = MaskedData(allow_none=True, metadata={'description': '变更前的值（敏感信息已脱敏）', 'example': None})
    after = MaskedData(allow_none=True, metadata={'description': '变更后的值（敏感信息已脱敏）',
                                                  'example': {'consent_status': 'joint'}})
    note = fields.String(allow_none=True, metadata={'example': None})

    class Meta:
        fields = ('id', 'at', 'actor', 'actor_id', 'kind', 'before', 'after', 'note')


class BulkResultSchema(Schema):
    """One task's outcome in a bulk action."""

    task_id = fields.Integer(metadata={'example': 301})
    ok = fields.Boolean(metadata={'example': True})
    message = fields.String(metadata={'description': '未成功时的原因', 'example': ''})
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

    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={'example': {
        'mine': 12, 'group': 3, 'due_soon': 4, 'overdue': 1, 'escalated': 0, 'all': 57, 'completed': 1001}})
    cap = fields.Integer(metadata={'example': 1000})

    class Meta:
        fields = ('counts', 'cap')


class SavedFilterSchema(Schema):
    """A saved to-do filter with its live (capped) count."""

    id = fields.Integer(metadata={'example': 5})
    name = fields.String(metadata={'example': '本周到期的红色预警'})
    view = fields.String(metadata={'example': 'due_soon'})
    criteria = fields.Dict(metadata={'description': '筛选条件与 sort', 'example': {
        'process': 'dispute_mediation', 'risk_colour': 'red', 'sort': 'due'}})
    owner = fields.Integer(attribute='owner_id', metadata={'example': 12})
    shared_group = fields.String(allow_none=True, metadata={'example': 'mediator'})
    count = fields.Integer(metadata={'example': 2})

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
                              metadata={'description': '下一页的 cursor；没有则为 null', 'example': None}),
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

    body = Text(required=True, metadata={'description': '意见内容，最多 2000 字',
                                         'example': '申请人补充了病历复印件，请调解员核对。'})
    task_id = RecordId(load_default=None, allow_none=True,
                       metadata={'description': '所涉及的任务（须属于本案件）', 'example': None})


class AttachmentFormSchema(InputSchema):
    """The form fields of ``POST /cases/<id>/attachments`` besides the file (read from ``request.form``)."""

    task_id = Count(load_default=None, validate=validate.Range(min=1, max=MAX_RECORD_ID, error='应为正整数编号。'),
                    metadata={'description': '所涉及的任务（须属于本案件）'})


class AttachmentUploadSchema(AttachmentFormSchema):
    """``POST /cases/<id>/attachments`` as multipart/form-data (documentation: the file is read directly)."""

    file = fields.Raw(required=True, metadata={
        'type': 'string', 'format': 'binary',
        'description': 'PDF、JPEG、PNG、Word（.docx）或 Excel（.xlsx），按文件内容识别；默认不超过 10 MB',
        'example': '病历复印件.pdf 的内容'})


class CommentSchema(Schema):
    """A comment on a case."""

    id = fields.Integer(metadata={'example': 88})
    case_id = fields.Integer(metadata={'example': 1042})
    task_id = fields.Integer(allow_none=True, metadata={'description': '所涉及的任务', 'example': 301})
    author = fields.Nested(UserRefSchema)
    body = fields.String(metadata={'example': '申请人补充了病历复印件，请调解员核对。'})
    created_at = fields.DateTime(attribute='created_dt', metadata={'example': '2025-09-27T02:15:00+00:00'})

    class Meta:
        fields = ('id', 'case_id', 'task_id', 'author', 'body', 'created_at')


class AttachmentSchema(Schema):
    """An attachment's description; its bytes come from ``GET .../attachments/<id>/content``."""

    id = fields.Integer(metadata={'example': 31})
    case_id = fields.Integer(metadata={'example': 1042})
    task_id = fields.Integer(allow_none=True, metadata={'description': '所涉及的任务', 'example': None})
    filename = fields.String(metadata={'example': '病历复印件.pdf'})
    content_type = fields.String(metadata={'description': '按文件内容识别的类型', 'example': 'application/pdf'})
    size = fields.Integer(metadata={'description': '字节数', 'example': 482113})
    sha256 = fields.String(metadata={'description': '内容的 SHA-256（十六进制），下载时校验',
                                     'example': EXAMPLE_SHA256})
    uploaded_by = fields.Nested(UserRefSchema)
    created_at = fields.DateTime(attribute='created_dt', metadata={'example': '2025-09-27T02:16:00+00:00'})

    class Meta:
        fields = ('id', 'case_id', 'task_id', 'filename', 'content_type', 'size', 'sha256', 'uploaded_by',
                  'created_at')


CommentPageSchema = _page_schema(CommentSchema, 'CommentPageSchema')
AttachmentPageSchema = _page_schema(AttachmentSchema, 'AttachmentPageSchema')


# -- incoming events (POST /events, machine clients) ------------------------------------------------------------

def _json_schema(schema: type[Schema]) -> dict[str, Any]:
    """``schema`` as an inline OpenAPI schema object (for a ``oneOf`` that names no component)."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin
    from apispec.ext.marshmallow.openapi import OpenAPIConverter

    spec = APISpec(title='events', version='1', openapi_version='3.0.3', plugins=[MarshmallowPlugin()])
    converted: dict[str, Any] = OpenAPIConverter('3.0.3', lambda s: None, spec).schema2jsonschema(schema)
    return converted


ALARM_EXAMPLE = {'id_number': '431381198503120015', 'person_name': '李某', 'alarm_type': '越界',
                 'occurred_at': '2025-10-10T10:15:00+08:00', 'location': '冷水江市与新化县交界（27.69N, 111.43E）'}
REFERRAL_EXAMPLE = {'source': '警源', 'reference': '冷公（锡）警移〔2025〕12号', 'applied_on': '2025-10-09',
                    'applicant_name': '王某', 'applicant_relation': '子女', 'person_name': '王某某',
                    'id_number': '430922195806120031', 'hospital': '桃江县人民医院',
                    'dispute_summary': '患者术后死亡，家属质疑诊疗过程，在医院聚集，派出所移交调解。',
                    'claimed_amount': '300000.00', 'patient_died': True, 'people_involved': 6}


class AlarmPayloadSchema(Schema):
    """``payload`` of an ``alarm`` event (越界 / 关机 / 人机分离 / 异常签到 from the positioning platform)."""

    id_number = fields.String(required=True, metadata={'description': '社区矫正对象的公民身份号码（18 位）',
                                                        'example': ALARM_EXAMPLE['id_number']})
    person_name = fields.String(metadata={'description': '姓名（仅供核对，关联以身份证号为准）', 'maxLength': 30})
    alarm_type = fields.String(required=True, metadata={'enum': ['越界', '关机', '人机分离', '异常签到']})
    occurred_at = fields.String(required=True, metadata={
        'description': '报警时间，ISO 8601（不带时区按北京时间）；核查期限从此时起算', 'minLength': 16, 'maxLength': 25,
        'example': ALARM_EXAMPLE['occurred_at']})
    location = fields.String(metadata={'description': '报警位置（地址或坐标）', 'maxLength': 200})

    class Meta:
        fields = ('id_number', 'person_name', 'alarm_type', 'occurred_at', 'location')


class ReferralPayloadSchema(Schema):
    """``payload`` of a ``referral`` event (五源移交): the dispute_mediation start form's fields plus ``reference``."""

    source = fields.String(required=True, metadata={'enum': ['警源', '政源', '诉源', '访源', '网源']})
    reference = fields.String(metadata={'description': '移交方的文号或编号', 'maxLength': 64})
    applied_on = fields.Date(required=True, metadata={'description': '移交（申请）日期'})
    applicant_name = fields.String(required=True, metadata={'maxLength': 100})
    person_name = fields.String(required=True, metadata={'description': '患者姓名', 'maxLength': 30})
    id_number = fields.String(metadata={'description': '患者公民身份号码；有则按号码、无则按姓名查找同一纠纷'})
    hospital = fields.String(required=True, metadata={'description': '医疗机构（与患者一起决定是否并案）'})
    dispute_summary = fields.String(required=True, metadata={'maxLength': 4000})
    claimed_amount = fields.String(required=True, metadata={'description': '索赔金额（元），字符串，两位小数'})
    people_involved = fields.Integer(required=True, metadata={'minimum': 1})
    patient_died = fields.Boolean()

    class Meta:
        fields = ('source', 'reference', 'applied_on', 'applicant_name', 'person_name', 'id_number', 'hospital',
                  'dispute_summary', 'claimed_amount', 'people_involved', 'patient_died')


class EventRequestSchema(InputSchema):
    """``POST /events``: the payload is checked by the engine for its ``kind``."""

    kind = Text(required=True,
                validate=validate.OneOf(['alarm', 'referral'], error='事件类型只能是 alarm 或 referral。'),
                metadata={'description': 'alarm 监管报警；referral 五源纠纷移交', 'example': 'alarm'})
    key = Text(validate=_length(1, 128), metadata={
        'description': '事件的唯一键（如报警编号）；也可放在 Idempotency-Key 头中。同一接入方的同一键只产生一次效果',
        'example': 'LSJ-GPS-20251010-000123'})
    payload = JsonObject(required=True, metadata={
        'description': '事件内容：alarm 见 AlarmPayload，referral 见 ReferralPayload（其余字段同 dispute_mediation '
                       '开始表单）',
        'oneOf': [_json_schema(AlarmPayloadSchema),
                  # the start form's other fields (科室, 申请方式...) may come too
                  {**_json_schema(ReferralPayloadSchema), 'additionalProperties': True}],
        'example': ALARM_EXAMPLE})


class EventCaseSchema(Schema):
    """The case an event reached."""

    id = fields.Integer(metadata={'example': 12})
    number = fields.String(metadata={'example': 'SJ-2025-000012'})
    kind = fields.String(metadata={'example': 'corrections_reception'})

    class Meta:
        fields = ('id', 'number', 'kind')


class InboundEventSchema(Schema):
    """An event as recorded, with what it did."""

    id = fields.Integer(metadata={'example': 41})
    kind = fields.String(metadata={'enum': ['alarm', 'referral'], 'example': 'alarm'})
    key = fields.String(metadata={'example': 'LSJ-GPS-20251010-000123'})
    status = fields.String(metadata={
        'enum': ['delivered', 'unmatched', 'rejected'], 'example': 'delivered',
        'description': 'delivered 已送达；unmatched 无对应的办理中案件（已记录并提示主管）；'
                       'rejected 流程未能接收（已记录并提示主管）'})
    effect = fields.String(allow_none=True, metadata={
        'enum': ['request_started', 'case_started', 'case_attached', None], 'example': 'request_started',
        'description': 'request_started 已发起报警核查；case_started 已立案；case_attached 已并入办理中的案件'})
    case = fields.Nested(EventCaseSchema, allow_none=True, metadata={'description': '送达、并入或新立的案件；'
                                                                                   '报警对应的案件已结案时为该案件'})
    message = fields.String(metadata={'example': '已送达案件 SJ-2025-000012，已生成核查任务。'})
    received_at = fields.DateTime(attribute='received_dt', metadata={'example': '2025-10-10T02:16:03+00:00'})

    class Meta:
        fields = ('id', 'kind', 'key', 'status', 'effect', 'case', 'message', 'received_at')
