"""REST API handlers: each loads its records, checks access and acts; :class:`ApiView` speaks JSON.

Every handler runs through ``BaseView`` (load → check access → verb, one commit). The class
attributes ``summary``, ``body_schema``, ``query_schema``, ``result_schema``, ``success_status`` and
``error_statuses`` describe the endpoint for ``web.api.openapi``, so the document cannot drift from the
handlers it describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar

import sqlalchemy as sa
from flask import jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from marshmallow import Schema, ValidationError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.exceptions import BadRequest

from engine import runtime, tasks
from engine.access import DESIGNER, visible_cases
from engine.definitions import deploy, process_bundle
from engine.directory import LoginFailed, authenticate, issue_token
from engine.errors import AccessDenied, DeploymentRejected, EngineError, NotFound, ValidationFailed
from engine.forms import FieldSpec, FormSpec
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from web.api import schemas
from web.api.openapi import openapi_document
from web.core.auth import current_actor, current_scope, is_token_request
from web.core.database import db
from web.core.views import BaseView, status_for

SAFE_METHODS = frozenset({'GET', 'HEAD', 'OPTIONS'})
MSG_INVALID_BODY = '请求数据有误，请检查标出的字段。'
MSG_LOGIN_FAILED = '用户名或密码错误，或账户已被暂时锁定。'
MSG_UNAUTHENTICATED = '请先登录或提供有效的访问令牌。'
#: a cursor longer than this cannot be an id we issued (and would overflow a bigint)
MAX_CURSOR_DIGITS = 18


# -- responses ----------------------------------------------------------------------------------------

def respond(schema: Schema, obj: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> ResponseReturnValue:
    """Dump ``obj`` through ``schema`` as a JSON response."""
    return jsonify(schema.dump(obj)), status, headers or {}


def error_response(code: str, message: str, status: int, *, fields: dict[str, list[str]] | None = None,
                   problems: list[dict[str, Any]] | None = None) -> ResponseReturnValue:
    """The one error shape: ``{"error", "message", "fields"}`` (+ ``problems`` for deployments)."""
    payload: dict[str, Any] = {'error': code, 'message': message, 'fields': fields or {}}
    if problems is not None:
        payload['problems'] = problems
    return respond(schemas.ErrorSchema(), payload, status)


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

def load_with(schema: Schema, data: Any) -> dict[str, Any]:
    """Validate ``data`` through ``schema``; every problem becomes one ValidationFailed (400)."""
    try:
        result: dict[str, Any] = schema.load(data)
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
        return request.get_json()
    except BadRequest:
        raise ValidationFailed(MSG_INVALID_BODY, {'_schema': ['请求体不是有效的 JSON。']}) from None


def load_body(schema: Schema) -> dict[str, Any]:
    """Parse and validate the JSON body."""
    return load_with(schema, json_body())


def load_args(schema: Schema) -> dict[str, Any]:
    """Parse and validate the query string."""
    return load_with(schema, request.args)


# -- paging -------------------------------------------------------------------------------------------

def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= MAX_CURSOR_DIGITS):
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
    """Load the cases of ``rows`` in one query, so dumping ``case_number`` costs no query per task."""
    ids = {row.case_id for row in rows}
    cases = {case.id: case for case in db().scalars(sa.select(Case).where(Case.id.in_(ids)))} if ids else {}
    for row in rows:
        set_committed_value(row, 'case', cases[row.case_id])
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
    #: session-authenticated writes must carry the CSRF token; bearer-token calls need none
    check_csrf: ClassVar[bool] = True

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
        """Render an engine error; validation errors carry ``fields``, rejected deployments ``problems``."""
        return error_response(exc.code, exc.message, status_for(exc),
                              fields=exc.fields if isinstance(exc, ValidationFailed) else None,
                              problems=exc.problems if isinstance(exc, DeploymentRejected) else None)


# -- auth ---------------------------------------------------------------------------------------------

class CreateToken(ApiView):
    """Exchange a username and password for a bearer token."""

    summary = '以用户名和密码换取访问令牌'
    body_schema = schemas.TokenRequestSchema
    result_schema = schemas.TokenSchema
    error_statuses = (400, 401)
    login_required = False
    # The credentials in the body authenticate this call, not the session cookie.
    check_csrf = False

    def post(self) -> ResponseReturnValue:
        body = load_body(schemas.TokenRequestSchema())
        try:
            user = authenticate(db(), body['username'], body['password'])
        except LoginFailed:
            # Returned rather than raised: the base view then commits, keeping the failure count.
            return error_response('login_failed', MSG_LOGIN_FAILED, 401)
        # A credential: no cache or proxy may keep it (RFC 6749 §5.1).
        return respond(schemas.TokenSchema(), {'token': issue_token(db(), user)},
                       headers={'Cache-Control': 'no-store', 'Pragma': 'no-cache'})


# -- definitions ----------------------------------------------------------------------------------------

class ListDefinitions(ApiView):
    """Deployed definitions, newest first."""

    summary = '已部署的流程与决策定义（按编号倒序，键集分页）'
    query_schema = schemas.PageArgsSchema
    result_schema = schemas.DefinitionPageSchema

    def get(self) -> ResponseReturnValue:
        args = load_args(schemas.PageArgsSchema())
        query = sa.select(ProcessDefinition).options(selectinload(ProcessDefinition.deployed_by))
        return respond(schemas.DefinitionPageSchema(),
                       id_page(query, ProcessDefinition.id, args, descending=True))


class DeployDefinition(ApiView):
    """Deploy a BPMN or DMN source (designers only)."""

    summary = '部署 BPMN/DMN（JSON 的 source 或 multipart 的 file）；源文件未变化时不创建新版本'
    body_schema = schemas.DeployRequestSchema
    upload_schema = schemas.DeployUploadSchema
    result_schema = schemas.DeployedSchema
    success_status = 201
    # An unchanged source creates nothing: 200 with created false.
    other_success_statuses = (200,)
    error_statuses = (400, 403)

    def check_access(self) -> None:
        if not current_scope().has_role(DESIGNER):
            raise AccessDenied('只有流程设计人员可以部署流程。')

    def post(self) -> ResponseReturnValue:
        source, filename = self._source()
        definition, created = deploy(db(), source, actor=current_actor(), filename=filename)
        payload = {'id': definition.id, 'key': definition.key, 'version': definition.version,
                   'created': created}
        return respond(schemas.DeployedSchema(), payload, 201 if created else 200)

    def _source(self) -> tuple[bytes | str, str]:
        upload = request.files.get('file')
        if upload is not None:
            return upload.read(), upload.filename or 'upload'
        if request.mimetype == 'multipart/form-data':
            raise ValidationFailed(MSG_INVALID_BODY, {'file': ['请选择要上传的文件。']})
        return load_body(schemas.DeployRequestSchema())['source'], 'upload'


# -- cases --------------------------------------------------------------------------------------------

class ListCases(ApiView):
    """Cases the caller may see, newest first."""

    summary = '可见的案件（按编号倒序，键集分页；可按流程、状态、编号/姓名开头或身份证号筛选）'
    query_schema = schemas.CaseArgsSchema
    result_schema = schemas.CasePageSchema

    def get(self) -> ResponseReturnValue:
        args = load_args(schemas.CaseArgsSchema())
        query = visible_cases(current_scope()).options(selectinload(Case.org_unit))
        return respond(schemas.CasePageSchema(), id_page(self._filter(query, args), Case.id, args,
                                                         descending=True))

    def _filter(self, query: sa.Select[tuple[Case]], args: dict[str, Any]) -> sa.Select[tuple[Case]]:
        if args['kind']:
            query = query.where(Case.kind == args['kind'])
        if args['status']:
            query = query.where(Case.status == args['status'])
        q = (args['q'] or '').strip()
        if q:  # a blank search box filters nothing
            query = query.where(sa.or_(Case.number.startswith(q, autoescape=True),
                                       Case.person_name.startswith(q, autoescape=True),
                                       Case.id_number == q.upper()))
        return query


class StartCase(ApiView):
    """Open a case and run its lifecycle to the first tasks."""

    summary = '以流程编码和开始数据新建案件，返回案件编号、一案一码和首批待办'
    body_schema = schemas.StartCaseRequestSchema
    result_schema = schemas.StartedCaseSchema
    success_status = 201
    error_statuses = (400, 403, 404, 422)

    def check_access(self) -> None:
        if not current_scope().case_paths:
            raise AccessDenied('您没有办理案件的权限。')

    def post(self) -> ResponseReturnValue:
        body = load_body(schemas.StartCaseRequestSchema())
        unit = self._org_unit(body['org_unit'])
        case, open_tasks = runtime.start_case(db(), body['process_key'], body['data'], actor=current_actor(),
                                              org_unit=unit, scope=current_scope())
        return respond(schemas.StartedCaseSchema(), Extended(case, tasks=open_tasks), 201)

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
        case_id: int = kwargs['case_id']
        case = db().scalars(visible_cases(current_scope()).where(Case.id == case_id)).one_or_none()
        if case is None:
            raise NotFound('案件不存在')
        self.case = case


class GetCase(CaseView):
    """One case in full, with its instances and open tasks."""

    summary = '案件详情（含完整身份证号、流程实例和未办结任务）'
    result_schema = schemas.CaseDetailSchema

    def get(self, case_id: int) -> ResponseReturnValue:
        open_tasks = db().scalars(sa.select(HumanTask).where(HumanTask.case_id == self.case.id,
                                                             HumanTask.status == 'open')
                                  .order_by(HumanTask.id)).all()
        return respond(schemas.CaseDetailSchema(), Extended(self.case, tasks=with_cases(open_tasks)))


class ListCaseHistory(CaseView):
    """The audit events of one case, oldest first."""

    summary = '案件的审计记录（按时间先后，键集分页）'
    query_schema = schemas.PageArgsSchema
    result_schema = schemas.EventPageSchema
    error_statuses = (400, 404)

    def get(self, case_id: int) -> ResponseReturnValue:
        args = load_args(schemas.PageArgsSchema())
        query = sa.select(AuditEvent).where(AuditEvent.case_id == self.case.id)
        return respond(schemas.EventPageSchema(), id_page(query, AuditEvent.id, args, descending=False))


# -- tasks --------------------------------------------------------------------------------------------

class ListTasks(ApiView):
    """One to-do view, ordered by due date."""

    summary = '待办列表：mine 我的、group 组内待认领、overdue 已超期、due_soon 即将到期、all 全部可见'
    query_schema = schemas.TaskArgsSchema
    result_schema = schemas.TaskPageSchema

    def get(self) -> ResponseReturnValue:
        args = load_args(schemas.TaskArgsSchema())
        page = tasks.list_tasks(db(), current_scope(), args['view'], cursor=args['cursor'],
                                limit=args['limit'])
        return respond(schemas.TaskPageSchema(), {'items': with_cases(page.items), 'next': page.next_cursor})


class TaskView(ApiView):
    """Base of the handlers of one task: loads it, 404 unless the caller may see it."""

    error_statuses: ClassVar[tuple[int, ...]] = (404,)
    task: HumanTask

    def load(self, **kwargs: Any) -> None:
        self.task = runtime.get_task(db(), kwargs['task_id'], current_scope())


class GetTask(TaskView):
    """A task with its form fields and the values the form starts with."""

    summary = '任务详情：表单字段与当前数据'
    result_schema = schemas.TaskDetailSchema

    def get(self, task_id: int) -> ResponseReturnValue:
        form = self._form()
        data = runtime.task_data(db(), self.task)
        current = {spec.id: data.get(spec.id) for spec in form.fields}
        return respond(schemas.TaskDetailSchema(), Extended(self.task, form=form_payload(form), data=current))

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
        load_body(schemas.EmptyRequestSchema())
        task = tasks.claim_task(db(), self.task.id, actor=current_actor(), scope=current_scope())
        return respond(schemas.TaskSchema(), task)


class UnclaimTask(TaskView):
    """Give a task back to its group."""

    summary = '退回任务（认领人或主管）'
    body_schema = schemas.EmptyRequestSchema
    result_schema = schemas.TaskSchema
    error_statuses = (400, 403, 404, 409)

    def post(self, task_id: int) -> ResponseReturnValue:
        load_body(schemas.EmptyRequestSchema())
        task = tasks.unclaim_task(db(), self.task.id, actor=current_actor(), scope=current_scope())
        return respond(schemas.TaskSchema(), task)


class AssignTask(TaskView):
    """Hand a task to a candidate (supervisors only)."""

    summary = '指派任务（主管）'
    body_schema = schemas.AssignRequestSchema
    result_schema = schemas.TaskSchema
    error_statuses = (400, 403, 404, 409)

    def post(self, task_id: int) -> ResponseReturnValue:
        body = load_body(schemas.AssignRequestSchema())
        task = tasks.assign_task(db(), self.task.id, body['assignee'], actor=current_actor(),
                                 scope=current_scope())
        return respond(schemas.TaskSchema(), task)


class CompleteTask(TaskView):
    """Submit a task's form and run the case on."""

    summary = '办理任务：按任务表单校验 data，推进流程，返回后续待办'
    body_schema = schemas.CompleteRequestSchema
    result_schema = schemas.CompletedTaskSchema
    error_statuses = (400, 403, 404, 409, 422)

    def post(self, task_id: int) -> ResponseReturnValue:
        body = load_body(schemas.CompleteRequestSchema())
        # A WorkflowFault rolls everything back; the base view then notes it on this instance.
        self.fault_instance_id = self.task.instance_id
        task, next_tasks = runtime.complete_task(db(), self.task.id, body['data'], actor=current_actor(),
                                                 scope=current_scope())
        return respond(schemas.CompletedTaskSchema(), Extended(task, next_tasks=with_cases(next_tasks)))


# -- the document -------------------------------------------------------------------------------------

class GetOpenApi(ApiView):
    """The OpenAPI 3 document of this API."""

    summary = 'OpenAPI 3 文档'
    error_statuses = ()
    login_required = False

    def get(self) -> ResponseReturnValue:
        return jsonify(openapi_document())
