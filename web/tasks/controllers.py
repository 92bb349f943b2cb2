"""The to-do list and the task page: load → check access → act, nothing else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from marshmallow import Schema

from engine import runtime
from engine import tasks as engine_tasks
from engine.access import can_view_case
from engine.deadlines import explain
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.filters import delete_filter, get_filter, save_filter
from engine.i18n import N_
from engine.models.definitions import ProcessDefinition
from engine.models.tasks import HumanTask
from engine.reminders import cancel_reminder, snooze_reminder
from engine.tasks import (
    VIEWS,
    TaskFilter,
    assign_task,
    bulk_assign,
    bulk_claim,
    claim_task,
    delegate_task,
    filter_clause,
    list_tasks,
    resolve_task,
    unclaim_task,
)
from web.admin.util import calendar_notice
from web.cases.util import case_documents, case_timeline, may_reveal
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import field_errors, load_form
from web.core.pages import ActionView, PageView, translate
from web.core.templating import is_chinese
from web.tasks.schemas import (
    AssignSchema,
    BulkActionSchema,
    CancelReminderSchema,
    DelegateSchema,
    ResolveSchema,
    SaveFilterSchema,
    SnoozeReminderSchema,
)
from web.tasks.util import (
    ALERT_VIEWS,
    DEFAULT_VIEW,
    VIEW_LABELS,
    ActionForm,
    ListState,
    ReminderForm,
    bulk_assignees,
    bulk_rows,
    colour_choices,
    count_text,
    counts_url,
    defers_counts,
    delegation_text,
    group_names,
    hand_over,
    is_alarm,
    latest_processes,
    next_step_message,
    process_choices,
    process_names,
    resubmitted_values,
    saved_chips,
    selected_ids,
    share_choices,
    sort_choices,
    stage_choices,
    submission,
    task_form_view,
    task_info,
    task_reminder,
    task_rows,
    unit_choices,
    upcoming_jobs,
    view_counts,
)

PAGE_SIZE = 50
#: events shown at the foot of the task page; the case page has them all
TIMELINE_LENGTH = 8
#: why a bookmarked or typed-in list address holding an ID number is refused
MSG_ID_IN_URL = N_('公民身份号码不能放在网址中，请在搜索框中输入后点击“筛选”。')
#: the button of a hand-made form's list that asks for one more blank row instead of submitting
ADD_ROW = 'add_row'


class RootView(PageView):
    """``/`` is the to-do list."""

    def get(self) -> ResponseReturnValue:
        return redirect(url_for('tasks.list_tasks'))


# -- the to-do list -----------------------------------------------------------------------------------------

def _filter_errors(exc: ValidationFailed) -> dict[str, list[str]]:
    """The engine's filter messages by input, translated; anything not about an input goes to ``_form``."""
    errors = {name: [translate(m) for m in messages] for name, messages in exc.fields.items()}
    if not errors:
        errors['_form'] = [translate(exc.message)]
    return errors


def _unit_errors(state: ListState) -> dict[str, list[str]]:
    """The org-unit filter's own error, checked apart so that it shows beside the others at once."""
    code = state.criteria.get('org_unit')
    if not code:
        return {}
    try:
        filter_clause(db(), current_scope(), TaskFilter(org_unit=code))
    except ValidationFailed as exc:
        return _filter_errors(exc)
    return {}


