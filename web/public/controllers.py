"""The parties' page ``/c/<code>`` (verify, then progress), its QR image, and the staff's 签发查询密码."""

from __future__ import annotations

from typing import Any

from flask import make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine import public_access
from engine.errors import EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from web.cases.util import get_case, qr_svg
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import load_form
from web.core.pages import PageView, translate
from web.core.views import BaseView, status_for
from web.public.schemas import VerifyFormSchema
from web.public.util import (
    PHONE_FIELDS,
    client_address,
    mark_verified,
    masked_document,
    may_issue_pin,
    mediator_groups,
    over_limit,
    page_url,
    verified_method,
)

#: the one answer to every failed verification: unknown code, locked code, wrong secret alike
MSG_NOT_VERIFIED = N_('查询码或验证信息不正确，或尝试次数过多。请核对受理文书上的查询码和查询密码，稍后再试。')
MSG_NO_PIN_HERE = N_('案件不存在')


class PublicView(BaseView):
    """Base of the parties' pages: no login; errors render the public layout, never the staff one."""

    login_required = False

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        status = status_for(exc)
        return render_template('public/message.html', message=translate(exc.message)), status


def _verify_page(code: str, errors: list[str] | None = None) -> str:
    """The form asking for the second factor; exactly the same for every code, existing or not."""
    return render_template('public/verify.html', code=code, errors=errors or [])


class ShowPublicCaseView(PublicView):
    """The page the QR code leads to: the progress once verified in this browser, else the verify form."""

    def get(self, code: str) -> ResponseReturnValue:
        limited = over_limit(attempt=False)
        if limited is not None:
            return limited
        method = verified_method(code)
        case = public_access.find_case(db(), code) if method else None
        if case is None:
            return _verify_page(code)
        public_access.record_view(db(), case, method=method or 'session', client=client_address())
        progress = public_access.progress(db(), case, mediator_groups=mediator_groups(case.kind))
        return render_template('public/progress.html', code=code, progress=progress)


class VerifyPublicCaseView(PublicView):
    """The verify form posts here: on success the browser may see the page for 30 minutes."""

    def post(self, code: str) -> ResponseReturnValue:
        limited = over_limit(attempt=True)
        if limited is not None:
            return limited
        try:
            secret = load_form(VerifyFormSchema(), request.form)['secret']
        except ValidationFailed as exc:
            return _verify_page(code, [translate(m) for messages in exc.fields.values() for m in messages])
        outcome = public_access.verify(db(), code, secret, phone_fields=PHONE_FIELDS, client=client_address())
        if outcome.case is None or outcome.method is None:
            return _verify_page(code, [gettext(MSG_NOT_VERIFIED)])
        mark_verified(code, outcome.method)
        return redirect(url_for('public.show_case', code=code), 303)


class ShowPartyDocumentView(PublicView):
    """One document addressed to the parties, for a browser verified for this code; ID numbers in it masked."""

    def get(self, code: str, document_id: int) -> ResponseReturnValue:
        limited = over_limit(attempt=False)
        if limited is not None:
            return limited
        case = public_access.find_case(db(), code) if verified_method(code) else None
        if case is None:
            return redirect(url_for('public.show_case', code=code), 303)
        document = public_access.party_document(db(), case, document_id, client=client_address())
        return render_template('public/document.html', code=code, document=document,
                               body=masked_document(document.body_html))


class ShowPublicQrView(PublicView):
    """The QR code of ``/c/<code>`` for the acceptance documents; drawn from the code alone, nothing looked up."""

    def get(self, code: str) -> ResponseReturnValue:
        if not public_access.valid_code(code):
            raise NotFound(MSG_NO_PIN_HERE)
        response = make_response(qr_svg(page_url(code)))
        response.mimetype = 'image/svg+xml'
        response.headers['Cache-Control'] = 'public, max-age=86400'
        return response


class IssuePinView(PageView):
    """签发查询密码 on the case page: a new PIN, shown once on this response and never stored in clear."""

    def load(self, case_id: int, **kwargs: Any) -> None:
        self.case = get_case(db(), case_id, current_scope())

    def check_access(self) -> None:
        if not may_issue_pin(current_scope(), self.case):
            raise NotFound(MSG_NO_PIN_HERE)

    def post(self, case_id: int) -> ResponseReturnValue:
        pin = public_access.issue_pin(db(), self.case, actor=current_actor())
        response = make_response(render_template('public/pin.html', case=self.case, pin=pin,
                                                 public_url=page_url(self.case.public_code)))
        response.headers['Cache-Control'] = 'no-store'
        return response
