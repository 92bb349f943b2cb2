"""URLs of the supervision area."""

from __future__ import annotations

from flask import Blueprint

from web.supervision.controllers import (
    AuditLogView,
    CancelInstanceView,
    CancelJobView,
    ExportAuditView,
    IncidentsView,
    RetryInstanceView,
    RetryJobView,
    SearchInstancesView,
    ShowVerifyView,
    VerifyAuditView,
)
from web.supervision.events import EventsView, unmatched_event_count

bp = Blueprint('supervision', __name__, template_folder='templates', url_prefix='/supervision')

bp.add_url_rule('/instances', 'search_instances', view_func=SearchInstancesView.as_view('search_instances'),
                methods=['GET', 'POST'])
bp.add_url_rule('/audit', 'list_audit', view_func=AuditLogView.as_view('list_audit'), methods=['GET'])
bp.add_url_rule('/audit/export', 'export_audit', view_func=ExportAuditView.as_view('export_audit'), methods=['POST'])
bp.add_url_rule('/audit/verify', 'show_verify', view_func=ShowVerifyView.as_view('show_verify'), methods=['GET'])
bp.add_url_rule('/audit/verify', 'verify_audit', view_func=VerifyAuditView.as_view('verify_audit'), methods=['POST'])
bp.add_url_rule('/incidents', 'list_incidents', view_func=IncidentsView.as_view('list_incidents'), methods=['GET'])
bp.add_url_rule('/incidents/instances/<int:instance_id>/retry', 'retry_instance',
                view_func=RetryInstanceView.as_view('retry_instance'), methods=['POST'])
bp.add_url_rule('/incidents/instances/<int:instance_id>/cancel', 'cancel_instance',
                view_func=CancelInstanceView.as_view('cancel_instance'), methods=['POST'])
bp.add_url_rule('/jobs/<int:job_id>/retry', 'retry_job', view_func=RetryJobView.as_view('retry_job'),
                methods=['POST'])
bp.add_url_rule('/jobs/<int:job_id>/cancel', 'cancel_job', view_func=CancelJobView.as_view('cancel_job'),
                methods=['POST'])
bp.add_url_rule('/events', 'list_events', view_func=EventsView.as_view('list_events'), methods=['GET'])
# The badge for a link to 接入事件 (the number of events that reached no case).
bp.add_app_template_global(unmatched_event_count, 'unmatched_event_count')
