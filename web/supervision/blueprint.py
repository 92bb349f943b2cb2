"""URLs of the supervision area."""

from __future__ import annotations

from flask import Blueprint

from web.supervision.controllers import CancelJobView, DeadJobsView, RetryJobView

bp = Blueprint('supervision', __name__, template_folder='templates', url_prefix='/supervision')

bp.add_url_rule('/jobs', 'list_dead_jobs', view_func=DeadJobsView.as_view('list_dead_jobs'), methods=['GET'])
bp.add_url_rule('/jobs/<int:job_id>/retry', 'retry_job', view_func=RetryJobView.as_view('retry_job'),
                methods=['POST'])
bp.add_url_rule('/jobs/<int:job_id>/cancel', 'cancel_job', view_func=CancelJobView.as_view('cancel_job'),
                methods=['POST'])
