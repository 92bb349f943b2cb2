"""The OpenAPI 3 document, generated from the registered routes and the schemas their views declare.

Each API view class names its ``summary``, ``body_schema``, ``upload_schema``, ``query_schema``,
``result_schema``, ``result_media_types``, ``success_status``, ``error_statuses``, ``examples`` and
``login_required`` (see ``web.api.controllers.ApiView``); this module walks ``app.url_map`` and turns every
``api.*`` rule into an operation, so a route cannot be added without appearing here.

Examples come from the schemas: every field's ``example`` metadata, composed into whole bodies (nested
schemas and lists of them included). A view's ``examples`` attribute overrides the composed body for
``'request'`` or a status code, for bodies no schema describes.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app
from marshmallow import Schema, fields
from werkzeug.routing import Rule

from web.api.schemas import MAX_RECORD_ID, ErrorSchema

if TYPE_CHECKING:
    from web.api.controllers import ApiView

OPENAPI_VERSION = '3.0.3'
API_VERSION = '1.0'
JSON = 'application/json'
_EXTENSION_KEY = 'fengqiao_openapi'
_PARAM = re.compile(r'<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>')
_UNSAFE_METHODS = frozenset({'POST', 'PUT', 'PATCH', 'DELETE'})
_DESCRIPTIONS = {
    200: '成功', 201: '已创建', 400: '请求有误（fields 列出每个字段的问题）', 401: '未登录或令牌无效',
    403: '无权执行此操作', 404: '记录不存在或不在您的机构范围内', 409: '记录已被他人更新或任务已办理',
    422: '流程执行出错，已回滚并记录', 429: '尝试过于频繁，请按 Retry-After 头所示的秒数后再试',
    500: '服务器内部错误，已记录',
}
_CSRF_NOTE = '；以浏览器会话调用写操作而未带 CSRF 令牌时也返回 400（error 为 csrf）'
#: one example error body per status, in the shape every error takes
_ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {'error': 'invalid', 'message': '请求数据有误，请检查标出的字段。',
          'fields': {'process_key': ['此项为必填项。'], 'data.applied_on': ['请按“年-月-日”填写日期（YYYY-MM-DD）。']}},
    401: {'error': 'unauthorized', 'message': '请先登录或提供有效的访问令牌。', 'fields': {}},
    403: {'error': 'forbidden', 'message': '您没有办理案件的权限。', 'fields': {}},
    404: {'error': 'not_found', 'message': '案件不存在', 'fields': {}},
    409: {'error': 'conflict', 'message': '任务已被他人办理，请刷新后重试。', 'fields': {}},
    422: {'error': 'workflow_fault', 'message': '流程执行出错，案件保持原状，已通知主管。', 'fields': {}},
    429: {'error': 'too_many_requests', 'message': '尝试次数过多，请 30 秒后再试。', 'fields': {}},
    500: {'error': 'internal', 'message': '系统内部错误，已记录。请稍后重试或联系管理员。', 'fields': {}},
}
_TAGS = {'auth': '认证', 'definitions': '流程定义', 'cases': '案件', 'tasks': '任务', 'filters': '常用筛选',
         'events': '外部事件', 'openapi.json': '文档'}
#: a path id is a non-negative INTEGER, as ``web.app.RecordIdConverter`` matches it
_RECORD_ID_PARAMETER = {'type': 'integer', 'minimum': 0, 'maximum': MAX_RECORD_ID}
#: the body of a response that is a file rather than JSON
_BINARY = {'type': 'string', 'format': 'binary'}


def openapi_document() -> dict[str, Any]:
    """The current app's document, built once per app."""
    if _EXTENSION_KEY not in current_app.extensions:
        current_app.extensions[_EXTENSION_KEY] = build_spec(current_app)
    document: dict[str, Any] = current_app.extensions[_EXTENSION_KEY]
    return document


