"""Starting a case, the case list with its search, the case page with its 一案一码, and requests on a case."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from marshmallow import ValidationError

from engine import audit, idempotency, public_access, runtime
from engine.definitions import latest_definition, process_bundle
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.definitions import ProcessDefinition
from engine.models.org_units import OrgUnit
from engine.specs import ProcessBundle
from web.cases.schemas import SEARCH_FIELDS, CaseSearchSchema
from web.cases.util import (
    CASE_REQUEST_FIELD,
    CASE_STATUS_LABELS,
    INSTANCE_STATUS_LABELS,
    MSG_CASE_ONLY,
    RISK_LABELS,
    CaseFilters,
    case_actions,
    case_documents,
    case_fields,
    case_instances,
    case_reminders,
    case_timeline_page,
    check_request,
    count_cases,
    data_rows,
    first_steps,
    get_case,
    get_document,
    lifecycle_name,
    list_cases,
    may_reveal,
    parse_cursor,
    public_url,
    qr_svg,
    request_form,
    scope_units,
    sensitive_rows,
    start_form,
    startable,
    starts_a_case,
)
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import form_level_errors, initial_values, submitted_data, submitted_values, widgets
from web.core.pages import PageView, safe_path, translate
from web.public.util import may_issue_pin
from web.tasks.util import group_names
from workflows.shared.sensitive import ID_NUMBER, looks_like_id_number, mask_value

#: the start form's hidden nonce: the idempotency key of one filled-in form
FORM_NONCE = 'form_nonce'
MSG_STALE_FORM = N_('表单缺少提交标识，请刷新页面后重新填写提交。')
MSG_SEARCH_INVALID = N_('请检查标出的搜索条件。')
#: why a bookmarked or typed-in case-list address holding an ID number is refused
MSG_ID_IN_URL = N_('公民身份号码不能放在网址中，请在搜索框中输入后点击“搜索”。')
#: start-data keys the case page shows in its summary instead (the ID number under the masking rule)
SUMMARY_KEYS = frozenset({'id_number'})


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
            raise NotFound(MSG_CASE_ONLY)


def _start_page(definition: ProcessDefinition, bundle: ProcessBundle, values: dict[str, str],
                errors: dict[str, list[str]] | None = None, message: str | None = None) -> str:
    form, errors = start_form(bundle), errors or {}
    return render_template('cases/start.html', definition=definition, bundle=bundle,
                           fields=widgets(form, values, errors), form_errors=form_level_errors(form, errors),
                           message=translate(message) if message else None, unit=current_actor().org_unit,
                           nonce=secrets.token_urlsafe(16))


class ShowStartFormView(StartFormView):
    """The start form."""

    def get(self, key: str) -> ResponseReturnValue:
        return _start_page(self.definition, self.bundle, initial_values(start_form(self.bundle), {}))


class StartCaseView(StartFormView):
    """Open the case at the user's own unit and show it, with its number and first tasks on top."""

    def post(self, key: str) -> ResponseReturnValue:
        session, me = db(), current_actor()
        data = submitted_data(start_form(self.bundle), request.form)
        # The form's nonce makes a double click (or a resubmitted page) open one case, not two.
        nonce = request.form.get(FORM_NONCE, '')
        if not idempotency.valid_key(nonce):
            raise ValidationFailed(MSG_STALE_FORM, {'_schema': [MSG_STALE_FORM]})
        claimed = idempotency.claim(session, me.id, 'web.start_case', nonce,
                                    idempotency.fingerprint({'key': key, 'data': data}))
        if idempotency.answered(claimed):
            flash(gettext('该表单已提交过，案件已立案，未重复立案。'), 'info')
            return redirect(claimed.response['location'])
        case, tasks = runtime.start_case(session, self.definition.key, data, actor=me, org_unit=me.org_unit,
                                         scope=current_scope())
        location = url_for('cases.show_case', case_id=case.id)
        idempotency.settle(claimed, 302, {'location': location})
        flash(gettext('已立案，案件编号 %(number)s。%(next)s', number=case.number,
                      next=first_steps(session, case, tasks)), 'success')
        # Shown this once only (a hash is kept): the staff hand it to the party with the acceptance notice.
        flash(gettext('一案一码查询密码：%(pin)s（仅显示这一次，请告知当事人）。',
                      pin=public_access.issue_pin(session, case, actor=me)), 'info')
        return redirect(location)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        values = submitted_values(start_form(self.bundle), request.form)
        return _start_page(self.definition, self.bundle, values, exc.fields, exc.message), 400


# -- the case list and its search -----------------------------------------------------------------------

def _unit_options(units: list[OrgUnit]) -> list[tuple[str, str]]:
    """(code, name) of each unit, the name indented by the unit's depth below the caller's top unit."""
    top = min((unit.path.count('/') for unit in units), default=0)
    return [(unit.code, '\u3000' * (unit.path.count('/') - top) + unit.name) for unit in units]


