"""The REST API's whole URL table (``/api/v1``)."""

from __future__ import annotations

from flask import Blueprint

from web.api import controllers as c

bp = Blueprint('api', __name__, url_prefix='/api/v1')

bp.add_url_rule('/auth/token', view_func=c.CreateToken.as_view('create_token'), methods=['POST'])
bp.add_url_rule('/definitions', view_func=c.ListDefinitions.as_view('list_definitions'), methods=['GET'])
bp.add_url_rule('/definitions', view_func=c.DeployDefinition.as_view('deploy_definition'), methods=['POST'])
bp.add_url_rule('/definitions/validate', view_func=c.ValidateDefinition.as_view('validate_definition'),
                methods=['POST'])
bp.add_url_rule('/cases', view_func=c.ListCases.as_view('list_cases'), methods=['GET'])
bp.add_url_rule('/cases', view_func=c.StartCase.as_view('start_case'), methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>', view_func=c.GetCase.as_view('get_case'), methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/history', view_func=c.ListCaseHistory.as_view('list_case_history'),
                methods=['GET'])
bp.add_url_rule('/tasks', view_func=c.ListTasks.as_view('list_tasks'), methods=['GET'])
bp.add_url_rule('/tasks/counts', view_func=c.CountTasks.as_view('count_tasks'), methods=['GET'])
bp.add_url_rule('/tasks/bulk/claim', view_func=c.BulkClaimTasks.as_view('bulk_claim_tasks'), methods=['POST'])
bp.add_url_rule('/tasks/bulk/assign', view_func=c.BulkAssignTasks.as_view('bulk_assign_tasks'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>', view_func=c.GetTask.as_view('get_task'), methods=['GET'])
bp.add_url_rule('/tasks/<int:task_id>/claim', view_func=c.ClaimTask.as_view('claim_task'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/unclaim', view_func=c.UnclaimTask.as_view('unclaim_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/assign', view_func=c.AssignTask.as_view('assign_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/complete', view_func=c.CompleteTask.as_view('complete_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/delegate', view_func=c.DelegateTask.as_view('delegate_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/resolve', view_func=c.ResolveTask.as_view('resolve_task'),
                methods=['POST'])
bp.add_url_rule('/filters', view_func=c.ListFilters.as_view('list_filters'), methods=['GET'])
bp.add_url_rule('/filters', view_func=c.SaveFilter.as_view('save_filter'), methods=['POST'])
bp.add_url_rule('/filters/<int:filter_id>', view_func=c.DeleteFilter.as_view('delete_filter'),
                methods=['DELETE'])
bp.add_url_rule('/openapi.json', view_func=c.GetOpenApi.as_view('get_openapi'), methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/comments', view_func=c.ListComments.as_view('list_comments'), methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/comments', view_func=c.AddComment.as_view('add_comment'), methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>/attachments', view_func=c.ListAttachments.as_view('list_attachments'),
                methods=['GET'])
bp.add_url_rule('/cases/<int:case_id>/attachments', view_func=c.AddAttachment.as_view('add_attachment'),
                methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>/attachments/<int:attachment_id>/content',
                view_func=c.GetAttachmentContent.as_view('get_attachment_content'), methods=['GET'])
bp.add_url_rule('/events', view_func=c.ReceiveEvent.as_view('receive_event'), methods=['POST'])
bp.add_url_rule('/cases/<int:case_id>/casefile', view_func=c.GetCaseFile.as_view('get_casefile'), methods=['GET'])