def build_spec(app: Flask) -> dict[str, Any]:
    """Build the document from every rule of the ``api`` blueprint in ``app``."""
    spec = APISpec(title='枫桥 Fengqiao API', version=API_VERSION, openapi_version=OPENAPI_VERSION,
                   plugins=[MarshmallowPlugin()],
                   info={'description': '司法局案件办理系统的 REST 接口。错误一律为 '
                                        '{"error", "message", "fields"} 形式的 JSON。使用说明见 docs/api.md。'},
                   servers=[{'url': '/'}],
                   security=[{'bearer': []}, {'session': []}])
    spec.components.security_scheme('bearer', {'type': 'http', 'scheme': 'bearer',
                                               'description': 'POST /api/v1/auth/token 取得的令牌'})
    spec.components.security_scheme('session', {
        'type': 'apiKey', 'in': 'cookie', 'name': app.config.get('SESSION_COOKIE_NAME', 'session'),
        'description': '浏览器登录会话；写操作须在 X-CSRFToken 头中带上 CSRF 令牌'})
    spec.components.security_scheme('machine', {
        'type': 'http', 'scheme': 'bearer',
        'description': '接入方（定位平台、五源移交渠道）的令牌，由系统管理员签发，只能用于 POST /api/v1/events'})
    spec.components.schema('Error', schema=ErrorSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint.startswith('api.'):
            view_class = getattr(app.view_functions[rule.endpoint], 'view_class')  # noqa: B009 (untyped)
            spec.path(path=openapi_path(rule.rule), operations=_operations(rule, view_class))
    return spec.to_dict()


def openapi_path(flask_path: str) -> str:
    """``/cases/<int:case_id>`` → ``/cases/{case_id}``."""
    return _PARAM.sub(lambda m: '{' + m.group('name') + '}', flask_path)


def schema_example(schema: Schema | type[Schema]) -> dict[str, Any]:
    """An example body of ``schema``: every field with an ``example`` (nested schemas composed the same way).

    :param schema: a schema class or instance; only the fields it exposes (``Meta.fields``) count
    :return: the example, ``{}`` when no field has one
    """
    instance = schema() if isinstance(schema, type) else schema
    example: dict[str, Any] = {}
    for name, field in instance.fields.items():
        value = field_example(field)
        if value is not _NONE:
            example[field.data_key or name] = value
    return example


#: "this field has no example" (``None`` is an example: JSON null)
_NONE: Any = object()


def field_example(field: fields.Field) -> Any:
    """The example value of ``field``, or ``_NONE``: its ``example`` metadata, else one composed from a nested
    schema (a list of them gives a one-item list)."""
    if 'example' in field.metadata:
        return field.metadata['example']
    if isinstance(field, fields.Nested):
        nested = schema_example(field.schema)
        if not nested:
            return _NONE
        return [nested] if field.many else nested
    if isinstance(field, fields.List):
        item = field_example(field.inner)
        return _NONE if item is _NONE else [item]
    return _NONE


def _operations(rule: Rule, view: type[ApiView]) -> dict[str, Any]:
    methods = sorted((rule.methods or set()) - {'HEAD', 'OPTIONS'})
    return {method.lower(): _operation(rule, method, view) for method in methods}


def _operation(rule: Rule, method: str, view: type[ApiView]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        'operationId': rule.endpoint.split('.', 1)[1],
        'summary': view.summary,
        'description': (view.__doc__ or '').strip(),
        'tags': [_tag(rule.rule)],
        'parameters': _parameters(rule.rule, view),
        'responses': _responses(view, csrf=_session_write(method, view)),
    }
    body = _request_body(view)
    if body:
        operation['requestBody'] = body
    if view.security is not None:
        operation['security'] = view.security
    elif not view.login_required:
        operation['security'] = []
    return operation


def _session_write(method: str, view: type[ApiView]) -> bool:
    """Whether a browser session calling this must send the CSRF token (a 400 when it does not)."""
    return method in _UNSAFE_METHODS and view.check_csrf and view.login_required


def _tag(path: str) -> str:
    first = path.removeprefix('/api/v1/').split('/', 1)[0]
    return _TAGS.get(first, first)


def _parameters(path: str, view: type[ApiView]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [_path_parameter(m) for m in _PARAM.finditer(path)]
    if view.query_schema is not None:
        parameters.append({'in': 'query', 'schema': view.query_schema})
    if view.idempotent:
        parameters.append({
            'name': 'Idempotency-Key', 'in': 'header', 'required': False,
            'schema': {'type': 'string', 'minLength': 1, 'maxLength': 128, 'pattern': '^[!-~]+$'},
            'description': view.idempotent,
            'example': '4f9c2d1e-8b7a-4c3e-9f10-2a6b5c7d8e9f'})
    return parameters


def _path_parameter(match: re.Match[str]) -> dict[str, Any]:
    if match.group('converter') == 'int':
        return {'name': match.group('name'), 'in': 'path', 'required': True, 'schema': dict(_RECORD_ID_PARAMETER),
                'example': 1}
    return {'name': match.group('name'), 'in': 'path', 'required': True, 'schema': {'type': 'string'}}


def _request_body(view: type[ApiView]) -> dict[str, Any] | None:
    content: dict[str, Any] = {}
    if view.body_schema is not None:
        content[JSON] = _media(view.body_schema, view.examples.get('request'))
    if view.upload_schema is not None:
        content['multipart/form-data'] = _media(view.upload_schema, None)
    if not content:
        return None
    schema = view.body_schema or view.upload_schema
    required = schema is not None and any(field.required for field in schema().fields.values())
    return {'required': required, 'content': content}


def _media(schema: type[Schema] | dict[str, Any], example: Any) -> dict[str, Any]:
    """A media type object: the schema and its example (given, else composed from the schema's fields; ``{}``
    only for a schema without fields, such as the empty body of a claim)."""
    if example is None and not isinstance(schema, dict):
        composed = schema_example(schema)
        example = composed if composed or not schema().fields else None
    media: dict[str, Any] = {'schema': schema}
    if example is not None:
        media['example'] = example
    return media


def _responses(view: type[ApiView], *, csrf: bool) -> dict[str, Any]:
    responses = {str(status): _success(view, status)
                 for status in (view.success_status, *view.other_success_statuses)}
    errors = set(view.error_statuses) | ({401} if view.login_required else set()) | ({400} if csrf else set())
    for code in sorted(errors):
        description = view.error_descriptions.get(code, _description(code))
        if code == 400 and csrf:
            description += _CSRF_NOTE
        responses[str(code)] = {'description': description,
                                'content': {JSON: {'schema': ErrorSchema, 'example': _error_example(code)}}}
    return responses


def _description(status: int) -> str:
    return _DESCRIPTIONS.get(status) or HTTPStatus(status).phrase


def _error_example(status: int) -> dict[str, Any]:
    """The example error body of ``status``; for a status without its own, the app's generic HTTP error body."""
    if status in _ERROR_EXAMPLES:
        return _ERROR_EXAMPLES[status]
    phrase = HTTPStatus(status).phrase
    return {'error': phrase.lower().replace(' ', '_'), 'message': _description(status), 'fields': {}}


def _success(view: type[ApiView], status: int) -> dict[str, Any]:
    example = view.examples.get(str(status), view.examples.get(str(view.success_status)))
    content: dict[str, Any] = {}
    for media_type in view.result_media_types:
        if media_type != JSON:
            content[media_type] = {'schema': dict(_BINARY)}
        elif view.result_schema is not None:
            content[media_type] = _media(view.result_schema, example)
        else:
            content[media_type] = _media({'type': 'object'}, example)
    return {'description': _description(status), 'content': content}
