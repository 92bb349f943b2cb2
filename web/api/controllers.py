"""REST API handlers: each loads its records, checks access and acts; :class:`ApiView` speaks JSON.

Every handler runs through ``BaseView`` (load → check access → verb, one commit). The class
attributes ``summary``, ``body_schema``, ``query_schema``, ``result_schema``, ``success_status`` and
``error_statuses`` describe the endpoint for ``web.api.openapi``, so the document cannot drift from the
handlers it describes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, TypeVar

import sqlalchemy as sa
from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from marshmallow import Schema, ValidationError
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from werkzeug.exceptions import BadRequest

from engine import audit, events, filters, idempotency, runtime, tasks
from engine.access import DESIGNER, visible_cases
from engine.attachments import (
    ACCEPTED_KINDS,
    AttachmentUnreadable,
    attachments_query,
    get_attachment,
    read_content,
    store_attachment,
)
from engine.comments import add_comment, case_task, comments_query
from engine.definitions import deploy_with_report, process_bundle, validate
from engine.directory import LoginFailed, authenticate, issue_token
from engine.errors import (
    AccessDenied,
    DeploymentRejected,
    EngineError,
    NotFound,
    ValidationFailed,
    WarningsNotAccepted,
)
from engine.forms import FieldSpec, FormSpec
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Attachment, Comment
from engine.models.definitions import ProcessDefinition
from engine.models.events import MachineClient
from engine.models.filters import SavedFilter
from engine.models.instances import ProcessInstance
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from web.api import schemas
from web.api.openapi import openapi_document
from web.cases.casefile import check_may_export, export_case_file
from web.cases.util import CaseFilters, filter_clauses, get_case, may_reveal, unit_in_scope
from web.comments.util import attachment_response, attachment_settings, record_download
from web.core.auth import current_actor, current_scope, is_token_request
from web.core.database import db
from web.core.views import BaseView, status_for

SAFE_METHODS = frozenset({'GET', 'HEAD', 'OPTIONS'})
#: a client's name for one attempt at a command: a retry under the same key has the first attempt's effect only
IDEMPOTENCY_HEADER = 'Idempotency-Key'
MSG_INVALID_BODY = '请求数据有误，请检查标出的字段。'
MSG_LOGIN_FAILED = '用户名或密码错误，或账户已被暂时锁定。'
MSG_UNAUTHENTICATED = '请先登录或提供有效的访问令牌。'
SchemaT = TypeVar('SchemaT', bound=Schema)


# -- responses ----------------------------------------------------------------------------------------

@cache
def schema_instance(schema: type[SchemaT]) -> SchemaT:
    """The one instance of ``schema`` this process dumps and loads with.

    Building a schema binds every field (and, on first use, every nested schema): about a tenth of the CPU of a
    small response. Instances hold no per-call state, so one serves every request and thread.
    """
    return schema()


def respond(schema: type[Schema], obj: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> ResponseReturnValue:
    """Dump ``obj`` through ``schema`` as a JSON response."""
    return jsonify(schema_instance(schema).dump(obj)), status, headers or {}


def error_response(code: str, message: str, status: int, *, fields: dict[str, list[str]] | None = None,
                   problems: list[dict[str, Any]] | None = None,
                   report: dict[str, Any] | None = None) -> ResponseReturnValue:
    """The one error shape: ``{"error", "message", "fields"}`` (+ ``problems`` and ``report`` for deployments)."""
    payload: dict[str, Any] = {'error': code, 'message': message, 'fields': fields or {}}
    if problems is not None:
        payload['problems'] = problems
    if report is not None:
        payload['report'] = report
    return respond(schemas.ErrorSchema, payload, status)


class Extended:
    """``obj`` seen with extra attributes, so one schema can dump a row with its related rows.

    :param obj: the model instance
    :param extra: attributes to add (e.g. ``tasks=[...]``); they win over the model's own
    """

    def __init__(self, obj: Any, **extra: Any) -> None:
        self._obj = obj
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._obj, name)


# -- input --------------------------------------------------------------------------------------------

def load_with(schema: type[Schema], data: Any) -> dict[str, Any]:
    """Validate ``data`` through ``schema``; every problem becomes one ValidationFailed (400)."""
    try:
        result: dict[str, Any] = schema_instance(schema).load(data)
    except ValidationError as error:
        raise ValidationFailed(MSG_INVALID_BODY, schemas.flat_messages(error.messages)) from None
    return result


def json_body() -> Any:
    """The request's JSON body (``{}`` when there is none); malformed JSON is a ValidationFailed."""
    if not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise ValidationFailed(MSG_INVALID_BODY,
                               {'_schema': ['请求体须为 JSON，并设置 Content-Type: application/json。']})
    try:
        body = request.get_json()
    except (BadRequest, RecursionError):
        raise ValidationFailed(MSG_INVALID_BODY, {'_schema': ['请求体不是有效的 JSON。']}) from None
    try:
        # Python's parser takes what no database stores: NaN/Infinity (not JSON at all) and lone surrogates
        # from \ud800-style escapes (not encodable as UTF-8). Refuse them here rather than fail at the INSERT.
        json.dumps(body, ensure_ascii=False, allow_nan=False).encode('utf-8')
    except (ValueError, RecursionError):
        raise ValidationFailed(MSG_INVALID_BODY,
                               {'_schema': ['请求体含有无法保存的内容（无效的字符，或 NaN、Infinity）。']}) from None
    return body


