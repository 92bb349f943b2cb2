"""The panel's forms (write a comment, upload a file) and the download: load → check access → act."""

from __future__ import annotations

import logging

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from werkzeug.exceptions import RequestEntityTooLarge

from engine.attachments import (
    AttachmentUnreadable,
    get_attachment,
    read_content,
    size_text,
    store_attachment,
)
from engine.comments import add_comment, case_task
from engine.errors import EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from web.cases.util import get_case
from web.comments.schemas import AttachmentFormSchema, CommentFormSchema
from web.comments.util import ANCHOR, attachment_response, attachment_settings, record_download
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import field_errors, load_form
from web.core.pages import ActionView, PageView, safe_path, translate

log = logging.getLogger(__name__)

MSG_NO_FILE = N_('请选择要上传的文件。')
MSG_INVALID = N_('数据有误，请检查标出的字段。')


class DiscussionActionView(ActionView):
    """Base of the panel's forms: a case outside the caller's reach is a 404; a refusal is flashed, nothing kept."""

    def load(self, case_id: int) -> None:
        self.case = get_case(db(), case_id, current_scope())

    def return_url(self) -> str:
        """The page the form was on (its ``return_to``), else the case page's panel."""
        return safe_path(request.form.get('return_to')) or url_for('cases.show_case', case_id=self.case.id,
                                                                    _anchor=ANCHOR)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        # BaseView rolled back: nothing of the refused comment or file was kept. Say exactly why.
        messages = [message for name in exc.fields for message in field_errors(exc.fields, name)]
        for message in messages or [translate(exc.message)]:
            flash(message, 'error')
        return redirect(self.return_url())


class AddCommentView(DiscussionActionView):
    """发表意见 on the case, about the task whose page it was written on (if any)."""

    def post(self, case_id: int) -> ResponseReturnValue:
        session = db()
        args = load_form(CommentFormSchema(), request.form)
        task = case_task(session, self.case, args['task_id'])
        add_comment(session, self.case, args['body'], actor=current_actor(), scope=current_scope(), task=task)
        flash(gettext('意见已发表。'), 'success')
        return redirect(self.return_url())


class AddAttachmentView(DiscussionActionView):
    """上传附件: checked by its content, kept with the case (and the task whose page it came from)."""

    def post(self, case_id: int) -> ResponseReturnValue:
        session = db()
        args = load_form(AttachmentFormSchema(), request.form)
        task = case_task(session, self.case, args['task_id'])
        upload = request.files.get('file')
        data = upload.read() if upload is not None else b''
        if upload is None or not (upload.filename or data):  # the form was sent without choosing a file
            raise ValidationFailed(MSG_INVALID, {'file': [MSG_NO_FILE]})
        attachment = store_attachment(session, self.case, upload.filename, data, actor=current_actor(),
                                      scope=current_scope(), task=task, settings=attachment_settings())
        flash(gettext('已上传附件“%(name)s”。', name=attachment.filename), 'success')
        return redirect(self.return_url())


class DownloadAttachmentView(PageView):
    """Download an attachment as it was uploaded; a file changed since is refused, never served."""

    def load(self, case_id: int, attachment_id: int) -> None:
        session, scope = db(), current_scope()
        self.case = get_case(session, case_id, scope)
        self.attachment = get_attachment(session, attachment_id, scope)
        if self.attachment.case_id != self.case.id:
            raise NotFound(N_('附件不存在'))

    def get(self, case_id: int, attachment_id: int) -> ResponseReturnValue:
        data = read_content(self.attachment, attachment_settings())
        record_download(db(), self.case, self.attachment, current_actor())
        return attachment_response(self.attachment, data)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, AttachmentUnreadable):
            return super().handle_error(exc)
        log.error('attachment %s of case %s cannot be served: %s', self.attachment.id, self.case.id, exc.message)
        return render_template('error.html', status=500, message=translate(exc.message)), 500


def request_too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
    """413 for an upload above ``MAX_CONTENT_LENGTH``: the body was never read, so say what the limit is."""
    message = gettext('上传的文件过大：附件不能超过 %(limit)s。请压缩或拆分后再上传。',
                      limit=size_text(attachment_settings().max_bytes))
    return render_template('error.html', status=413, message=message), 413
