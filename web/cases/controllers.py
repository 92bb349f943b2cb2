"""Starting a case, the case list with its search, and the case page."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine import runtime
from engine.definitions import latest_definition, process_bundle
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.definitions import ProcessDefinition
from engine.specs import ProcessBundle
from web.cases.util import (
    CASE_STATUS_LABELS,
    INSTANCE_STATUS_LABELS,
    case_documents,
    case_fields,
    case_timeline,
    data_rows,
    get_case,
    get_document,
    list_cases,
    open_tasks,
    parse_cursor,
    start_form,
    startable,
    starts_a_case,
)
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import form_level_errors, initial_values, submitted_data, submitted_values, widgets
from web.core.pages import PageView, translate
from web.tasks.util import group_names, next_step_message, prefetch


class StartingView(PageView):
    """Base of the pages that open cases: roles without case work (designer, admin) may not."""

    def check_access(self) -> None:
        if not current_scope().case_paths:
            raise AccessDenied(N_('您的角色不能发起案件。'))


class NewCaseView(StartingView):
    """发起案件: the processes a case can be opened with."""

    def get(self) -> ResponseReturnValue:
        return render_template('cases/new.html', processes=startable(db()))


class StartFormView(StartingView):
    """Base of the start-form views: the newest version of the process ``key``."""

    def load(self, key: str) -> None:
        self.definition = latest_definition(db(), key)
        self.bundle = process_bundle(db(), self.definition)
        if not starts_a_case(self.bundle):
            raise NotFound(N_('该流程只能从案件页面发起。'))


def _start_page(definition: ProcessDefinition, bundle: ProcessBundle, values: dict[str, str],
                errors: dict[str, list[str]] | None = None, message: str | None = None) -> str:
    form, errors = start_form(bundle), errors or {}
    return render_template('cases/start.html', definition=definition, bundle=bundle,
                           fields=widgets(form, values, errors), form_errors=form_level_errors(form, errors),
                           message=translate(message) if message else None, unit=current_actor().org_unit)


class ShowStartFormView(StartFormView):
    """The start form."""

    def get(self, key: str) -> ResponseReturnValue:
        return _start_page(self.definition, self.bundle, initial_values(start_form(self.bundle), {}))


class StartCaseView(StartFormView):
    """Open the case at the user's own unit and show it."""

    def post(self, key: str) -> ResponseReturnValue:
        session, me = db(), current_actor()
        data = submitted_data(start_form(self.bundle), request.form)
        case, tasks = runtime.start_case(session, self.definition.key, data, actor=me, org_unit=me.org_unit,
                                         scope=current_scope())
        flash(gettext('已立案，案件编号 %(number)s。%(next)s', number=case.number,
                      next=next_step_message(session, case, tasks)), 'success')
        return redirect(url_for('cases.show_case', case_id=case.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        values = submitted_values(start_form(self.bundle), request.form)
        return _start_page(self.definition, self.bundle, values, exc.fields, exc.message), 400


def _case_list(text: str, before: int | None) -> str:
    page = list_cases(db(), current_scope(), text=text, before=before)
    return render_template('cases/list.html', page=page, text=text, statuses=CASE_STATUS_LABELS)


class CaseListView(PageView):
    """案件: the cases the user may see, newest first."""

    def get(self) -> ResponseReturnValue:
        return _case_list('', parse_cursor(request.args.get('before')))


class SearchCasesView(PageView):
    """The search box posts, so names and ID numbers never appear in a URL, a log or the history."""

    def post(self) -> ResponseReturnValue:
        return _case_list(request.form.get('q', ''), parse_cursor(request.form.get('before')))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        flash(translate(exc.fields.get('q', [exc.message])[0]), 'error')
        return redirect(url_for('cases.list_cases'))


class CaseView(PageView):
    """Base of the views about one case: a case outside the caller's subtrees is a 404."""

    def load(self, case_id: int, **kwargs: int) -> None:
        self.case = get_case(db(), case_id, current_scope())


class ShowCaseView(CaseView):
    """The case page: data, status, instances, open tasks, documents and the whole history."""

    def get(self, case_id: int) -> ResponseReturnValue:
        session, scope, case = db(), current_scope(), self.case
        tasks = open_tasks(session, case)
        prefetch(session, tasks)
        return render_template(
            'cases/case.html', case=case, data=data_rows(case.start_data, case_fields(session, case)),
            tasks=tasks, visible={t.id for t in tasks if scope.can_view_task(t)},
            documents=case_documents(session, case),
            groups=group_names(session, (t.candidate_group for t in tasks)), statuses=CASE_STATUS_LABELS,
            instance_statuses=INSTANCE_STATUS_LABELS, history=case_timeline(session, case))


class ShowDocumentView(CaseView):
    """One document of the case as issued, on an A4 sheet, with a print stylesheet and a 打印 button."""

    def load(self, case_id: int, document_id: int, **kwargs: int) -> None:
        super().load(case_id)
        self.document = get_document(db(), self.case, document_id)

    def get(self, case_id: int, document_id: int) -> ResponseReturnValue:
        return render_template('cases/document.html', case=self.case, document=self.document)
