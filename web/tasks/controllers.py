"""The to-do list and the task page: load → check access → act, nothing else."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine import runtime
from engine.clock import now
from engine.errors import EngineError, ValidationFailed
from engine.models.tasks import HumanTask
from engine.tasks import claim_task, count_tasks, list_tasks, unclaim_task
from web.cases.util import case_timeline
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import form_level_errors, initial_values, submitted_data, submitted_values, widgets
from web.core.pages import ActionView, PageView, translate
from web.tasks.util import group_names, next_step_message, prefetch, task_form, task_info

#: the tabs of the to-do list, in order
TABS = ('mine', 'group', 'due_soon', 'overdue')
PAGE_SIZE = 50
#: events shown at the foot of the task page; the case page has them all
TIMELINE_LENGTH = 8


class RootView(PageView):
    """``/`` is the to-do list."""

    def get(self) -> ResponseReturnValue:
        return redirect(url_for('tasks.list_tasks'))


class TaskListView(PageView):
    """待办: one tab per view with live counts, keyset-paged."""

    def load(self) -> None:
        self.view = request.args.get('view', 'mine')
        if self.view not in TABS:
            raise ValidationFailed('视图无效', {'view': [', '.join(TABS)]})

    def get(self) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        page = list_tasks(session, scope, self.view, cursor=request.args.get('cursor'), limit=PAGE_SIZE)
        prefetch(session, page.items)
        return render_template('tasks/list.html', view=self.view, tabs=TABS, page=page, now=now(),
                               counts={tab: count_tasks(session, scope, tab) for tab in TABS},
                               claimable={t.id for t in page.items if scope.can_claim(t)},
                               groups=group_names(session, (t.candidate_group for t in page.items)))


class TaskView(PageView):
    """Base of the views about one task: a task outside the caller's reach is a 404."""

    def load(self, task_id: int) -> None:
        self.task = runtime.get_task(db(), task_id, current_scope())
        self.fault_instance_id = self.task.instance_id


def _task_page(task: HumanTask, *, values: dict[str, str] | None = None,
               errors: dict[str, list[str]] | None = None, message: str | None = None) -> str:
    """The task page: case summary, documentation, the form, the buttons and the recent history."""
    session, scope, me = db(), current_scope(), current_actor()
    form, errors = task_form(session, task), errors or {}
    if values is None:
        values = initial_values(form, runtime.task_data(session, task)) if task.is_open else {}
    may_unclaim = task.is_open and task.assignee_id is not None and (
        task.assignee_id == me.id or scope.supervises_path(task.org_path))
    return render_template(
        'tasks/task.html', task=task, case=task.case, info=task_info(session, task),
        fields=widgets(form, values, errors), form_errors=form_level_errors(form, errors),
        message=translate(message) if message else None, can_complete=scope.can_complete(task),
        can_claim=scope.can_claim(task), can_unclaim=may_unclaim, now=now(),
        group=group_names(session, [task.candidate_group]).get(task.candidate_group or '', ''),
        history=case_timeline(session, task.case, latest=TIMELINE_LENGTH))


class ShowTaskView(TaskView):
    """The task page."""

    def get(self, task_id: int) -> ResponseReturnValue:
        return _task_page(self.task)


class CompleteTaskView(TaskView):
    """Submit the task form; invalid input shows the page again with every error by its field."""

    def post(self, task_id: int) -> ResponseReturnValue:
        session = db()
        data = submitted_data(task_form(session, self.task), request.form)
        _, opened = runtime.complete_task(session, self.task.id, data, actor=current_actor(),
                                          scope=current_scope())
        flash(gettext('已办理“%(task)s”（%(number)s）。%(next)s', task=self.task.title,
                      number=self.task.case.number, next=next_step_message(session, self.task.case, opened)),
              'success')
        return redirect(url_for('tasks.list_tasks'))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        # BaseView rolled back: the task is re-read as it was, and only the typed values come back.
        values = submitted_values(task_form(db(), self.task), request.form)
        return _task_page(self.task, values=values, errors=exc.fields, message=exc.message), 400


class TaskActionView(ActionView):
    """Base of the task buttons; like TaskView, a task outside the caller's reach is a 404."""

    def load(self, task_id: int) -> None:
        self.task = runtime.get_task(db(), task_id, current_scope())


class ClaimTaskView(TaskActionView):
    """Take a task from the group queue."""

    def post(self, task_id: int) -> ResponseReturnValue:
        claim_task(db(), self.task.id, actor=current_actor(), scope=current_scope())
        flash(gettext('已认领“%(task)s”（%(number)s）。', task=self.task.title, number=self.task.case.number),
              'success')
        return redirect(self.return_url())


class UnclaimTaskView(TaskActionView):
    """Give a task back to its group."""

    def post(self, task_id: int) -> ResponseReturnValue:
        unclaim_task(db(), self.task.id, actor=current_actor(), scope=current_scope())
        flash(gettext('已将“%(task)s”退回组内待认领。', task=self.task.title), 'success')
        return redirect(self.return_url())
