"""Helpers of the 意见与附件 panel: the attachment settings from the app's config, what the panel shows,
and the download response."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from flask import Response, current_app, url_for
from sqlalchemy.orm import Session

from engine import audit
from engine.access import can_view_case
from engine.attachments import ACCEPTED_KINDS, DEFAULT_MAX_BYTES, AttachmentSettings, list_attachments, size_text
from engine.comments import MAX_BODY_LENGTH, list_comments
from engine.models.cases import Case
from engine.models.comments import Attachment, Comment
from engine.models.tasks import HumanTask
from engine.models.users import User
from web.core.auth import current_scope
from web.core.database import db

#: the id of the panel on both pages; forms come back to it
ANCHOR = 'discussion'
#: characters a quoted ``filename=`` fallback may not hold
_UNSAFE_IN_QUOTES = frozenset('"\\;%')


def attachment_settings() -> AttachmentSettings:
    """The size limit and storage folder from the app's config (``ATTACHMENT_MAX_BYTES``, ``ATTACHMENT_FOLDER``)."""
    config = current_app.config
    folder = config.get('ATTACHMENT_FOLDER')
    return AttachmentSettings(max_bytes=int(config.get('ATTACHMENT_MAX_BYTES') or DEFAULT_MAX_BYTES),
                              folder=Path(folder) if folder else None)


@dataclass(frozen=True)
class Discussion:
    """What the panel shows: the comments and attachments of a case, seen from the case or one of its tasks.

    :param task: the task whose page shows the panel (its comments and files are marked), or None
    :param task_titles: titles of the tasks the comments and files are about
    :param return_to: the page the panel's forms come back to
    """

    case: Case
    task: HumanTask | None
    comments: list[Comment]
    attachments: list[Attachment]
    task_titles: dict[int, str]
    return_to: str
    max_size: str
    max_body: int
    accept: str

    def is_current(self, item: Comment | Attachment) -> bool:
        """Whether ``item`` was written on the task whose page this is."""
        return self.task is not None and item.task_id == self.task.id

    def about(self, item: Comment | Attachment) -> str | None:
        """The title of the (other) task ``item`` is about, if any."""
        if item.task_id is None or self.is_current(item):
            return None
        return self.task_titles.get(item.task_id)


def _task_titles(session: Session, items: list[Comment] | list[Attachment]) -> dict[int, str]:
    ids = {item.task_id for item in items if item.task_id is not None}
    if not ids:
        return {}
    rows = session.execute(sa.select(HumanTask.id, HumanTask.title).where(HumanTask.id.in_(ids)))
    return {task_id: title for task_id, title in rows}


def case_discussion(case: Case, task: HumanTask | None = None) -> Discussion | None:
    """The panel's content for ``case`` (a Jinja global), or None when the reader may not view the case.

    A task's page can be open to someone who does not see its case (a task at the receiving county of a
    residence change): they get no panel, rather than the case's comments.

    :param task: the task whose page includes the panel
    """
    session = db()
    if not can_view_case(session, current_scope(), case):
        return None
    comments, attachments = list_comments(session, case), list_attachments(session, case)
    titles = {**_task_titles(session, comments), **_task_titles(session, attachments)}
    accept = ','.join(ext for kind in ACCEPTED_KINDS for ext in kind.extensions)
    return Discussion(case, task, comments, attachments, titles, _page_of(case, task),
                      size_text(attachment_settings().max_bytes), MAX_BODY_LENGTH, accept)


def _page_of(case: Case, task: HumanTask | None) -> str:
    # Not request.path: the task page is also rendered by POST-only URLs (a reminder form sent back).
    if task is not None:
        return url_for('tasks.show_task', task_id=task.id, _anchor=ANCHOR)
    return url_for('cases.show_case', case_id=case.id, _anchor=ANCHOR)


def _ascii(text: str) -> str:
    """``text`` without accents and non-ASCII letters, safe inside a quoted header parameter."""
    plain = unicodedata.normalize('NFKD', text).encode('ascii', 'ignore').decode('ascii')
    return ''.join('_' if ch in _UNSAFE_IN_QUOTES or not ch.isprintable() else ch for ch in plain).strip()


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the exact name as RFC 5987 ``filename*``.

    ``扫描件.pdf`` → ``attachment; filename="attachment.pdf"; filename*=UTF-8''%E6%89%AB...pdf``.
    """
    stem, extension = os.path.splitext(filename)
    fallback = (_ascii(stem) or 'attachment') + _ascii(extension)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def record_download(session: Session, case: Case, attachment: Attachment, actor: User) -> None:
    """Audit a download (``attachment.downloaded``): attachments hold medical records and ID cards, so who
    took which file is kept, in the request's own unit of work."""
    audit.record(session, 'attachment.downloaded', actor=actor, case_id=case.id, org_path=case.org_path,
                 after={'attachment_id': attachment.id, 'filename': attachment.filename})


def attachment_response(attachment: Attachment, data: bytes) -> Response:
    """The file as a download: its checked type, never sniffed by the browser, never cached by a proxy."""
    response = Response(data, mimetype=attachment.content_type)
    response.headers['Content-Disposition'] = content_disposition(attachment.filename)
    response.headers['X-Content-Type-Options'] = 'nosniff'
    response.headers['Cache-Control'] = 'private, no-store'
    return response
