"""Supervisors' pages: 案件检索 (instances below their units), 审计日志 with its exports and the chain check,
异常处理 (instances in error and dead jobs, retried or cancelled with a reason)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, flash, redirect, render_template, request, send_file, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine import audit
from engine.access import Scope
from engine.audit_log import (
    AuditFilter,
    count_events,
    export_csv,
    export_rows,
    export_xlsx,
    list_events,
    prepare_export,
    reader_org_path,
    reader_paths,
    require_reader,
    sees_system_events,
)
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.incidents import cancel_instance, list_errored_instances, retry_instance
from engine.search import InstanceFilter, count_instances, parse_cursor, require_supervisor, search_instances
from engine.worker import cancel_job, list_dead_jobs, retry_dead_job
from web.cases.util import INSTANCE_STATUS_LABELS
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import field_errors, load_form
from web.core.pages import ActionView, PageView, safe_path, translate
from web.supervision.schemas import ExportSchema, ReasonSchema
from web.supervision.util import (
    audit_rows,
    event_label,
    export_filename,
    has_error_choices,
    hit_rows,
    kind_choices,
    status_choices,
    supervised_unit_choices,
)
from web.tasks.util import colour_choices, count_text, latest_processes, process_choices, stage_choices, unit_choices
from workflows.shared.sensitive import looks_like_id_number, mask_data

PAGE_SIZE = 50
#: the inputs of the two filter forms, as they appear in the query string
SEARCH_INPUTS = ('text', 'process', 'version', 'stage', 'status', 'has_error', 'org_unit', 'risk_colour',
                 'started_from', 'started_to', 'due_from', 'due_to')
AUDIT_INPUTS = ('actor', 'kind', 'org_unit', 'case', 'date_from', 'date_to')
MSG_JOBS = N_('只有主管领导可以处理失败作业。')
#: why a bookmarked or typed-in search address holding an ID number is refused
MSG_ID_IN_URL = N_('公民身份号码不能放在网址中，请在搜索框中输入后点击“检索”。')


def _require_supervisor() -> None:
    if not current_scope().supervisor_paths:
        raise AccessDenied(MSG_JOBS)


def _reason() -> str:
    reason = (request.form.get('reason') or '').strip()
    if not reason:
        raise ValidationFailed(N_('请填写原因。'), {'reason': [N_('请填写原因。')]})
    return reason


def _values(source: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The filter inputs as typed, blanks left out (for the form and the paging links)."""
    return {name: value for name in names if (value := str(source.get(name) or '').strip())}


def _errors(exc: ValidationFailed) -> dict[str, list[str]]:
    """The engine's filter messages by input, translated; a message about no input goes to ``_form``."""
    errors = {name: [translate(m) for m in messages] for name, messages in exc.fields.items()}
    return errors or {'_form': [translate(exc.message)]}


class SupervisorActionView(ActionView):
    """Base of the supervisors' buttons: refusals other than bad input answer with their status page, and the
    reason's own message is what a missing reason flashes."""

    def check_access(self) -> None:
        require_supervisor(current_scope())

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, (NotFound, AccessDenied)):
            return PageView.handle_error(self, exc)
        if isinstance(exc, ValidationFailed) and exc.fields:
            flash(' '.join(m for name in exc.fields for m in field_errors(exc.fields, name)), 'error')
            return redirect(self.return_url())
        return super().handle_error(exc)


# -- 案件检索 -------------------------------------------------------------------------------------------------

class SearchInstancesView(PageView):
    """案件检索: every process instance below the caller's supervised units, filtered, newest first."""

    def check_access(self) -> None:
        require_supervisor(current_scope())

    def get(self) -> ResponseReturnValue:
        if looks_like_id_number(request.args.get('text')):
            raise ValidationFailed(MSG_ID_IN_URL, {'text': [MSG_ID_IN_URL]})
        return self.results(request.args)

    def post(self) -> ResponseReturnValue:
        """The search form posts: redirected to the bookmarkable query string, or, for an ID number, answered
        directly, so that the number never appears in a URL, a server log or the browser history."""
        if looks_like_id_number(request.form.get('text')):
            return self.results(request.form)
        return redirect(url_for('supervision.search_instances', **_values(request.form, SEARCH_INPUTS)), 303)

    def results(self, source: Mapping[str, str]) -> ResponseReturnValue:
        """One page of the instances matching the search in ``source``."""
        session, scope = db(), current_scope()
        wanted = InstanceFilter.from_dict(source)
        before = parse_cursor(source.get('before'))
        page = search_instances(session, scope, wanted, before=before, limit=PAGE_SIZE)
        return self.render(page=page, rows=hit_rows(page.hits), before=before,
                           count=count_text(count_instances(session, scope, wanted)))

    def render(self, *, errors: dict[str, list[str]] | None = None, status: int = 200,
               **context: Any) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        source = request.form if request.method == 'POST' else request.args
        values = _values(source, SEARCH_INPUTS)
        if request.method == 'GET' and looks_like_id_number(values.get('text')):
            values.pop('text')  # refused: not shown back, nor carried on in links
        definitions = latest_processes(session)
        html = render_template(
            'supervision/instances.html', values=values, errors=errors or {}, processes=process_choices(definitions),
            stages=stage_choices(session, definitions, values.get('process')),
            units=supervised_unit_choices(session, scope, values.get('org_unit')), colours=colour_choices(),
            statuses=status_choices(), has_error=has_error_choices(), status_labels=INSTANCE_STATUS_LABELS,
            private=looks_like_id_number(values.get('text')), **context)
        return html, status

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        return self.render(errors=_errors(exc), status=400, page=None, rows=[], before=None, count=None)


