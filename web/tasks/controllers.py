"""The to-do list and the task page: load → check access → act, nothing else."""

from __future__ import annotations

from collections.abc import Mapping

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from marshmallow import Schema

from engine import runtime
from engine.access import ADMIN
from engine.deadlines import explain
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.tasks import HumanTask
from engine.reminders import cancel_reminder, snooze_reminder
from engine.tasks import claim_task, count_where, query_tasks, unclaim_task
from web.admin.util import calendar_notice
from web.cases.util import case_timeline
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import field_errors, load_form
from web.core.pages import ActionView, PageView, translate
from web.core.templating import is_chinese
from web.tasks.schemas import CancelReminderSchema, SnoozeReminderSchema
from web.tasks.util import (
    ESCALATED,
    ReminderForm,
    group_names,
    next_step_message,
    prefetch,
    resubmitted_values,
    submission,
    tab_clause,
    task_form_view,
    task_info,
    task_reminder,
    upcoming_jobs,
)

#: the tabs of the to-do list, in order
TABS = ('mine', 'group', 'due_soon', 'overdue', ESCALATED)
PAGE_SIZE = 50
#: events shown at the foot of the task page; the case page has them all
TIMELINE_LENGTH = 8
#: the button of a hand-made form's list that asks for one more blank row instead of submitting
ADD_ROW = 'add_row'


class RootView(PageView):
    """``/`` is the to-do list."""

    def get(self) -> ResponseReturnValue:
        return redirect(url_for('tasks.list_tasks'))


class TaskListView(PageView):
    """待办: one tab per view with live counts, keyset-paged; admins also see the calendar's coverage warning."""

    def load(self) -> None:
        self.view = request.args.get('view', 'mine')
        if self.view not in TABS:
            raise ValidationFailed('视图无效', {'view': [', '.join(TABS)]})

    def get(self) -> ResponseReturnValue:
        session, scope = db(), current_scope()
        page = query_tasks(session, tab_clause(scope, self.view), cursor=request.args.get('cursor'),
                                limit=PAGE_SIZE)
        prefetch(session, page.items)
        return render_template('tasks/list.html', view=self.view, tabs=TABS, page=page,
                               counts={tab: count_where(session, tab_clause(scope, tab)) for tab in TABS},
                               claimable={t.id for t in page.items if scope.can_claim(t)},
                               groups=group_names(session, (t.candidate_group for t in page.items)),
                               calendar_notice=calendar_notice() if scope.has_role(ADMIN) else None)


class TaskView(PageView):
    """Base of the views about one task: a task outside the caller's reach is a 404."""

    def load(self, task_id: int) -> None:
        self.task = runtime.get_task(db(), task_id, current_scope())
        self.fault_instance_id = self.task.instance_id


def _task_page(task: HumanTask, *, values: Mapping[str, str] | None = None,
               errors: Mapping[str, list[str]] | None = None, message: str | None = None,
               reminder_form: ReminderForm | None = None, add_row: str | None = None) -> str:
    """The task page: case summary, deadline and reminders, documentation, the form, buttons, recent history."""
    session, scope, me = db(), current_scope(), current_actor()
    form = task_form_view(session, task, values, errors or {}, add_row)
    jobs = upcoming_jobs(session, task) if task.is_open else []
    may_unclaim = task.is_open and task.assignee_id is not None and (
        task.assignee_id == me.id or scope.supervises_path(task.org_path))
    return render_template(
        'tasks/task.html', task=task, case=task.case, info=task_info(session, task), form=form,
        fields=form.fields, form_errors=form.form_errors, message=translate(message) if message else None,
        can_complete=scope.can_complete(task), can_claim=scope.can_claim(task), can_unclaim=may_unclaim,
        group=group_names(session, [task.candidate_group]).get(task.candidate_group or '', ''),
        rule=explain(task.due_rule, 'zh' if is_chinese() else 'en') if task.due_rule else None,
        jobs=jobs, has_deadline=bool(task.due_rule or task.due_dt or jobs or task.is_escalated),
        reminder_form=reminder_form,
        can_adjust_reminders=task.is_open and scope.supervises_path(task.org_path),
        history=case_timeline(session, task.case, latest=TIMELINE_LENGTH))


class ShowTaskView(TaskView):
    """The task page."""

    def get(self, task_id: int) -> ResponseReturnValue:
        return _task_page(self.task)


class CompleteTaskView(TaskView):
    """Submit the task form; invalid input shows the page again with every error by its field."""

    def post(self, task_id: int) -> ResponseReturnValue:
        session = db()
        if request.form.get(ADD_ROW):  # a hand-made form's 增加一行: show the form again, complete nothing
            values = resubmitted_values(session, self.task, request.form)
            return _task_page(self.task, values=values, add_row=request.form[ADD_ROW])
        _, opened = runtime.complete_task(session, self.task.id, submission(session, self.task, request.form),
                                          actor=current_actor(), scope=current_scope())
        flash(gettext('已办理“%(task)s”（%(number)s）。%(next)s', task=self.task.title,
                      number=self.task.case.number, next=next_step_message(session, self.task.case, opened)),
              'success')
        return redirect(url_for('tasks.list_tasks'))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        # BaseView rolled back: the task is re-read as it was, and only the typed values come back.
        values = resubmitted_values(db(), self.task, request.form)
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


class ReminderActionView(ActionView):
    """Base of a supervisor's snooze and cancel of one of the task's pending reminders.

    A task or reminder out of reach is a 404; someone who sees the task but does not supervise its unit
    gets a 403. Invalid input shows the task page again with the errors beside the reminder's fields.
    """

    #: the input schema of the action's form
    schema: type[Schema]
    #: ``snooze`` or ``cancel``: which of the reminder's forms shows the errors
    action: str

    def load(self, task_id: int, job_id: int) -> None:
        self.task = runtime.get_task(db(), task_id, current_scope())
        self.job = task_reminder(db(), self.task, job_id)

    def check_access(self) -> None:
        if not current_scope().supervises_path(self.task.org_path):
            raise AccessDenied(N_('只有该机构的主管可以调整提醒。'))

    def return_url(self) -> str:
        return url_for('tasks.show_task', task_id=self.task.id, _anchor='reminders')

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed):
            errors = {name: field_errors(exc.fields, name) for name in exc.fields}
            form = ReminderForm(self.job.id, self.action, dict(request.form), errors)
            return _task_page(self.task, reminder_form=form), 400
        if isinstance(exc, AccessDenied | NotFound):
            return PageView.handle_error(self, exc)
        return super().handle_error(exc)


class SnoozeReminderView(ReminderActionView):
    """推迟提醒: the reminder fires at the new time instead; the reason goes to the audit log."""

    schema, action = SnoozeReminderSchema, 'snooze'

    def post(self, task_id: int, job_id: int) -> ResponseReturnValue:
        args = load_form(self.schema(), request.form)
        snooze_reminder(db(), self.job.id, args['until'], args['reason'], actor=current_actor(),
                        scope=current_scope())
        flash(gettext('提醒已推迟。'), 'success')
        return redirect(self.return_url())


class CancelReminderView(ReminderActionView):
    """取消提醒: the reminder never fires, even if the due date changes; the reason goes to the audit log."""

    schema, action = CancelReminderSchema, 'cancel'

    def post(self, task_id: int, job_id: int) -> ResponseReturnValue:
        args = load_form(self.schema(), request.form)
        cancel_reminder(db(), self.job.id, args['reason'], actor=current_actor(), scope=current_scope())
        flash(gettext('提醒已取消。'), 'success')
        return redirect(self.return_url())