def _list_context(state: ListState, cursor: str | None) -> dict[str, Any]:
    """The tasks of one page of the list and the tab counts; filter errors instead of tasks when it is wrong."""
    session, scope = db(), current_scope()
    errors = {name: [translate(m) for m in messages] for name, messages in state.problems.items()}
    page, task_filter = None, None
    try:
        task_filter = state.task_filter()
        if not errors:
            page = list_tasks(session, scope, state.view, task_filter=task_filter, sort=state.sort, cursor=cursor,
                              limit=PAGE_SIZE)
    except ValidationFailed as exc:
        errors, task_filter = {**_unit_errors(state), **errors, **_filter_errors(exc)}, None
    if errors:
        task_filter = None  # the tabs count without a filter that is wrong
    definitions = latest_processes(session)
    rows = task_rows(session, scope, page.items, process_names(definitions)) if page else []
    # Views over a supervisor's unit or a county officer's county are counted after the page, as Camunda's Tasklist
    # loads its filter counts: at a million tasks a county supervisor's took 19 ms of a 54 ms page, a county
    # officer's about 20 ms of 50. An ID-number search keeps its counts in the page: the script's request would
    # carry the number in its URL.
    defer = defers_counts(scope) and not state.is_private and not errors
    return {'page': page, 'rows': rows, 'errors': errors, 'definitions': definitions,
            'counts': view_counts(session, scope, task_filter, defer=defer),
            'counts_url': counts_url(state) if defer else None}


def _filter_form(definitions: Sequence[ProcessDefinition], state: ListState,
                 tasks: Sequence[HumanTask]) -> dict[str, Any]:
    """The choices of the filter bar's selects, and the people the page's tasks may be assigned to."""
    session, scope = db(), current_scope()
    return {'processes': process_choices(definitions),
            'stages': stage_choices(session, definitions, state.criteria.get('process')),
            'units': unit_choices(session, scope, state.criteria.get('org_unit')), 'colours': colour_choices(),
            'sort_choices': sort_choices(), 'share_groups': share_choices(session, scope),
            'assignees': bulk_assignees(session, scope, tasks) if scope.supervisor_paths else []}


def _list_page(state: ListState, *, cursor: str | None = None, save_form: ActionForm | None = None,
               problems: Mapping[str, list[str]] | None = None) -> ResponseReturnValue:
    """待办: saved filters, tabs with counts, the filter bar, one page of rows and the bulk actions.

    Wrong filters (or a wrong name for a filter being saved) show the page with each message beside its
    input and answer 400.
    """
    scope = current_scope()
    context = _list_context(state, cursor)
    if problems:
        context.update(errors={**context['errors'], **problems}, rows=[], page=None)
    view = state.view if state.view in VIEWS else DEFAULT_VIEW
    html = render_template(
        'tasks/list.html', state=state, view=view, tabs=VIEWS, view_labels=VIEW_LABELS, alert_views=ALERT_VIEWS,
        count_text=count_text, count_cap=engine_tasks.COUNT_CAP, cursor=cursor,
        chips=saved_chips(db(), scope), save_form=save_form, may_assign=bool(scope.supervisor_paths),
        calendar_notice=calendar_notice() if scope.is_system_admin else None,
        **context, **_filter_form(context['definitions'], state, [row.task for row in context['rows']]))
    return html, 400 if context['errors'] or save_form else 200


class TaskListView(PageView):
    """待办: one tab per view with live counts, filters and sort in the URL, keyset-paged.

    ``?filter=<id>`` opens a saved filter: its view, filters and sort. Admins also see the calendar's
    coverage warning.
    """

    def load(self) -> None:
        raw = request.args.get('filter')
        if raw is None:
            self.state = ListState.from_args(request.args)
        elif raw.isdigit():
            self.state = ListState.of_saved(get_filter(db(), int(raw), current_scope()))
        else:
            raise NotFound(N_('筛选不存在'))

    def get(self) -> ResponseReturnValue:
        if request.args.get('filter') is None and self.state.is_private:
            raise ValidationFailed(MSG_ID_IN_URL, {'text': [MSG_ID_IN_URL]})
        return _list_page(self.state, cursor=request.args.get('cursor') or None)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed) and exc.message == MSG_ID_IN_URL:
            # Shown without the ID number, which the form must now post.
            return _list_page(self.state.cleared(), problems={'text': [translate(MSG_ID_IN_URL)]})
        return super().handle_error(exc)