def load_body(schema: type[Schema]) -> dict[str, Any]:
    """Parse and validate the JSON body."""
    return load_with(schema, json_body())


def load_args(schema: type[Schema]) -> dict[str, Any]:
    """Parse and validate the query string."""
    return load_with(schema, request.args)


# -- paging -------------------------------------------------------------------------------------------

def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    # The cursor is the last id served: a larger number is none we issued (and overflows the id column).
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= len(str(schemas.MAX_RECORD_ID))
            and int(cursor) <= schemas.MAX_RECORD_ID):
        raise ValidationFailed('分页参数无效', {'cursor': ['无法识别的分页游标。']})
    return int(cursor)


def id_page(query: sa.Select[Any], column: Any, args: dict[str, Any], *, descending: bool) -> dict[str, Any]:
    """One keyset page of ``query`` ordered by the id ``column``; the cursor is the last id served.

    :param args: the loaded ``PageArgsSchema`` (``cursor``, ``limit``)
    :return: ``{"items": [...], "next": cursor or None}``
    """
    after, limit = _cursor_id(args['cursor']), args['limit']
    if after is not None:
        query = query.where(column < after if descending else column > after)
    query = query.order_by(column.desc() if descending else column.asc()).limit(limit + 1)
    rows = list(db().scalars(query))
    items = rows[:limit]
    return {'items': items, 'next': str(items[-1].id) if len(rows) > limit else None}


def with_cases(rows: Sequence[HumanTask]) -> Sequence[HumanTask]:
    """Load the cases and units of ``rows`` in two queries at most, so dumping a page costs no query per task;
    those the session already holds (a command's own case and unit) are not read again."""
    session = db()
    for attribute, key, model in (('case', 'case_id', Case), ('org_unit', 'org_unit_id', OrgUnit)):
        loaded: dict[int, Any] = {}
        for row in rows:
            held = session.identity_map.get(identity_key(model, getattr(row, key)))
            if held is not None:
                loaded[getattr(row, key)] = held
        missing = {getattr(row, key) for row in rows} - loaded.keys()
        if missing:
            loaded.update((item.id, item) for item in session.scalars(sa.select(model).where(model.id.in_(missing))))
        for row in rows:
            set_committed_value(row, attribute, loaded[getattr(row, key)])
    return rows


# -- the base view ------------------------------------------------------------------------------------

class ApiView(BaseView):
    """Base of every API handler: JSON errors, 401 JSON for anonymous, CSRF on session writes."""

    #: one line for the OpenAPI document
    summary: ClassVar[str] = ''
    #: the JSON request body, if the endpoint takes one
    body_schema: ClassVar[type[Schema] | None] = None
    #: an alternative multipart/form-data body (documentation only)
    upload_schema: ClassVar[type[Schema] | None] = None
    #: the query string
    query_schema: ClassVar[type[Schema] | None] = None
    #: the success response body
    result_schema: ClassVar[type[Schema] | None] = None
    success_status: ClassVar[int] = 200
    #: further success statuses with the same body
    other_success_statuses: ClassVar[tuple[int, ...]] = ()
    #: error statuses the endpoint answers with besides 401
    error_statuses: ClassVar[tuple[int, ...]] = (400,)
    #: what an error status means here, where it differs from the usual meaning (OpenAPI only)
    error_descriptions: ClassVar[dict[int, str]] = {}
    #: session-authenticated writes must carry the CSRF token; bearer-token calls need none
    check_csrf: ClassVar[bool] = True
    #: the command honours an ``Idempotency-Key`` header (OpenAPI only)
    idempotent: ClassVar[str | None] = None
    #: the security schemes the operation accepts, when not the staff token or session (OpenAPI only)
    security: ClassVar[list[dict[str, list[str]]] | None] = None
    #: example bodies where the schemas' field examples do not make one: ``'request'`` or a status code as
    #: text (OpenAPI only; see ``web.api.openapi.schema_example``)
    examples: ClassVar[dict[str, Any]] = {}
    #: the media types of the success response; anything but JSON is documented as a file (OpenAPI only)
    result_media_types: ClassVar[tuple[str, ...]] = ('application/json',)

    def dispatch_request(self, **kwargs: Any) -> ResponseReturnValue:
        if self._needs_csrf():
            from web.app import csrf  # here, not at import: web.app imports this blueprint
            csrf.protect()  # raises CSRFError, which the app renders as {"error": "csrf"}
        return super().dispatch_request(**kwargs)

    def _needs_csrf(self) -> bool:
        return (self.check_csrf and request.method not in SAFE_METHODS
                and current_user.is_authenticated and not is_token_request())

    def unauthenticated(self) -> ResponseReturnValue:
        """401 JSON: an API client must never be redirected to the login page."""
        return error_response('unauthorized', MSG_UNAUTHENTICATED, 401)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        """Render an engine error; validation errors carry ``fields``, refused deployments ``problems``
        (``{"element", "message"}`` as before reports existed) and the whole ``report``."""
        problems = None
        if isinstance(exc, DeploymentRejected):
            problems = [{'element': p.get('element'), 'message': p.get('message')} for p in exc.problems]
        report = getattr(exc, 'report', None) if isinstance(exc, DeploymentRejected | WarningsNotAccepted) else None
        return error_response(exc.code, exc.message, status_for(exc),
                              fields=exc.fields if isinstance(exc, ValidationFailed) else None,
                              problems=problems, report=report.to_dict() if report is not None else None)


