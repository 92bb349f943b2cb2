"""The user's notifications: the list, opening one (marks it read), marking all read. Only one's own."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import ngettext

from engine.notifications import get_notification, list_notifications, mark_all_read, mark_read, parse_before
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.pages import ActionView, PageView
from web.notifications.util import KIND_LABELS, target_url

PAGE_SIZE = 30


class NotificationListView(PageView):
    """通知: newest first, unread ones marked, keyset-paged."""

    def load(self) -> None:
        self.before = parse_before(request.args.get('before'))

    def get(self) -> ResponseReturnValue:
        page = list_notifications(db(), current_actor().id, before=self.before, limit=PAGE_SIZE)
        return render_template('notifications/list.html', page=page, kinds=KIND_LABELS, first=self.before is None)


class OpenNotificationView(ActionView):
    """Mark one notification read and go to its task (or its case, if the task is no longer in reach)."""

    def load(self, notification_id: int) -> None:
        self.notification = get_notification(db(), notification_id, current_actor())

    def post(self, notification_id: int) -> ResponseReturnValue:
        mark_read(db(), self.notification)
        return redirect(target_url(db(), current_scope(), self.notification))


class MarkAllReadView(ActionView):
    """Mark every unread notification read."""

    def post(self) -> ResponseReturnValue:
        count = mark_all_read(db(), current_actor())
        flash(ngettext('已将 %(num)s 条通知标为已读。', '已将 %(num)s 条通知标为已读。', count), 'success')
        return redirect(url_for('notifications.list_notifications'))
