"""URLs of the admin area."""

from __future__ import annotations

from flask import Blueprint

from web.admin.controllers import AddOverrideView, CalendarView, RemoveOverrideView

bp = Blueprint('admin', __name__, template_folder='templates', url_prefix='/admin')

bp.add_url_rule('/calendar', 'show_calendar', view_func=CalendarView.as_view('show_calendar'), methods=['GET'])
bp.add_url_rule('/calendar', 'add_override', view_func=AddOverrideView.as_view('add_override'), methods=['POST'])
bp.add_url_rule('/calendar/overrides/<int:override_id>/remove', 'remove_override',
                view_func=RemoveOverrideView.as_view('remove_override'), methods=['POST'])