# -- auth ---------------------------------------------------------------------------------------------

class CreateToken(ApiView):
    """Exchange a username and password for a bearer token."""

    summary = '以用户名和密码换取访问令牌'
    body_schema = schemas.TokenRequestSchema
    result_schema = schemas.TokenSchema
    # 429: web.auth.util.limit_login_attempts answers before this view while an address or username retries too
    # often (FENGQIAO_LOGIN_RATE_LIMIT per username, FENGQIAO_LOGIN_RATE_LIMIT_PER_IP per address, in a window).
    error_statuses = (400, 401, 429)
    login_required = False
    # The credentials in the body authenticate this call, not the session cookie.
    check_csrf = False

    def post(self) -> ResponseReturnValue:
        body = load_body(schemas.TokenRequestSchema)
        try:
            user = authenticate(db(), body['username'], body['password'])
        except LoginFailed:
            # Returned rather than raised: the base view then commits, keeping the failure count.
            return error_response('login_failed', MSG_LOGIN_FAILED, 401)
        # A credential: no cache or proxy may keep it (RFC 6749 §5.1).
        return respond(schemas.TokenSchema, {'token': issue_token(db(), user)},
                       headers={'Cache-Control': 'no-store', 'Pragma': 'no-cache'})


# -- definitions ----------------------------------------------------------------------------------------

class ListDefinitions(ApiView):
    """Deployed definitions, newest first."""

    summary = '已部署的流程与决策定义（按编号倒序，键集分页）'
    query_schema = schemas.PageArgsSchema
    result_schema = schemas.DefinitionPageSchema

    def get(self) -> ResponseReturnValue:
        args = load_args(schemas.PageArgsSchema)
        query = sa.select(ProcessDefinition).options(selectinload(ProcessDefinition.deployed_by))
        return respond(schemas.DefinitionPageSchema,
                       id_page(query, ProcessDefinition.id, args, descending=True))


class DesignerView(ApiView):
    """Base of the endpoints that take a BPMN/DMN source: designers only; JSON ``source`` or multipart ``file``."""

    def check_access(self) -> None:
        if not current_scope().has_role(DESIGNER):
            raise AccessDenied('只有流程设计人员可以部署和校验流程。')

    def source(self, schema: type[Schema]) -> tuple[bytes | str, str, dict[str, Any]]:
        """The uploaded source, its file name and the other fields of the body (loaded through ``schema``)."""
        upload = request.files.get('file')
        if upload is not None:
            options = load_with(schemas.AcceptWarningsSchema, request.form)
            return upload.read(), upload.filename or 'upload', options
        if request.mimetype == 'multipart/form-data':
            raise ValidationFailed(MSG_INVALID_BODY, {'file': ['请选择要上传的文件。']})
        body = load_body(schema)
        return body.pop('source'), 'upload', body


class ValidateDefinition(DesignerView):
    """Check a BPMN or DMN source as a deployment would, storing nothing (designers only)."""

    summary = '校验 BPMN/DMN，返回校验报告（错误阻止部署，警告须确认）；不保存任何内容'
    body_schema = schemas.ValidateRequestSchema
    upload_schema = schemas.ValidateUploadSchema
    result_schema = schemas.ReportSchema
    error_statuses = (400, 403)

    def post(self) -> ResponseReturnValue:
        source, filename, _ = self.source(schemas.ValidateRequestSchema)
        return respond(schemas.ReportSchema, validate(db(), source, filename=filename).to_dict())


class DeployDefinition(DesignerView):
    """Deploy a BPMN or DMN source (designers only).

    A source whose validation report has errors is refused (400, ``invalid_definition``); one with
    warnings is refused with 409 (``warnings_not_accepted``) unless ``accept_warnings`` is true: the
    source is fine, the request only lacks the designer's confirmation. Both bodies carry the report.
    """

    summary = '部署 BPMN/DMN（JSON 的 source 或 multipart 的 file）；源文件未变化时不创建新版本'
    body_schema = schemas.DeployRequestSchema
    upload_schema = schemas.DeployUploadSchema
    result_schema = schemas.DeployedSchema
    success_status = 201
    # An unchanged source creates nothing: 200 with created false.
    other_success_statuses = (200,)
    error_statuses = (400, 403, 409)
    error_descriptions = {400: '请求有误，或校验报告有错误（report 列出全部问题），未部署',
                          409: '校验报告有警告而未设置 accept_warnings（report 列出警告），未部署'}

    def post(self) -> ResponseReturnValue:
        source, filename, options = self.source(schemas.DeployRequestSchema)
        result = deploy_with_report(db(), source, actor=current_actor(), filename=filename,
                                    accept_warnings=options['accept_warnings'])
        definition = result.definition
        payload = {'id': definition.id, 'key': definition.key, 'version': definition.version,
                   'created': result.created,
                   'accepted_warnings': [f.to_dict() for f in result.report.warnings] if result.created else []}
        return respond(schemas.DeployedSchema, payload, 201 if result.created else 200)


# -- cases --------------------------------------------------------------------------------------------