class SearchTasksView(PageView):
    """The filter bar posts here: redirected to the bookmarkable query string, or, when the search text is an ID
    number, answered directly so that the number never appears in a URL, a server log or the browser history."""

    def post(self) -> ResponseReturnValue:
        state = ListState.from_args(request.form)
        if state.is_private:
            return _list_page(state, cursor=request.form.get('cursor') or None)
        return redirect(url_for('tasks.list_tasks', **state.params()), 303)


class SaveFilterView(ActionView):
    """保存当前筛选: the list's view, filters and sort under a name, personal or shared with a group of mine."""

    def post(self) -> ResponseReturnValue:
        args = load_form(SaveFilterSchema(), request.form)
        state = ListState.from_args(request.form)
        saved = save_filter(db(), args['name'], state.view, state.criteria, actor=current_actor(),
                            scope=current_scope(), sort=state.sort, share_group=args['share_group'])
        flash(gettext('已保存筛选“%(name)s”。', name=saved.name), 'success')
        return redirect(url_for('tasks.list_tasks', filter=saved.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        errors = {name: field_errors(exc.fields, name) for name in exc.fields}
        form = ActionForm('save_filter', {key: request.form.get(key, '') for key in ('name', 'share_group')}, errors)
        return _list_page(ListState.from_args(request.form), save_form=form)


class DeleteFilterView(ActionView):
    """Delete a saved filter; only its owner may (others get the reason and go back)."""

    def load(self, filter_id: int) -> None:
        self.saved = get_filter(db(), filter_id, current_scope())

    def post(self, filter_id: int) -> ResponseReturnValue:
        name = self.saved.name
        delete_filter(db(), self.saved.id, actor=current_actor(), scope=current_scope())
        flash(gettext('已删除筛选“%(name)s”。', name=name), 'success')
        return redirect(self.return_url())


class BulkActionView(ActionView):
    """批量认领 / 批量指派 the selected tasks: a page listing each task's outcome (成功, or why not)."""

    def post(self) -> ResponseReturnValue:
        args = load_form(BulkActionSchema(), request.form)
        session, scope, me = db(), current_scope(), current_actor()
        ids = selected_ids(request.form)
        if args['action'] == 'assign':
            results = bulk_assign(session, ids, args['assignee'], actor=me, scope=scope)
        else:
            results = bulk_claim(session, ids, actor=me, scope=scope)
        rows = bulk_rows(session, scope, results)
        return render_template('tasks/bulk_result.html', action=args['action'], rows=rows,
                               done=sum(row.ok for row in rows), return_url=self.return_url())

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed) and exc.fields:
            messages = [m for name in exc.fields for m in field_errors(exc.fields, name)]
            flash(' '.join(messages), 'error')
            return redirect(self.return_url())
        return super().handle_error(exc)


# -- one task ------------------------------------------------------------------------------------------------

class TaskView(PageView):
    """Base of the views about one task: a task outside the caller's reach is a 404."""

    def load(self, task_id: int) -> None:
        self.task = runtime.get_task(db(), task_id, current_scope())
        self.fault_instance_id = self.task.instance_id


def _task_page(task: HumanTask, *, values: Mapping[str, str] | None = None,
               errors: Mapping[str, list[str]] | None = None, message: str | None = None,
               reminder_form: ReminderForm | None = None, add_row: str | None = None,
               action_form: ActionForm | None = None) -> str:
    """The task page: case summary, deadline and reminders, documentation, the form, buttons (claim, hand
    over), recent history."""
    session, scope = db(), current_scope()
    form = task_form_view(session, task, values, errors or {}, add_row)
    jobs = upcoming_jobs(session, task) if task.is_open else []
    return render_template(
        'tasks/task.html', task=task, case=task.case, info=task_info(session, task), form=form,
        fields=form.fields, form_errors=form.form_errors, message=translate(message) if message else None,
        group=group_names(session, [task.candidate_group]).get(task.candidate_group or '', ''),
        rule=explain(task.due_rule, 'zh' if is_chinese() else 'en') if task.due_rule else None,
        jobs=jobs, has_deadline=bool(task.due_rule or task.due_dt or jobs or task.is_escalated),
        reminder_form=reminder_form, can_adjust_reminders=task.is_open and scope.supervises_path(task.org_path),
        history=case_timeline(session, task.case, latest=TIMELINE_LENGTH), **_task_buttons(task, action_form),
        # A task's candidates may work below a case they cannot open (a transfer); its documents stay the case's.
        documents=case_documents(session, task.case) if can_view_case(session, scope, task.case) else None,
        may_reveal=may_reveal(scope, task.case))


def _task_buttons(task: HumanTask, action_form: ActionForm | None) -> dict[str, Any]:
    """What the reader may do with the task: complete, claim, give back, delegate, resolve, assign."""
    session, scope, me = db(), current_scope(), current_actor()
    may_unclaim = task.is_open and task.assignee_id is not None and task.delegation_state != 'pending' and (
        task.assignee_id == me.id or scope.supervises_path(task.org_path))
    return {'can_complete': scope.can_complete(task), 'can_claim': scope.can_claim(task),
            'can_unclaim': may_unclaim, 'hand_over': hand_over(session, scope, task),
            'delegation': delegation_text(task, me.id), 'is_alarm': is_alarm(task),
            'action_form': action_form or ActionForm('')}


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


class HandOverView(TaskActionView):
    """Base of the task page's hand-over forms (delegate, resolve, assign).

    Invalid input shows the task page again with the errors beside the form's fields (400); a refusal
    (not the holder, a pending delegation) is flashed on the task page.
    """

    #: the input schema of the action's form
    schema: type[Schema]
    #: ``delegate``, ``resolve`` or ``assign``: which form shows the errors
    action: str

    def return_url(self) -> str:
        return url_for('tasks.show_task', task_id=self.task.id, _anchor='hand-over')

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed):
            errors = {name: field_errors(exc.fields, name) for name in exc.fields}
            if not errors:
                errors['_form'] = [translate(exc.message)]
            form = ActionForm(self.action, dict(request.form), errors)
            return _task_page(self.task, action_form=form), 400
        return super().handle_error(exc)


