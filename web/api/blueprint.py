"""The REST API's whole URL table (``/api/v1``)."""

from __future__ import annotations

from flask import Blueprint

from web.api import controllers as c

bp = Blueprint('api', __name__, url_prefix='/api/v1')

bp.add_url_rule('/auth/token', view_func=c.CreateToken.as_view('create_token'), methods=['POST'])
bp.add_url_rule('/definitions', view_func=c.ListDefinitions.as_view('list_definitions'), methods=['GET'])
bp.add_url_rule('/definitions', view_func=c.DeployDefinition.as_view('deploy_definition'), methods=['POST'])
bp.add_url_rule('/cases', view_func=c.ListCases.as_view('list_cases'), methods=['GET'])
bp.add_url_rule('/cases', view_func=c.StartCase.as_view('start_case'), methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>', view_func=c.GetCase.as_view('get_case'), methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/history', view_func=c.ListCaseHistory.as_view('list_case_history'),
                methods=['GET'])
bp.add_url_rule('/tasks', view_func=c.ListTasks.as_view('list_tasks'), methods=['GET'])
bp.add_url_rule('/tasks/<int:task_id>', view_func=c.GetTask.as_view('get_task'), methods=['GET'])
bp.add_url_rule('/tasks/<int:task_id>/claim', view_func=c.ClaimTask.as_view('claim_task'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/unclaim', view_func=c.UnclaimTask.as_view('unclaim_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/assign', view_func=c.AssignTask.as_view('assign_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/complete', view_func=c.CompleteTask.as_view('complete_task'),
                methods=['POST'])
bp.add_url_rule('/openapi.json', view_func=c.GetOpenApi.as_view('get_openapi'), methods=['GET'])