class ListCases(ApiView):
    """Cases the caller may see, newest first."""

    summary = ('可见的案件（按编号倒序，键集分页；可按流程、状态、机构、立案日期、编号或姓名开头、'
               '完整身份证号筛选，条件可组合）')
    query_schema = schemas.CaseArgsSchema
    result_schema = schemas.CasePageSchema

    def get(self) -> ResponseReturnValue:
        args = load_args(schemas.CaseArgsSchema)
        query = visible_cases(current_scope()).options(selectinload(Case.org_unit))
        query = query.where(*filter_clauses(self._filters(args)))
        return respond(schemas.CasePageSchema, id_page(query, Case.id, args, descending=True))

    def _filters(self, args: dict[str, Any]) -> CaseFilters:
        org_path = ''
        if args['org_unit']:
            unit = unit_in_scope(db(), current_scope(), args['org_unit'].strip())
            if unit is None:
                raise ValidationFailed(MSG_INVALID_BODY, {'org_unit': ['机构不存在或不在您的范围内。']})
            org_path = unit.path
        text = {name: (args[name] or '').strip() for name in ('kind', 'status', 'q', 'number', 'name', 'id_number')}
        return CaseFilters(number=text['number'], name=text['name'], id_number=text['id_number'].upper(),
                           kind=text['kind'], status=text['status'], org_path=org_path,
                           opened_from=args['opened_from'], opened_to=args['opened_to'], text=text['q'])


class StartCase(ApiView):
    """Open a case and run its lifecycle to the first tasks."""

    summary = '以流程编码和开始数据新建案件，返回案件编号、一案一码和首批待办'
    body_schema = schemas.StartCaseRequestSchema
    result_schema = schemas.StartedCaseSchema
    success_status = 201
    error_statuses = (400, 403, 404, 409, 422)
    error_descriptions = {409: '幂等键已用于内容不同的另一请求'}
    idempotent = ('客户端为本次请求取的唯一键（如 UUID）。超时后以同一键重试，只会立案一次，并返回第一次的结果'
                  '（响应头 Idempotent-Replayed: true）；同一键用于内容不同的请求返回 409。键保留 7 天。')

    def check_access(self) -> None:
        if not current_scope().case_paths:
            raise AccessDenied('您没有办理案件的权限。')

    def post(self) -> ResponseReturnValue:
        body = load_body(schemas.StartCaseRequestSchema)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        claimed = None
        if key is not None:
            claimed = idempotency.claim(db(), current_actor().id, 'api.start_case',
                                        idempotency.check_key(key), idempotency.fingerprint(body))
            if idempotency.answered(claimed):
                return jsonify(claimed.response), claimed.status, {'Idempotent-Replayed': 'true'}
        unit = self._org_unit(body['org_unit'])
        case, open_tasks = runtime.start_case(db(), body['process_key'], body['data'], actor=current_actor(),
                                              org_unit=unit, scope=current_scope())
        result = schema_instance(schemas.StartedCaseSchema).dump(Extended(case, tasks=open_tasks))
        if claimed is not None:
            idempotency.settle(claimed, 201, result)
        return jsonify(result), 201

    def _org_unit(self, code: str | None) -> OrgUnit:
        if code is None:
            return current_actor().org_unit
        unit = db().scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
        if unit is None:
            raise NotFound('机构不存在')
        return unit


class CaseView(ApiView):
    """Base of the handlers of one case: loads it, 404 unless the caller may see it."""

    error_statuses: ClassVar[tuple[int, ...]] = (404,)
    case: Case

    def load(self, **kwargs: Any) -> None:
        self.case = get_case(db(), kwargs['case_id'], current_scope())


class GetCase(CaseView):
    """One case, with its instances and open tasks. The ID number is masked unless ``reveal=1`` is given;
    revealing is for the case's own units and those above them (404 for anyone else, as for a case they cannot
    see) and writes a ``case.sensitive_viewed`` audit event every time."""

    summary = '案件详情（流程实例和未办结任务；身份证号默认脱敏，reveal=1 返回完整号码并记入审计日志）'
    query_schema = schemas.CaseRevealArgsSchema
    result_schema = schemas.CaseDetailSchema
    error_statuses = (400, 404)

    #: what the detail shows, read with the case: its unit (usually its tasks' too), instances and versions
    #: (built once, as the open tasks' statement: the bench's clients read a case before each step)
    _RELATED = (joinedload(Case.org_unit, innerjoin=True),
                selectinload(Case.instances).joinedload(ProcessInstance.definition, innerjoin=True))
    _OPEN_TASKS = (sa.select(HumanTask).where(HumanTask.case_id == sa.bindparam('case_id'), HumanTask.status == 'open')
                   .order_by(HumanTask.id))

    def load(self, **kwargs: Any) -> None:
        self.case = get_case(db(), kwargs['case_id'], current_scope(), options=self._RELATED)

    def get(self, case_id: int) -> ResponseReturnValue:
        reveal = load_args(schemas.CaseRevealArgsSchema)['reveal']
        if reveal:
            self._record_reveal()
        open_tasks = db().scalars(self._OPEN_TASKS, {'case_id': self.case.id}).all()
        schema = schemas.RevealedCaseDetailSchema if reveal else schemas.CaseDetailSchema
        return respond(schema, Extended(self.case, tasks=with_cases(open_tasks)))

    def _record_reveal(self) -> None:
        if not may_reveal(current_scope(), self.case):
            raise NotFound('案件不存在')
        audit.record(db(), 'case.sensitive_viewed', actor=current_actor(), case_id=self.case.id,
                     org_path=self.case.org_path, after={'fields': ['id_number'] if self.case.id_number else []})