class DelegateTaskView(HandOverView):
    """委托他人办理: the holder hands the task to a colleague, who gives it back when done."""

    schema, action = DelegateSchema, 'delegate'

    def post(self, task_id: int) -> ResponseReturnValue:
        args = load_form(self.schema(), request.form)
        task = delegate_task(db(), self.task.id, args['delegate'], actor=current_actor(), scope=current_scope(),
                             note=args['note'])
        flash(gettext('已将“%(task)s”委托给 %(name)s。办结后将交回给您。', task=task.title,
                      name=task.assignee.display_name if task.assignee else ''), 'success')
        return redirect(self.return_url())


class ResolveTaskView(HandOverView):
    """办结委托并交回: the delegate gives the task back to its owner."""

    schema, action = ResolveSchema, 'resolve'

    def post(self, task_id: int) -> ResponseReturnValue:
        args = load_form(self.schema(), request.form)
        task = resolve_task(db(), self.task.id, actor=current_actor(), scope=current_scope(), note=args['note'])
        flash(gettext('已办结委托，“%(task)s”已交回 %(name)s。', task=task.title,
                      name=task.assignee.display_name if task.assignee else ''), 'success')
        return redirect(url_for('tasks.list_tasks'))  # the delegate may no longer see the task


class AssignTaskView(HandOverView):
    """指派: a supervisor of the task's unit hands it to one of its candidates."""

    schema, action = AssignSchema, 'assign'

    def post(self, task_id: int) -> ResponseReturnValue:
        args = load_form(self.schema(), request.form)
        task = assign_task(db(), self.task.id, args['assignee'], actor=current_actor(), scope=current_scope())
        flash(gettext('已将“%(task)s”指派给 %(name)s。', task=task.title,
                      name=task.assignee.display_name if task.assignee else ''), 'success')
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
