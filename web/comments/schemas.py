"""Input schemas of the panel's forms: the text of a comment, the task a comment or file is about."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.comments import MAX_RECORD_ID
from engine.i18n import N_

MSG_TASK_ID = N_('任务编号无效。')


def _task_id() -> fields.Integer:
    return fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_RECORD_ID, error=MSG_TASK_ID),
                          error_messages={'invalid': MSG_TASK_ID},
                          metadata={'description': '所涉及的任务（须属于本案件）'})


class AttachmentFormSchema(Schema):
    """Uploading a file (the file itself is read from ``request.files``): which task it is about, if any."""

    task_id = _task_id()


class CommentFormSchema(AttachmentFormSchema):
    """Writing a comment: its text (checked by ``engine.comments``) and the task it is about, if any."""

    body = fields.String(load_default='')
