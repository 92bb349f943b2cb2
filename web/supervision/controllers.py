"""失败作业: dead timer, reminder and escalation jobs a supervisor sees and retries or cancels (audited)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine.errors import AccessDenied, ValidationFailed
from engine.i18n import N_
from engine.worker import cancel_job, list_dead_jobs, retry_dead_job
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.pages import ActionView, PageView


def _require_supervisor() -> None:
    if not current_scope().supervisor_paths:
        raise AccessDenied(N_('只有主管领导可以处理失败作业。'))


def _reason() -> str:
    reason = (request.form.get('reason') or '').strip()
    if not reason:
        raise ValidationFailed(N_('请填写原因。'), {'reason': [N_('请填写原因。')]})
    return reason


class DeadJobsView(PageView):
    """The dead jobs of the cases the caller supervises."""

    def check_access(self) -> None:
        _require_supervisor()

    def get(self) -> ResponseReturnValue:
        return render_template('supervision/jobs.html', rows=list_dead_jobs(db(), current_scope()))


class RetryJobView(ActionView):
    """Put a dead job back in the queue, with a reason."""

    def check_access(self) -> None:
        _require_supervisor()

    def return_url(self) -> str:
        return url_for('supervision.list_dead_jobs')

    def post(self, job_id: int) -> ResponseReturnValue:
        retry_dead_job(db(), job_id, actor=current_actor(), reason=_reason(), scope=current_scope())
        flash(gettext('作业已重新排队。'), 'success')
        return redirect(self.return_url())


class CancelJobView(RetryJobView):
    """Cancel a dead job for good, with a reason."""

    def post(self, job_id: int) -> ResponseReturnValue:
        cancel_job(db(), job_id, actor=current_actor(), reason=_reason(), scope=current_scope())
        flash(gettext('作业已取消。'), 'success')
        return redirect(self.return_url())
