"""The OpenAPI 3 document, generated from the registered routes and the schemas their views declare.

Each API view class names its ``summary``, ``body_schema``, ``upload_schema``, ``query_schema``,
``result_schema``, ``success_status``, ``error_statuses`` and ``login_required`` (see
``web.api.controllers.ApiView``); this module walks ``app.url_map`` and turns every ``api.*`` rule into
an operation, so a route cannot be added without appearing here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app
from werkzeug.routing import Rule

from web.api.schemas import ErrorSchema

if TYPE_CHECKING:
    from web.api.controllers import ApiView

OPENAPI_VERSION = '3.0.3'
API_VERSION = '1.0'
_EXTENSION_KEY = 'fengqiao_openapi'
_PARAM = re.compile(r'<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>')
_DESCRIPTIONS = {
    200: '成功', 201: '已创建', 400: '请求有误（fields 列出每个字段的问题）', 401: '未登录或令牌无效',
    403: '无权执行此操作', 404: '记录不存在或不在您的机构范围内', 409: '记录已被他人更新或任务已办理',
    422: '流程执行出错，已回滚并记录',
}
_TAGS = {'auth': '认证', 'definitions': '流程定义', 'cases': '案件', 'tasks': '任务', 'filters': '常用筛选',
         'openapi.json': '文档'}


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
                                        '{"error", "message", "fields"} 形式的 JSON。'},
                   servers=[{'url': '/'}],
                   security=[{'bearer': []}, {'session': []}])
    spec.components.security_scheme('bearer', {'type': 'http', 'scheme': 'bearer',
                                               'description': 'POST /api/v1/auth/token 取得的令牌'})
    spec.components.security_scheme('session', {
        'type': 'apiKey', 'in': 'cookie', 'name': app.config.get('SESSION_COOKIE_NAME', 'session'),
        'description': '浏览器登录会话；写操作须在 X-CSRFToken 头中带上 CSRF 令牌'})
    spec.components.schema('Error', schema=ErrorSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint.startswith('api.'):
            view_class = getattr(app.view_functions[rule.endpoint], 'view_class')  # noqa: B009 (untyped)
            spec.path(path=openapi_path(rule.rule), operations=_operations(rule, view_class))
    return spec.to_dict()


def openapi_path(flask_path: str) -> str:
    """``/cases/<int:case_id>`` → ``/cases/{case_id}``."""
    return _PARAM.sub(lambda m: '{' + m.group('name') + '}', flask_path)


def _operations(rule: Rule, view: type[ApiView]) -> dict[str, Any]:
    methods = sorted((rule.methods or set()) - {'HEAD', 'OPTIONS'})
    return {method.lower(): _operation(rule, view) for method in methods}


def _operation(rule: Rule, view: type[ApiView]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        'operationId': rule.endpoint.split('.', 1)[1],
        'summary': view.summary,
        'description': (view.__doc__ or '').strip(),
        'tags': [_tag(rule.rule)],
        'parameters': _parameters(rule.rule, view),
        'responses': _responses(view),
    }
    body = _request_body(view)
    if body:
        operation['requestBody'] = body
    if not view.login_required:
        operation['security'] = []
    return operation


def _tag(path: str) -> str:
    first = path.removeprefix('/api/v1/').split('/', 1)[0]
    return _TAGS.get(first, first)


def _parameters(path: str, view: type[ApiView]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {'name': m.group('name'), 'in': 'path', 'required': True,
         'schema': {'type': 'integer'} if m.group('converter') == 'int' else {'type': 'string'}}
        for m in _PARAM.finditer(path)]
    if view.query_schema is not None:
        parameters.append({'in': 'query', 'schema': view.query_schema})
    if view.idempotent:
        parameters.append({
            'name': 'Idempotency-Key', 'in': 'header', 'required': False,
            'schema': {'type': 'string', 'minLength': 1, 'maxLength': 128, 'pattern': '^[!-~]+$'},
            'description': '客户端为本次请求取的唯一键（如 UUID）。超时后以同一键重试，只会立案一次，并返回第一次的结果'
                           '（响应头 Idempotent-Replayed: true）；同一键用于内容不同的请求返回 409。键保留 7 天。',
            'example': '4f9c2d1e-8b7a-4c3e-9f10-2a6b5c7d8e9f'})
    return parameters


def _request_body(view: type[ApiView]) -> dict[str, Any] | None:
    content: dict[str, Any] = {}
    if view.body_schema is not None:
        content['application/json'] = {'schema': view.body_schema}
    if view.upload_schema is not None:
        content['multipart/form-data'] = {'schema': view.upload_schema}
    if not content:
        return None
    schema = view.body_schema or view.upload_schema
    required = schema is not None and any(field.required for field in schema().fields.values())
    return {'required': required, 'content': content}


def _responses(view: type[ApiView]) -> dict[str, Any]:
    status = view.success_status
    success: dict[str, Any] = {'description': _DESCRIPTIONS[status]}
    if view.result_schema is not None:
        success['content'] = {'application/json': {'schema': view.result_schema}}
    else:
        success['content'] = {'application/json': {'schema': {'type': 'object'}}}
    responses = {str(status): success}
    for other in view.other_success_statuses:
        responses[str(other)] = {**success, 'description': _DESCRIPTIONS[other]}
    errors = set(view.error_statuses) | ({401} if view.login_required else set())
    for code in sorted(errors):
        responses[str(code)] = {'description': view.error_descriptions.get(code, _DESCRIPTIONS[code]),
                                'content': {'application/json': {'schema': ErrorSchema}}}
    return responses
