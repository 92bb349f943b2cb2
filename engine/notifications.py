"""A user's in-app notifications: the unread count, a keyset-paged list, marking them read.

Notifications are written by the reminder and escalation jobs (:mod:`engine.reminders`). Every function
here takes the user they belong to: nobody reads or marks another person's notifications, and one
that is not theirs is reported as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.access import refuse
from engine.clock import now
from engine.errors import NotFound, ValidationFailed
from engine.models.notifications import Notification
from engine.models.users import User

__all__ = ['NotificationPage', 'count_unread', 'get_notification', 'list_notifications', 'mark_all_read',
           'mark_read', 'parse_before']


def count_unread(session: Session, user_id: int) -> int:
    """How many of the user's notifications are unread (one count on the partial unread index).

    :param user_id: the recipient
    """
    return session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_dt.is_(None))) or 0


@dataclass(frozen=True)
class NotificationPage:
    """One page of notifications, newest first, and the id to continue before (None on the last page)."""

    items: list[Notification]
    next_before: int | None


def parse_before(raw: str | None) -> int | None:
    """The ``before`` cursor of :func:`list_notifications` from a query string.

    :raise ValidationFailed: it is not a positive whole number
    """
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed('分页参数无效', {'before': ['无法识别的分页游标。']})
    return int(raw)


def list_notifications(session: Session, user_id: int, *, before: int | None = None,
                       limit: int = 50) -> NotificationPage:
    """The user's notifications, newest first, keyset-paged on id (ids grow with creation time).

    :param before: show only notifications older than this id (the previous page's ``next_before``)
    :param limit: page size
    """
    query = (sa.select(Notification).where(Notification.user_id == user_id)
             .order_by(Notification.id.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(Notification.id < before)
    rows = list(session.scalars(query))
    items = rows[:limit]
    return NotificationPage(items, items[-1].id if len(rows) > limit else None)


def get_notification(session: Session, notification_id: int, user: User) -> Notification:
    """One of ``user``'s notifications.

    :raise NotFound: there is none with that id, or it is someone else's
    """
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound('通知不存在')
    if notification.user_id != user.id:
        raise refuse(session, user.id, 'notification', notification_id, None, '通知不存在')
    return notification


def mark_read(session: Session, notification: Notification) -> Notification:
    """Mark one notification read (a notification already read keeps its first reading time)."""
    if notification.read_dt is None:
        notification.read_dt = now()
        session.flush()
    return notification


def mark_all_read(session: Session, user: User) -> int:
    """Mark every unread notification of ``user`` read.

    :return: how many were unread
    """
    result = session.execute(sa.update(Notification)
                             .where(Notification.user_id == user.id, Notification.read_dt.is_(None))
                             .values(read_dt=now()))
    return int(result.rowcount)  # type: ignore[attr-defined]