class ListCaseHistory(CaseView):
    """The audit events of one case, oldest first."""

    summary = '案件的审计记录（按时间先后，键集分页）'
    query_schema = schemas.PageArgsSchema
    result_schema = schemas.EventPageSchema
    error_statuses = (400, 404)

    def get(self, case_id: int) -> ResponseReturnValue:
        args = load_args(schemas.PageArgsSchema)
        query = sa.select(AuditEvent).where(AuditEvent.case_id == self.case.id)
        return respond(schemas.EventPageSchema, id_page(query, AuditEvent.id, args, descending=False))


# -- tasks --------------------------------------------------------------------------------------------

def task_filter(args: dict[str, Any]) -> tasks.TaskFilter:
    """The to-do filters of a query string (``q`` is the filter's ``text``)."""
    return tasks.TaskFilter.from_dict({**args, 'text': args.get('q')})


class ListTasks(ApiView):
    """One to-do view, narrowed by the filters (or a saved filter), sorted, keyset-paged."""

    summary = ('待办列表：mine 我的、group 组内待认领、due_soon 即将到期、overdue 已逾期、escalated 升级给我、'
               'all 全部可见、completed 最近办结')
    query_schema = schemas.TaskArgsSchema
    result_schema = schemas.TaskPageSchema
    error_statuses = (400, 404)

    def get(self) -> ResponseReturnValue:
        args = load_args(schemas.TaskArgsSchema)
        view, wanted, sort = args['view'], task_filter(args), args['sort'] or 'due'
        if args['filter'] is not None:
            saved = filters.get_filter(db(), args['filter'], current_scope())
            view, (wanted, saved_sort) = saved.view, filters.filter_of(saved)
            sort = args['sort'] or saved_sort
        page = tasks.list_tasks(db(), current_scope(), view, task_filter=wanted, sort=sort,
                                cursor=args['cursor'], limit=args['limit'])
        return respond(schemas.TaskPageSchema, {'items': with_cases(page.items), 'next': page.next_cursor})


class CountTasks(ApiView):
    """The number of tasks in every view, with the same filters as the list; counting stops after ``cap``."""

    summary = '各待办视图的任务数（超过 cap 时返回 cap + 1，显示为“1000+”）'
    query_schema = schemas.TaskCountArgsSchema
    result_schema = schemas.TaskCountsSchema

    def get(self) -> ResponseReturnValue:
        wanted = task_filter(load_args(schemas.TaskCountArgsSchema))
        counts = tasks.count_views(db(), current_scope(), tasks.VIEWS, task_filter=wanted)
        return respond(schemas.TaskCountsSchema, {'counts': counts, 'cap': tasks.COUNT_CAP})


class TaskView(ApiView):
    """Base of the handlers of one task: loads it, 404 unless the caller may see it."""

    error_statuses: ClassVar[tuple[int, ...]] = (404,)
    task: HumanTask

    def load(self, **kwargs: Any) -> None:
        self.task = runtime.get_task(db(), kwargs['task_id'], current_scope(), with_case=True)


class GetTask(TaskView):
    """A task with its form fields and the values the form starts with."""

    summary = '任务详情：表单字段与当前数据'
    result_schema = schemas.TaskDetailSchema

    def get(self, task_id: int) -> ResponseReturnValue:
        form = self._form()
        data = runtime.task_data(db(), self.task)
        current = {spec.id: data.get(spec.id) for spec in form.fields}
        return respond(schemas.TaskDetailSchema, Extended(self.task, form=form_payload(form), data=current))

    def _form(self) -> FormSpec:
        info = process_bundle(db(), self.task.instance.definition).user_tasks.get(self.task.bpmn_id)
        return info.form if info is not None else FormSpec(None)


def form_payload(form: FormSpec) -> dict[str, Any]:
    """``form`` as the plain structure ``FormSchema`` dumps."""
    return {'key': form.key, 'fields': [_field_payload(spec) for spec in form.fields]}


def _field_payload(spec: FieldSpec) -> dict[str, Any]:
    constraints = {'min_length': spec.min_length, 'max_length': spec.max_length, 'minimum': _bound(spec.minimum),
                   'maximum': _bound(spec.maximum), 'readonly': spec.readonly}
    return {'id': spec.id, 'label': spec.label, 'type': spec.type, 'required': spec.required,
            'default': spec.default, 'options': [{'id': i, 'name': n} for i, n in spec.options],
            'constraints': constraints}


def _bound(value: int | Decimal | date | None) -> int | str | None:
    # Decimal as text (no float ever touches money); dates in ISO form.
    if value is None or isinstance(value, int):
        return value
    return value.isoformat() if isinstance(value, date) else str(value)


class ClaimTask(TaskView):
    """Take an unassigned task of one of the caller's groups."""

    summary = '认领任务'
    body_schema = schemas.EmptyRequestSchema
    result_schema = schemas.TaskSchema
    error_statuses = (400, 403, 404, 409)

    def post(self, task_id: int) -> ResponseReturnValue:
        load_body(schemas.EmptyRequestSchema)
        task = tasks.claim_task(db(), self.task.id, actor=current_actor(), scope=current_scope())
        return respond(schemas.TaskSchema, task)


class UnclaimTask(TaskView):
    """Give a task back to its group."""

    summary = '退回任务（认领人或主管）'
    body_schema = schemas.EmptyRequestSchema
    result_schema = schemas.TaskSchema
    error_statuses = (400, 403, 404, 409)

    def post(self, task_id: int) -> ResponseReturnValue:
        load_body(schemas.EmptyRequestSchema)
        task = tasks.unclaim_task(db(), self.task.id, actor=current_actor(), scope=current_scope())
        return respond(schemas.TaskSchema, task)