def _field_messages(messages: Any) -> dict[str, list[str]]:
    """marshmallow's messages of a flat schema as ``{field: [message, ...]}``."""
    if not isinstance(messages, dict):
        return {'_schema': [str(messages)]}
    return {str(key): [str(m) for m in value] if isinstance(value, list) else [str(value)]
            for key, value in messages.items()}


class CaseSearchView(PageView):
    """Base of the case list: the search form's choices, reading a search, showing one page of results.

    A search is a GET query string, so it can be bookmarked and the back button works. The form posts
    (with its CSRF token) and is redirected to that query string, except when it holds an ID number:
    that one is answered directly, so that an ID number never appears in a URL, a server log or the
    browser history.
    """

    def load(self, **kwargs: Any) -> None:
        session = db()
        self.kinds = [(definition.key, definition.name) for definition, _ in startable(session)]
        self.units = scope_units(session, current_scope())

    def parse(self, source: Mapping[str, str]) -> tuple[CaseFilters, int | None]:
        """Validate a search; ValidationFailed lists every field's problem."""
        schema = CaseSearchSchema(kinds={key for key, _ in self.kinds}, units={unit.code for unit in self.units})
        try:
            args = schema.load(source)
        except ValidationError as error:
            raise ValidationFailed(MSG_SEARCH_INVALID, _field_messages(error.messages)) from None
        paths = {unit.code: unit.path for unit in self.units}
        filters = CaseFilters(number=args['number'], name=args['name'], id_number=args['id_number'].upper(),
                              kind=args['kind'], status=args['status'], org_path=paths.get(args['org_unit'], ''),
                              opened_from=args['opened_from'], opened_to=args['opened_to'], text=args['q'])
        return filters, parse_cursor(args['before'])

    def results(self, source: Mapping[str, str]) -> str:
        """The list page for a valid search in ``source``."""
        filters, before = self.parse(source)
        session, scope = db(), current_scope()
        page = list_cases(session, scope, filters, before=before)
        return self.render(source, page=page, filters=filters, before=before,
                           count=count_cases(session, scope, filters), kind_names=dict(self.kinds))

    def render(self, source: Mapping[str, str], *, errors: Mapping[str, list[str]] | None = None,
               message: str | None = None, **context: Any) -> str:
        values = {name: source.get(name, '').strip() for name in (*SEARCH_FIELDS, 'q')}
        query = {name: value for name, value in values.items() if value}
        shown = {name: [translate(m) for m in messages] for name, messages in (errors or {}).items()}
        return render_template(
            'cases/list.html', values=values, query=query, kinds=self.kinds, unit_options=_unit_options(self.units),
            status_options=[(status, gettext(label)) for status, label in CASE_STATUS_LABELS.items()],
            statuses=CASE_STATUS_LABELS, risks=RISK_LABELS, message=message, errors=shown,
            form_errors=[m for name, messages in shown.items() if name not in SEARCH_FIELDS for m in messages],
            searched=bool(query), **context)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        source = request.form if request.method == 'POST' else request.args
        if request.method == 'GET':
            # an ID number refused in the address is neither shown back nor carried on in links
            source = {name: value for name, value in source.items() if name != 'id_number'
                      and not (name == 'q' and looks_like_id_number(value))}
        return self.render(source, errors=exc.fields, message=translate(exc.message)), 400


class CaseListView(CaseSearchView):
    """案件: the cases the user may see, newest first, narrowed by the search in the query string."""

    def get(self) -> ResponseReturnValue:
        if request.args.get('id_number') or looks_like_id_number(request.args.get('q')):
            raise ValidationFailed(MSG_ID_IN_URL, {'id_number': [MSG_ID_IN_URL]})
        return self.results(request.args)


class SearchCasesView(CaseSearchView):
    """The search form posts here: redirected to the bookmarkable query string, or answered directly when it
    holds an ID number."""

    def post(self) -> ResponseReturnValue:
        filters, _ = self.parse(request.form)
        if filters.is_private:
            return self.results(request.form)
        query: dict[str, Any] = {name: request.form[name].strip() for name in (*SEARCH_FIELDS, 'before')
                                 if request.form.get(name, '').strip()}
        return redirect(url_for('cases.list_cases', **query), 303)


# -- the case page ----------------------------------------------------------------------------------------

class CaseView(PageView):
    """Base of the views about one case: a case outside the caller's subtrees is a 404."""

    def load(self, case_id: int, **kwargs: Any) -> None:
        self.case = get_case(db(), case_id, current_scope())


