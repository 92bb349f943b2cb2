"""Comments on a case, optionally about one of its tasks: written once, never edited, audited.

Like every operation these functions flush and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from engine import audit
from engine.access import Scope, can_view_case, refuse
from engine.clock import now
from engine.errors import ValidationFailed
from engine.i18n import N_, _
from engine.models.cases import Case
from engine.models.comments import Comment
from engine.models.tasks import HumanTask
from engine.models.users import User

#: the longest comment, in characters
MAX_BODY_LENGTH = 2000
#: how much of the text the audit event keeps
EXCERPT_LENGTH = 60
#: record ids above this cannot exist (and SQLite cannot even bind them)
MAX_RECORD_ID = 2**31 - 1

MSG_INVALID = N_('数据有误，请检查标出的字段。')
MSG_CASE_NOT_FOUND = N_('案件不存在')
MSG_BODY_EMPTY = N_('请填写意见内容。')
MSG_BODY_TOO_LONG = N_('意见不能超过 {max} 个字。')
MSG_TASK_NOT_OF_CASE = N_('该任务不属于此案件。')

# Line breaks and tabs are kept; every other control character (NUL, which PostgreSQL cannot store,
# escape sequences, bidi overrides) is dropped.
_UNWANTED = re.compile('[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]')


def ensure_case_visible(session: Session, case: Case, scope: Scope) -> None:
    """Raise NotFound unless ``scope`` may read ``case``: outsiders cannot tell it exists.

    :param case: the case written on
    :param scope: the caller's grants
    """
    if not can_view_case(session, scope, case):
        raise refuse(session, scope.user_id, 'case', case.id, case.org_path, MSG_CASE_NOT_FOUND)


def case_task(session: Session, case: Case, task_id: int | None) -> HumanTask | None:
    """The task ``task_id`` of ``case``, or None for no id.

    :param task_id: the id the caller named (from a form or a request body)
    :raise ValidationFailed: when the task does not exist or belongs to another case
    """
    if task_id is None:
        return None
    task = session.get(HumanTask, task_id) if 0 < task_id <= MAX_RECORD_ID else None
    if task is None or task.case_id != case.id:
        raise ValidationFailed(MSG_INVALID, {'task_id': [MSG_TASK_NOT_OF_CASE]})
    return task


def check_task(case: Case, task: HumanTask | None) -> None:
    """Refuse a task of another case.

    :raise ValidationFailed: when ``task`` is not one of ``case``'s tasks
    """
    if task is not None and task.case_id != case.id:
        raise ValidationFailed(MSG_INVALID, {'task_id': [MSG_TASK_NOT_OF_CASE]})


def clean_body(body: str) -> str:
    """The comment text as stored: unified line ends, control characters dropped, trimmed.

    :raise ValidationFailed: when nothing is left or it is longer than :data:`MAX_BODY_LENGTH`
    """
    text = _UNWANTED.sub('', body.replace('\r\n', '\n').replace('\r', '\n')).strip()
    if not text:
        raise ValidationFailed(MSG_INVALID, {'body': [MSG_BODY_EMPTY]})
    if len(text) > MAX_BODY_LENGTH:
        raise ValidationFailed(MSG_INVALID, {'body': [_(MSG_BODY_TOO_LONG).format(max=MAX_BODY_LENGTH)]})
    return text


def excerpt(text: str, length: int = EXCERPT_LENGTH) -> str:
    """The first ``length`` characters of ``text`` on one line, with an ellipsis when cut."""
    line = ' '.join(text.split())
    return line if len(line) <= length else f'{line[:length - 1]}…'


def add_comment(session: Session, case: Case, body: str, *, actor: User, scope: Scope,
                task: HumanTask | None = None) -> Comment:
    """Write a comment on ``case`` (about ``task`` when given) and audit it.

    :param case: the case
    :param body: the text (at most :data:`MAX_BODY_LENGTH` characters once trimmed)
    :param actor: the author
    :param scope: the author's grants: they must be able to view the case
    :param task: one of the case's tasks the comment is about
    :raise NotFound: when the actor may not view the case
    :raise ValidationFailed: for an empty or too long text, or a task of another case
    :return: the flushed comment
    """
    ensure_case_visible(session, case, scope)
    check_task(case, task)
    comment = Comment(case_id=case.id, task_id=task.id if task else None, author_id=actor.id,
                      body=clean_body(body), created_dt=now())
    session.add(comment)
    session.flush()
    audit.record(session, 'comment.added', actor=actor, case_id=case.id, task_id=comment.task_id,
                 org_path=case.org_path, after={'comment_id': comment.id, 'excerpt': excerpt(comment.body)})
    return comment


def comments_query(case: Case) -> sa.Select[tuple[Comment]]:
    """A select of the case's comments with their authors (unordered: callers order or page it)."""
    return sa.select(Comment).where(Comment.case_id == case.id).options(selectinload(Comment.author))


def list_comments(session: Session, case: Case) -> list[Comment]:
    """The case's comments, oldest first; the caller has already checked that the case is visible.

    :param case: a case the caller may view
    """
    return list(session.scalars(comments_query(case).order_by(Comment.created_dt, Comment.id)))
