"""URLs of the tasks area."""

from __future__ import annotations

from flask import Blueprint

from web.tasks.controllers import (
    AssignTaskView,
    BulkActionView,
    CancelReminderView,
    ClaimTaskView,
    CompleteTaskView,
    DelegateTaskView,
    DeleteFilterView,
    ResolveTaskView,
    RootView,
    SaveFilterView,
    SearchTasksView,
    ShowTaskView,
    SnoozeReminderView,
    TaskListView,
    UnclaimTaskView,
)

bp = Blueprint('tasks', __name__, template_folder='templates')

bp.add_url_rule('/', 'show_home', view_func=RootView.as_view('show_home'))
bp.add_url_rule('/tasks', 'list_tasks', view_func=TaskListView.as_view('list_tasks'), methods=['GET'])
bp.add_url_rule('/tasks', 'search_tasks', view_func=SearchTasksView.as_view('search_tasks'), methods=['POST'])
bp.add_url_rule('/tasks/bulk', 'act_on_tasks', view_func=BulkActionView.as_view('act_on_tasks'), methods=['POST'])
bp.add_url_rule('/tasks/filters', 'save_filter', view_func=SaveFilterView.as_view('save_filter'), methods=['POST'])
bp.add_url_rule('/tasks/filters/<int:filter_id>/delete', 'delete_filter',
                view_func=DeleteFilterView.as_view('delete_filter'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>', 'show_task', view_func=ShowTaskView.as_view('show_task'),
                methods=['GET'])
bp.add_url_rule('/tasks/<int:task_id>', 'complete_task', view_func=CompleteTaskView.as_view('complete_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/claim', 'claim_task', view_func=ClaimTaskView.as_view('claim_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/unclaim', 'unclaim_task',
                view_func=UnclaimTaskView.as_view('unclaim_task'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/delegate', 'delegate_task',
                view_func=DelegateTaskView.as_view('delegate_task'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/resolve', 'resolve_task',
                view_func=ResolveTaskView.as_view('resolve_task'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/assign', 'assign_task', view_func=AssignTaskView.as_view('assign_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/reminders/<int:job_id>/snooze', 'snooze_reminder',
                view_func=SnoozeReminderView.as_view('snooze_reminder'), methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/reminders/<int:job_id>/cancel', 'cancel_reminder',
                view_func=CancelReminderView.as_view('cancel_reminder'), methods=['POST'])
