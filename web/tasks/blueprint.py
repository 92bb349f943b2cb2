"""URLs of the tasks area."""

from __future__ import annotations

from flask import Blueprint

from web.tasks.controllers import (
    ClaimTaskView,
    CompleteTaskView,
    RootView,
    ShowTaskView,
    TaskListView,
    UnclaimTaskView,
)

bp = Blueprint('tasks', __name__, template_folder='templates')

bp.add_url_rule('/', 'show_home', view_func=RootView.as_view('show_home'))
bp.add_url_rule('/tasks', 'list_tasks', view_func=TaskListView.as_view('list_tasks'))
bp.add_url_rule('/tasks/<int:task_id>', 'show_task', view_func=ShowTaskView.as_view('show_task'),
                methods=['GET'])
bp.add_url_rule('/tasks/<int:task_id>', 'complete_task', view_func=CompleteTaskView.as_view('complete_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/claim', 'claim_task', view_func=ClaimTaskView.as_view('claim_task'),
                methods=['POST'])
bp.add_url_rule('/tasks/<int:task_id>/unclaim', 'unclaim_task',
                view_func=UnclaimTaskView.as_view('unclaim_task'), methods=['POST'])