class AssignTask(TaskView):
    """Hand a task to a candidate (supervisors only)."""

    summary = '指派任务（主管）'
    body_schema = schemas.AssignRequestSchema
    result_schema = schemas.TaskSchema
    error_statuses = (400, 403, 404, 409)

    def post(self, task_id: int) -> ResponseReturnValue:
        body = load_body(schemas.AssignRequestSchema)
        task = tasks.assign_task(db(), self.task.id, body['assignee'], actor=current_actor(),
                                 scope=current_scope())
        return respond(schemas.TaskSchema, task)


class CompleteTask(TaskView):
    """Submit a task's form and run the case on."""

    summary = '办理任务：按任务表单校验 data，推进流程，返回后续待办'
    body_schema = schemas.CompleteRequestSchema
    result_schema = schemas.CompletedTaskSchema
    error_statuses = (400, 403, 404, 409, 422)

    def post(self, task_id: int) -> ResponseReturnValue:
        body = load_body(schemas.CompleteRequestSchema)
        # A WorkflowFault rolls everything back; the base view then notes it on this instance.
        self.fault_instance_id = self.task.instance_id
        task, next_tasks = runtime.complete_task(db(), self.task.id, body['data'], actor=current_actor(),
                                                 scope=current_scope())
        return respond(schemas.CompletedTaskSchema, Extended(task, next_tasks=with_cases(next_tasks)))


class DelegateTask(TaskView):
    """Hand a task to a colleague for their part; it comes back when they resolve it."""

    summary = '委托他人办理（受托人办结后交回委托人）'
    body_schema = schemas.DelegateRequestSchema
    result_schema = schemas.TaskSchema
    error_statuses = (400, 403, 404, 409)

    def post(self, task_id: int) -> ResponseReturnValue:
        body = load_body(schemas.DelegateRequestSchema)
        task = tasks.delegate_task(db(), self.task.id, body['delegate'], actor=current_actor(),
                                   scope=current_scope(), note=body['note'])
        return respond(schemas.TaskSchema, task)


class ResolveTask(TaskView):
    """The delegate gives a delegated task back to its owner."""

    summary = '办结委托并交回委托人'
    body_schema = schemas.ResolveRequestSchema
    result_schema = schemas.TaskSchema
    error_statuses = (400, 403, 404, 409)

    def post(self, task_id: int) -> ResponseReturnValue:
        body = load_body(schemas.ResolveRequestSchema)
        task = tasks.resolve_task(db(), self.task.id, actor=current_actor(), scope=current_scope(),
                                  note=body['note'])
        return respond(schemas.TaskSchema, task)


def bulk_response(results: Sequence[tasks.BulkResult]) -> ResponseReturnValue:
    """Every task's outcome; the successful ones carry the task as it is now."""
    with_cases([result.task for result in results if result.task is not None])
    return respond(schemas.BulkResultsSchema, {'results': results})


class BulkClaimTasks(ApiView):
    """Claim several tasks; each succeeds or fails on its own."""

    summary = '批量认领：逐项返回结果'
    body_schema = schemas.BulkClaimRequestSchema
    result_schema = schemas.BulkResultsSchema

    def post(self) -> ResponseReturnValue:
        body = load_body(schemas.BulkClaimRequestSchema)
        return bulk_response(tasks.bulk_claim(db(), body['tasks'], actor=current_actor(), scope=current_scope()))


class BulkAssignTasks(ApiView):
    """Assign several tasks to one person (supervisors); each succeeds or fails on its own."""

    summary = '批量指派（主管）：逐项返回结果'
    body_schema = schemas.BulkAssignRequestSchema
    result_schema = schemas.BulkResultsSchema

    def post(self) -> ResponseReturnValue:
        body = load_body(schemas.BulkAssignRequestSchema)
        return bulk_response(tasks.bulk_assign(db(), body['tasks'], body['assignee'], actor=current_actor(),
                                               scope=current_scope()))


# -- saved filters ------------------------------------------------------------------------------------

def _with_count(saved: SavedFilter) -> Extended:
    wanted, _ = filters.filter_of(saved)
    return Extended(saved, count=tasks.count_tasks(db(), current_scope(), saved.view, task_filter=wanted))


class ListFilters(ApiView):
    """The caller's saved filters and those shared with their groups, each with its count."""

    summary = '常用筛选（本人的与共享给本人所在组的），附当前任务数'
    result_schema = schemas.SavedFilterListSchema
    error_statuses = ()

    def get(self) -> ResponseReturnValue:
        saved = filters.list_filters(db(), current_scope())
        return respond(schemas.SavedFilterListSchema, {'items': [_with_count(item) for item in saved]})


class SaveFilter(ApiView):
    """Save a view, filters and sort under a name, personal or shared with one of the caller's groups."""

    summary = '保存常用筛选'
    body_schema = schemas.SavedFilterRequestSchema
    result_schema = schemas.SavedFilterSchema
    success_status = 201

    def post(self) -> ResponseReturnValue:
        body = load_body(schemas.SavedFilterRequestSchema)
        saved = filters.save_filter(db(), body['name'], body['view'], body['criteria'], actor=current_actor(),
                                    scope=current_scope(), sort=body['sort'], share_group=body['share_group'])
        return respond(schemas.SavedFilterSchema, _with_count(saved), 201)