class ShowCaseView(CaseView):
    """The case page: summary, 一案一码, requests to start, instances with their open tasks, documents, history."""

    def get(self, case_id: int) -> ResponseReturnValue:
        session, scope, case = db(), current_scope(), self.case
        after = parse_cursor(request.args.get('history_after'))
        instances = case_instances(session, case)
        tasks = [task for row in instances for task in row.tasks]
        data = {key: value for key, value in case.start_data.items() if key not in SUMMARY_KEYS}
        return render_template(
            'cases/case.html', case=case, data=data_rows(data, case_fields(session, case)),
            id_number=mask_value(ID_NUMBER, case.id_number), may_reveal=may_reveal(scope, case),
            kind_name=lifecycle_name(case, instances), instances=instances,
            visible={t.id for t in tasks if scope.can_view_task(t)},
            groups=group_names(session, (t.candidate_group for t in tasks)), statuses=CASE_STATUS_LABELS,
            instance_statuses=INSTANCE_STATUS_LABELS, risks=RISK_LABELS, documents=case_documents(session, case),
            history=case_timeline_page(session, case, after=after), history_after=after,
            reminders=case_reminders(session, case), actions=case_actions(session, scope, case),
            public_url=public_url(case), may_issue_pin=may_issue_pin(scope, case),
            pin_issued=public_access.has_pin(session, case))


class ShowCaseQrView(CaseView):
    """The 一案一码 as an SVG image: a QR code of the case's public progress page, for printing."""

    def get(self, case_id: int) -> ResponseReturnValue:
        response = make_response(qr_svg(public_url(self.case)))
        response.mimetype = 'image/svg+xml'
        # The public code never changes; the image is the caller's to keep, not a shared cache's.
        response.headers['Cache-Control'] = 'private, max-age=86400'
        return response


class ShowDocumentView(CaseView):
    """One document of the case as issued, on an A4 sheet, with a print stylesheet and a 打印 button."""

    def load(self, case_id: int, document_id: int, **kwargs: Any) -> None:
        super().load(case_id)
        self.document = get_document(db(), self.case, document_id)

    def get(self, case_id: int, document_id: int) -> ResponseReturnValue:
        # Documents carry names, ID numbers and addresses in full: who read which is kept.
        audit.record(db(), 'document.viewed', actor=current_actor(), case_id=self.case.id,
                     org_path=self.case.org_path, after={'document_id': self.document.id,
                                                         'number': self.document.number})
        return render_template('cases/document.html', case=self.case, document=self.document)


class RevealCaseView(CaseView):
    """查看完整信息: the case's sensitive values in full, for its own units only; every view is audited.

    A POST (with its CSRF token), so that no link, prefetch or crawler reveals anything, and the values are
    never in the case page as first sent.
    """

    def check_access(self) -> None:
        if not may_reveal(current_scope(), self.case):
            raise NotFound(N_('案件不存在'))

    def post(self, case_id: int) -> ResponseReturnValue:
        session, case = db(), self.case
        rows = sensitive_rows(session, case)
        audit.record(session, 'case.sensitive_viewed', actor=current_actor(), case_id=case.id, org_path=case.org_path,
                     after={'fields': sorted({row.key for row in rows})})
        response = make_response(render_template('cases/sensitive.html', case=case, rows=rows,
                                                 return_to=safe_path(request.form.get('return_to'))))
        response.headers['Cache-Control'] = 'no-store'
        return response


# -- requests on a case -----------------------------------------------------------------------------------

class RequestView(CaseView):
    """Base of the request views: the newest version of request process ``key``, startable on this case now."""

    def load(self, case_id: int, key: str = '', **kwargs: Any) -> None:
        super().load(case_id)
        self.definition = latest_definition(db(), key)
        self.bundle = process_bundle(db(), self.definition)

    def check_access(self) -> None:
        check_request(current_scope(), self.case, self.definition, self.bundle)

    def page(self, values: dict[str, str], errors: dict[str, list[str]] | None = None,
             message: str | None = None) -> str:
        form, errors = request_form(self.bundle), errors or {}
        return render_template('cases/request.html', case=self.case, definition=self.definition,
                               bundle=self.bundle, fields=widgets(form, values, errors),
                               form_errors=form_level_errors(form, errors),
                               message=translate(message) if message else None)


class ShowRequestFormView(RequestView):
    """A request's start form, bound to the case."""

    def get(self, case_id: int, key: str) -> ResponseReturnValue:
        return self.page(initial_values(request_form(self.bundle), {}))


class StartRequestView(RequestView):
    """Start the request on the case and go back to the case, its new tasks named on top."""

    def post(self, case_id: int, key: str) -> ResponseReturnValue:
        session = db()
        data = {**submitted_data(request_form(self.bundle), request.form), CASE_REQUEST_FIELD: str(self.case.id)}
        case, tasks = runtime.start_case(session, self.definition.key, data, actor=current_actor(),
                                         org_unit=self.case.org_unit, scope=current_scope())
        flash(gettext('已发起“%(process)s”。%(next)s', process=self.definition.name,
                      next=first_steps(session, case, tasks)), 'success')
        return redirect(url_for('cases.show_case', case_id=case.id, _anchor='instances'))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        return self.page(submitted_values(request_form(self.bundle), request.form), exc.fields, exc.message), 400