# -- 审计日志 -------------------------------------------------------------------------------------------------

class AuditView(PageView):
    """Base of the audit-log pages: supervisors and audit administrators (安全审计员; see ``engine.audit_log``)."""

    def check_access(self) -> None:
        require_reader(current_scope())


def reader_scope(scope: Scope) -> Scope:
    """``scope`` narrowed to the units whose events it reads, for the audit log's org-unit select."""
    return Scope(scope.user_id, tuple(('reader', path) for path in reader_paths(scope)))


class AuditLogView(AuditView):
    """审计日志: the events the caller may read, filtered, newest first, with the exports and the chain check."""

    def get(self) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        wanted = AuditFilter.from_dict(request.args)
        before = parse_cursor(request.args.get('before'))
        page = list_events(session, scope, wanted, before=before, limit=PAGE_SIZE)
        return self.render(page=page, rows=audit_rows(session, page.events, page.case_numbers), before=before,
                           count=count_text(count_events(session, scope, wanted)))

    def render(self, *, errors: dict[str, list[str]] | None = None, status: int = 200,
               **context: Any) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        values = _values(request.args, AUDIT_INPUTS)
        html = render_template(
            'supervision/audit.html', values=values, errors=errors or {}, kinds=kind_choices(),
            units=unit_choices(session, reader_scope(scope), values.get('org_unit')),
            sees_system=sees_system_events(scope), **context)
        return html, status

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        return self.render(errors=_errors(exc), status=400, page=None, rows=[], before=None, count=None)


class ExportAuditView(AuditView):
    """导出: the filtered log as CSV (streamed) or XLSX, up to the newest event now; the export is audited."""

    def post(self) -> ResponseReturnValue:
        args = load_form(ExportSchema(), request.form)
        session, scope = db(), current_scope()
        wanted = AuditFilter.from_dict(request.form)
        up_to = prepare_export(session, scope, wanted, actor=current_actor(), fmt=args['format'])
        rows = export_rows(session, scope, wanted, up_to=up_to, label=event_label, mask=mask_data)
        if args['format'] == 'xlsx':
            return send_file(export_xlsx(rows, title=gettext('审计日志')), as_attachment=True,
                             download_name=export_filename('xlsx'),
                             mimetype='application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
        # The audit record of the export is committed before the first row is sent (BaseView commits on return).
        response = Response(stream_with_context(export_csv(rows)), mimetype='text/csv')
        response.headers['Content-Disposition'] = f'attachment; filename="{export_filename("csv")}"'
        return response

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        messages = [m for messages in _errors(exc).values() for m in messages]
        flash(' '.join(dict.fromkeys(messages)), 'error')
        return redirect(url_for('supervision.list_audit', **_values(request.form, AUDIT_INPUTS)))


class ShowVerifyView(AuditView):
    """审计链校验: what the check does, and the button that runs it."""

    def get(self) -> ResponseReturnValue:
        return render_template('supervision/verify.html', report=None)


class VerifyAuditView(AuditView):
    """Run the chain check over the whole log and name the first broken row; the check itself is audited."""

    def post(self) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        report = audit.verify_chain(session)
        audit.record(session, 'audit.verified', actor=current_actor(), org_path=reader_org_path(scope),
                     after={'ok': report.ok, 'checked': report.checked, 'first_broken_id': report.first_broken_id})
        return render_template('supervision/verify.html', report=report,
                               broken_label=event_label(report.kind) if report.kind else None)


# -- 异常处理 -------------------------------------------------------------------------------------------------

class IncidentsView(PageView):
    """异常处理: instances in error and dead jobs below the caller's supervised units."""

    def check_access(self) -> None:
        require_supervisor(current_scope())

    def get(self) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        return render_template('supervision/incidents.html', instances=list_errored_instances(session, scope),
                               jobs=list_dead_jobs(session, scope))


class IncidentActionView(SupervisorActionView):
    """Base of the incident buttons: back to 异常处理 (or the local page the form names)."""

    def return_url(self) -> str:
        return safe_path(request.form.get('return_to')) or url_for('supervision.list_incidents')


class RetryInstanceView(IncidentActionView):
    """重试: run an instance in error on from where it stands; say whether it went on or failed again."""

    def post(self, instance_id: int) -> ResponseReturnValue:
        args = load_form(ReasonSchema(), request.form)
        outcome = retry_instance(db(), instance_id, actor=current_actor(), reason=args['reason'], scope=current_scope())
        if outcome.ok:
            flash(gettext('流程已重新运行，当前状态：%(status)s。',
                          status=gettext(INSTANCE_STATUS_LABELS.get(outcome.instance.status, '—'))), 'success')
        else:
            flash(gettext('重试后流程仍然出错：%(error)s', error=translate(outcome.error or '')), 'error')
        return redirect(self.return_url())


class CancelInstanceView(IncidentActionView):
    """终止: stop an instance in error for good (its tasks and jobs cancelled; a lifecycle takes its case)."""

    def post(self, instance_id: int) -> ResponseReturnValue:
        args = load_form(ReasonSchema(), request.form)
        instance = cancel_instance(db(), instance_id, actor=current_actor(), reason=args['reason'],
                                   scope=current_scope())
        flash(gettext('流程已终止，其待办任务和作业已取消。') if not instance.is_lifecycle
              else gettext('流程已终止，案件已撤销。'), 'success')
        return redirect(self.return_url())


# -- 失败作业 -------------------------------------------------------------------------------------------------

class RetryJobView(ActionView):
    """Put a dead job back in the queue, with a reason."""

    def check_access(self) -> None:
        _require_supervisor()

    def return_url(self) -> str:
        return safe_path(request.form.get('return_to')) or url_for('supervision.list_incidents')

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