class DeleteFilter(ApiView):
    """Delete one of the caller's own saved filters."""

    summary = '删除常用筛选（仅创建人）'
    result_schema = schemas.EmptySchema
    error_statuses = (403, 404)

    def delete(self, filter_id: int) -> ResponseReturnValue:
        filters.delete_filter(db(), filter_id, actor=current_actor(), scope=current_scope())
        return respond(schemas.EmptySchema, {})


# -- the document -------------------------------------------------------------------------------------

class GetOpenApi(ApiView):
    """The OpenAPI 3 document of this API."""

    summary = 'OpenAPI 3 文档'
    error_statuses = ()
    login_required = False
    examples = {'200': {'openapi': '3.0.3', 'info': {'title': '枫桥 Fengqiao API', 'version': '1.0'},
                        'paths': {'/api/v1/cases': {'get': {'operationId': 'list_cases'}}}}}

    def get(self) -> ResponseReturnValue:
        return jsonify(openapi_document())


# -- comments and attachments -------------------------------------------------------------------------

MSG_NO_FILE = '请选择要上传的文件。'
MSG_NOT_MULTIPART = '请以 multipart/form-data 上传，文件放在 file 字段中。'


class ListComments(CaseView):
    """The comments of one case, oldest first."""

    summary = '案件的意见（按时间先后，键集分页）'
    query_schema = schemas.PageArgsSchema
    result_schema = schemas.CommentPageSchema
    error_statuses = (400, 404)

    def get(self, case_id: int) -> ResponseReturnValue:
        args = load_args(schemas.PageArgsSchema)
        return respond(schemas.CommentPageSchema,
                       id_page(comments_query(self.case), Comment.id, args, descending=False))


class AddComment(CaseView):
    """Write a comment on a case, optionally about one of its tasks."""

    summary = '在案件上发表意见（可注明所涉及的任务）'
    body_schema = schemas.CommentRequestSchema
    result_schema = schemas.CommentSchema
    success_status = 201
    error_statuses = (400, 404)

    def post(self, case_id: int) -> ResponseReturnValue:
        body = load_body(schemas.CommentRequestSchema)
        task = case_task(db(), self.case, body['task_id'])
        comment = add_comment(db(), self.case, body['body'], actor=current_actor(), scope=current_scope(),
                              task=task)
        return respond(schemas.CommentSchema, comment, 201)


class ListAttachments(CaseView):
    """The attachments of one case, oldest first, without their contents."""

    summary = '案件的附件（不含内容；按上传先后，键集分页）'
    query_schema = schemas.PageArgsSchema
    result_schema = schemas.AttachmentPageSchema
    error_statuses = (400, 404)

    def get(self, case_id: int) -> ResponseReturnValue:
        args = load_args(schemas.PageArgsSchema)
        return respond(schemas.AttachmentPageSchema,
                       id_page(attachments_query(self.case), Attachment.id, args, descending=False))


class AddAttachment(CaseView):
    """Upload a file to a case (multipart field ``file``); what it is is judged from its bytes."""

    summary = '上传附件（multipart 的 file 字段，可带 task_id）：只接受 PDF、JPEG、PNG、.docx、.xlsx'
    upload_schema = schemas.AttachmentUploadSchema
    result_schema = schemas.AttachmentSchema
    success_status = 201
    error_statuses = (400, 404)

    def post(self, case_id: int) -> ResponseReturnValue:
        if request.mimetype != 'multipart/form-data':
            raise ValidationFailed(MSG_INVALID_BODY, {'file': [MSG_NOT_MULTIPART]})
        # A browser may send its CSRF token as a form field rather than a header; csrf.protect() read it.
        values = {k: v for k, v in request.form.items() if v.strip() and k != 'csrf_token'}
        form = load_with(schemas.AttachmentFormSchema, values)
        task = case_task(db(), self.case, form['task_id'])
        upload = request.files.get('file')
        if upload is None:
            raise ValidationFailed(MSG_INVALID_BODY, {'file': [MSG_NO_FILE]})
        attachment = store_attachment(db(), self.case, upload.filename, upload.read(), actor=current_actor(),
                                      scope=current_scope(), task=task, settings=attachment_settings())
        return respond(schemas.AttachmentSchema, attachment, 201)


class GetAttachmentContent(CaseView):
    """The attachment's bytes as uploaded, with its checked content type, as a download.

    The bytes are checked against the SHA-256 recorded at upload; a file changed or lost since is refused
    with a JSON error (500, ``attachment_unreadable``) rather than served.
    """

    summary = '下载附件内容（按上传时识别的类型返回文件本身，而非 JSON）'
    result_media_types = tuple(kind.content_type for kind in ACCEPTED_KINDS)
    error_statuses = (404, 500)
    error_descriptions = {500: '附件内容自上传后已改变或丢失（attachment_unreadable），不予提供'}
    attachment: Attachment

    def load(self, **kwargs: Any) -> None:
        super().load(**kwargs)
        self.attachment = get_attachment(db(), kwargs['attachment_id'], current_scope())
        if self.attachment.case_id != self.case.id:
            raise NotFound('附件不存在')

    def get(self, case_id: int, attachment_id: int) -> ResponseReturnValue:
        data = read_content(self.attachment, attachment_settings())
        record_download(db(), self.case, self.attachment, current_actor())
        return attachment_response(self.attachment, data)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, AttachmentUnreadable):
            return super().handle_error(exc)
        current_app.logger.error('attachment %s of case %s cannot be served: %s', self.attachment.id,
                                 self.case.id, exc.message)
        return error_response(exc.code, exc.message, 500)


