"""URLs of the notifications area."""

from __future__ import annotations

from flask import Blueprint

from web.notifications.controllers import MarkAllReadView, NotificationListView, OpenNotificationView

bp = Blueprint('notifications', __name__, template_folder='templates')

bp.add_url_rule('/notifications', 'list_notifications', view_func=NotificationListView.as_view('list_notifications'),
                methods=['GET'])
bp.add_url_rule('/notifications/<int:notification_id>/read', 'open_notification',
                view_func=OpenNotificationView.as_view('open_notification'), methods=['POST'])
bp.add_url_rule('/notifications/read-all', 'mark_all_read', view_func=MarkAllReadView.as_view('mark_all_read'),
                methods=['POST'])
