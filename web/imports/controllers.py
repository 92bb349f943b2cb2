"""批量导入: the upload page, the dry run, the import and a batch's progress.

Whoever may open cases (a case role somewhere) reaches these pages; each row's unit must lie in their subtree,
where their roles work on the kind of case. A batch is seen by the user who started it and by supervisors of
their unit (404 for anyone else); its rows are listed only where the row's unit lies in the caller's subtree.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from flask import flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine import idempotency
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.imports import (
    DryRun,
    check_file,
    get_batch,
    import_kind,
    import_kinds,
    limits,
    list_batches,
    start_import,
    template_csv,
    template_xlsx,
)
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.pages import JsonPollView, PageView, translate
from web.imports.schemas import BatchProgressSchema
from web.imports.util import BATCH_STATUS_LABELS, label, progress_payload, row_payload

MSG_NO_CASE_ROLE = N_('您的角色不能发起案件，也不能导入案件。')
MSG_NO_FILE = N_('请选择要导入的 CSV 或 XLSX 文件。')
MSG_STALE_FORM = N_('表单缺少提交标识，请重新检查文件后再导入。')
#: the dry-run page's hidden nonce: the idempotency key of one import
FORM_NONCE = 'form_nonce'
_TYPES = {'csv': 'text/csv; charset=utf-8',
          'xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'}


def _may_import() -> None:
    if not current_scope().case_paths:
        raise AccessDenied(MSG_NO_CASE_ROLE)


def _home(*, status: int = 200, message: str | None = None, errors: list[str] | None = None) -> ResponseReturnValue:
    return render_template('imports/new.html', kinds=import_kinds(), batches=list_batches(db(), current_scope()),
                           status_labels=BATCH_STATUS_LABELS, label=label, message=message, errors=errors or [],
                           chosen=request.form.get('kind', ''), max_mb=limits.max_bytes // (1024 * 1024),
                           max_rows=limits.max_rows), status


def _uploaded() -> tuple[bytes, str]:
    """The file of the form: an upload, or the content the dry-run page carried on (base64)."""
    upload = request.files.get('file')
    if upload is not None and upload.filename:
        return upload.read(limits.max_bytes + 1), upload.filename
    carried = request.form.get('content', '')
    if carried:
        try:
            return base64.b64decode(carried, validate=True), request.form.get('filename', '')[:255]
        except (binascii.Error, ValueError):
            pass
    raise ValidationFailed(MSG_NO_FILE, {'file': [MSG_NO_FILE]})


class ImportPage(PageView):
    """Base of the import pages: roles that may open cases."""

    def check_access(self) -> None:
        _may_import()

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed) and request.method == 'POST':
            errors = [translate(m) for m in exc.fields.get('file', [])] or [translate(exc.message)]
            return _home(status=400, message=translate(exc.message), errors=errors)
        return super().handle_error(exc)


class ImportHomeView(ImportPage):
    """The upload form, the templates, the importable stages and the newest batches."""

    def get(self) -> ResponseReturnValue:
        return _home()


class TemplateView(ImportPage):
    """A kind's template, as CSV or XLSX."""

    def load(self, kind: str, fmt: str) -> None:
        if fmt not in _TYPES:
            raise NotFound(N_('模板不存在'))
        try:
            self.kind = import_kind(kind)
        except ValidationFailed:
            raise NotFound(N_('模板不存在')) from None

    def get(self, kind: str, fmt: str) -> ResponseReturnValue:
        content = template_csv(self.kind) if fmt == 'csv' else template_xlsx(self.kind)
        response = make_response(content)
        response.headers['Content-Type'] = _TYPES[fmt]
        response.headers['Content-Disposition'] = f'attachment; filename="import-{self.kind.name}.{fmt}"'
        return response


class CheckImportView(ImportPage):
    """The dry run: every row with its problems; nothing is written."""

    def post(self) -> ResponseReturnValue:
        content, filename = _uploaded()
        result = check_file(db(), request.form.get('kind', ''), content, filename, scope=current_scope())
        return render_template('imports/check.html', result=result, filename=filename,
                               content=base64.b64encode(content).decode('ascii') if result.ok else '',
                               nonce=secrets.token_urlsafe(16), headers=_headers(result))


def _headers(result: DryRun) -> list[tuple[str, str]]:
    return [(column.key, column.header) for column in result.kind.all_columns]


class StartImportView(ImportPage):
    """Check the file again and queue its rows; the worker imports them one by one."""

    def post(self) -> ResponseReturnValue:
        session, me = db(), current_actor()
        content, filename = _uploaded()
        kind = request.form.get('kind', '')
        # The page's nonce makes a double click (or a resubmitted page) start one batch, not two.
        nonce = request.form.get(FORM_NONCE, '')
        if not idempotency.valid_key(nonce):
            raise ValidationFailed(MSG_STALE_FORM, {'file': [MSG_STALE_FORM]})
        claimed = idempotency.claim(session, me.id, 'web.start_import', nonce,
                                    idempotency.fingerprint({'kind': kind, 'content': content.hex()[:200000],
                                                             'filename': filename}))
        if idempotency.answered(claimed):
            flash(gettext('该文件已提交导入，未重复导入。'), 'info')
            return redirect(claimed.response['location'])
        batch = start_import(session, kind, content, filename, actor=me, scope=current_scope())
        location = url_for('imports.show_batch', batch_id=batch.id)
        idempotency.settle(claimed, 302, {'location': location})
        flash(gettext('已提交 %(count)s 行的导入，正在后台逐行处理。', count=batch.total_count), 'success')
        return redirect(location)


class BatchView(ImportPage):
    """One batch: its progress and each row's result, refreshed while the worker goes on."""

    def load(self, batch_id: int) -> None:
        _may_import()
        self.batch = get_batch(db(), batch_id, current_scope())

    def get(self, batch_id: int) -> ResponseReturnValue:
        batch = self.batch
        return render_template('imports/batch.html', batch=batch, rows=row_payload(batch),
                               status_label=label(BATCH_STATUS_LABELS, batch.status),
                               kind_label=import_kind(batch.kind).label if batch.kind else batch.kind)


class BatchProgressView(JsonPollView):
    """A batch's progress as JSON, polled by the batch page."""

    def check_access(self) -> None:
        _may_import()

    def load(self, batch_id: int) -> None:
        _may_import()
        self.batch = get_batch(db(), batch_id, current_scope())

    def get(self, batch_id: int) -> ResponseReturnValue:
        return self.answer(BatchProgressSchema().dump(progress_payload(self.batch)))