# -- incoming events (machine clients) ----------------------------------------------------------------------

MSG_MACHINE_TOKEN = '请提供有效的接入方令牌（Authorization: Bearer …）。'
MSG_STAFF_TOKEN = '此接口只接受接入方令牌，工作人员的令牌或登录会话不能发送事件。'
MSG_KEY_REQUIRED = '请在 Idempotency-Key 头或 key 字段中提供事件的唯一键。'
MSG_KEY_MISMATCH = 'Idempotency-Key 头与 key 字段不一致。'


class ReceiveEvent(ApiView):
    """Receive a monitoring alarm or a 五源 referral from a machine client, authenticated by the client's own
    token (a staff token or session is refused with 403; a machine token opens nothing else). An alarm is
    delivered to the offender's open corrections case as a new 报警核查 with its deadline; a referral opens a
    dispute case or joins the open one of the same patient and hospital. An alarm nobody can receive is still
    recorded and shown to the client unit's supervisors. The same key again answers as the first time."""

    summary = '接收监管报警或五源纠纷移交（接入方令牌；同一键只产生一次效果）'
    body_schema = schemas.EventRequestSchema
    result_schema = schemas.InboundEventSchema
    success_status = 201
    other_success_statuses = (200,)
    error_statuses = (400, 401, 403, 409)
    error_descriptions = {
        401: '缺少或无效的接入方令牌', 403: '使用了工作人员的令牌或会话，或该接入方无权发送此类事件',
        409: '该键已用于内容不同的另一事件'}
    # The machine token in the header authenticates the call; flask-login knows only staff.
    examples = {'200': {'id': 42, 'kind': 'referral', 'key': 'TJ-110-20251009-0007', 'status': 'delivered',
                        'effect': 'case_attached', 'case': {'id': 30, 'number': 'YT-2025-000030',
                                                            'kind': 'dispute_mediation'},
                        'message': '已并入办理中的案件 YT-2025-000030（同一患者、同一医疗机构）。',
                        'received_at': '2025-10-09T08:30:00+00:00'}}
    login_required = False
    check_csrf = False
    idempotent = ('接入方为每个事件取的唯一键（如对方系统的报警编号），也可放在请求体的 key 中。'
                  '以同一键重发只产生一次效果，返回第一次的结果（响应头 Idempotent-Replayed: true）；'
                  '同一键用于内容不同的事件返回 409。键长期保留。')
    security = [{'machine': []}]
    client: MachineClient | None

    def load(self, **kwargs: Any) -> None:
        if current_user.is_authenticated:
            raise AccessDenied(MSG_STAFF_TOKEN)
        header = request.headers.get('Authorization', '')
        token = header[len('Bearer '):].strip() if header.startswith('Bearer ') else ''
        self.client = events.client_for_token(db(), token)

    def post(self) -> ResponseReturnValue:
        if self.client is None:
            return error_response('unauthorized', MSG_MACHINE_TOKEN, 401)
        body = load_body(schemas.EventRequestSchema)
        try:
            outcome = events.receive_event(db(), self.client, body['kind'], self._key(body), body['payload'])
        except ValidationFailed as exc:
            raise ValidationFailed(exc.message, _payload_fields(exc.fields)) from None
        # 201 when something new was started (an alarm check, a case); 200 for an event joined to an open case,
        # one recorded as unmatched or rejected, and every repeat (with Idempotent-Replayed).
        headers = {'Idempotent-Replayed': 'true'} if outcome.replayed else {}
        return respond(schemas.InboundEventSchema, outcome.event, 201 if outcome.created else 200, headers)

    def _key(self, body: dict[str, Any]) -> str:
        header, field = request.headers.get(IDEMPOTENCY_HEADER), body.get('key')
        if header is not None and field is not None and header != field:
            raise ValidationFailed(MSG_INVALID_BODY, {'key': [MSG_KEY_MISMATCH]})
        key = header if header is not None else field
        if key is None:
            raise ValidationFailed(MSG_INVALID_BODY, {'key': [MSG_KEY_REQUIRED]})
        return key


def _payload_fields(problems: dict[str, list[str]]) -> dict[str, list[str]]:
    """The engine's field names as paths in the request body (``payload.id_number``)."""
    return {name if name in ('kind', 'key', 'payload', IDEMPOTENCY_HEADER) else f'payload.{name}': messages
            for name, messages in problems.items()}


# -- the case file ------------------------------------------------------------------------------------

class GetCaseFile(CaseView):
    """The whole case file (卷宗) in the standard order as one printable HTML document (a download named
    ``卷宗-<number>.html``). It holds every sensitive value in full, so it is for those who may reveal them (403
    for anyone else who sees the case); every call is audited as ``case.file_exported``."""

    summary = '导出案件卷宗（按规定顺序汇编的可打印 HTML 文件，含完整个人信息；每次导出记入审计日志）'
    result_media_types = ('text/html',)
    error_statuses = (403, 404)
    error_descriptions = {403: '卷宗载有完整的个人信息，只有案件所属机构及其上级的办案人员可以导出'}

    def check_access(self) -> None:
        check_may_export(self.case)

    def get(self, case_id: int) -> ResponseReturnValue:
        return export_case_file(self.case, current_actor(), channel='api')
