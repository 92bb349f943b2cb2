"""Helpers of the task pages: loading list rows in few queries, naming groups, describing next steps, the
升级给我 tab, the task's upcoming reminders and whom they tell, and the task form (generic or hand-made)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext
from jinja2 import TemplateNotFound
from marshmallow import Schema
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import Scope
from engine.clock import LOCAL_ZONE
from engine.definitions import process_bundle
from engine.errors import NotFound
from engine.forms import FormSpec, registered_form
from engine.models.cases import Case
from engine.models.jobs import Job
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import Group, User
from engine.reminders import TASK_JOB_KINDS, escalation_target, reminder_recipients
from engine.specs import UserTaskInfo
from engine.tasks import view_clause
from web.core.forms import (
    SchemaForm,
    Widget,
    form_level_errors,
    initial_values,
    parse_indexed,
    schema_form,
    schema_values,
    submitted_data,
    submitted_values,
    widgets,
)
from web.core.templating import list_separator

#: the to-do tab of tasks escalated to the user's groups (not one of the engine's views)
ESCALATED = 'escalated'
#: form keys that may name a template file (``disputes.agreement`` → ``tasks/forms/disputes_agreement.html``)
_FORM_KEY = re.compile(r'^[A-Za-z0-9_.-]{1,128}$')


def prefetch(session: Session, tasks: Sequence[HumanTask]) -> None:
    """Load the cases, units (their own and those escalated to) and assignees of ``tasks`` in three queries.

    Many-to-one lazy loads look in the identity map first, so the table then renders without a
    query per row.
    """
    units = {t.org_unit_id for t in tasks} | {t.escalated_org_unit_id for t in tasks if t.escalated_org_unit_id}
    for model, ids in ((Case, {t.case_id for t in tasks}), (OrgUnit, units),
                       (User, {t.assignee_id for t in tasks if t.assignee_id})):
        if ids:
            session.scalars(sa.select(model).where(model.id.in_(ids))).all()


def group_names(session: Session, codes: Iterable[str | None]) -> dict[str, str]:
    """Display names of the group codes BPMN uses (``county_officer`` → 县级社区矫正机构)."""
    wanted = {code for code in codes if code}
    if not wanted:
        return {}
    rows = session.execute(sa.select(Group.code, Group.name).where(Group.code.in_(wanted)))
    return {code: name for code, name in rows}


def task_info(session: Session, task: HumanTask) -> UserTaskInfo | None:
    """The diagram's description of the task (title, documentation, form)."""
    return process_bundle(session, task.instance.definition).user_tasks.get(task.bpmn_id)


def task_form(session: Session, task: HumanTask) -> FormSpec:
    """The task's form; one without fields when the diagram declares none."""
    info = task_info(session, task)
    return info.form if info else FormSpec(key=None)


def describe_tasks(session: Session, tasks: Sequence[HumanTask]) -> str:
    """``“审核登记情况”（桃江县司法局 · 县级社区矫正机构）`` for each task, joined."""
    names = group_names(session, (t.candidate_group for t in tasks))
    parts = []
    for task in tasks:
        where = [task.org_unit.name]
        if task.assignee is not None:
            where.append(task.assignee.display_name)
        elif task.candidate_group:
            where.append(names.get(task.candidate_group, task.candidate_group))
        parts.append(f'“{task.title}”（{" · ".join(where)}）')
    return '；'.join(parts)


def next_step_message(session: Session, case: Case, tasks: Sequence[HumanTask]) -> str:
    """Where the case went: its open tasks and who has them, or that it is closed or waiting."""
    if tasks:
        return gettext('下一步：%(tasks)s。', tasks=describe_tasks(session, tasks))
    if case.status != 'open':
        return gettext('案件已办结。')
    return gettext('流程正在等待后续事件（期限或外部消息）。')


# -- the to-do tabs -------------------------------------------------------------------------------------

def tab_clause(scope: Scope, view: str) -> sa.ColumnElement[bool]:
    """The WHERE clause of a to-do tab: an engine view, or 升级给我 (overdue tasks escalated to my groups)."""
    return view_clause(scope, view)


# -- reminders and escalation on the task page ----------------------------------------------------------

@dataclass(frozen=True)
class UpcomingJob:
    """A pending reminder or escalation of a task: when it fires, and whom it tells, in words."""

    job: Job
    recipients: str

    @property
    def is_reminder(self) -> bool:
        """Reminders can be snoozed or cancelled; the escalation at the due time cannot."""
        return self.job.kind == 'reminder'

    @property
    def snooze_reason(self) -> str | None:
        """Why a supervisor put it off, if one did."""
        reason = self.job.payload.get('snooze_reason')
        return str(reason) if reason else None


def _people(users: Sequence[User], group: str | None, names: Mapping[str, str]) -> str:
    """``王芳`` for one person, ``司法所工作人员（3 人）`` for a group, a dash for nobody."""
    if not users:
        return gettext('（无人可通知）')
    if group is None or len(users) == 1:
        return list_separator().join(user.display_name for user in users)
    return gettext('%(group)s（%(count)s 人）', group=names.get(group, group), count=len(users))


def _reminder_recipients(session: Session, task: HumanTask, names: Mapping[str, str]) -> str:
    users = reminder_recipients(session, task)
    return _people(users, None if task.assignee_id else task.candidate_group, names)


def _escalation_recipients(session: Session, task: HumanTask, job: Job, names: Mapping[str, str]) -> str:
    group, level = str(job.payload.get('to') or 'supervisor'), str(job.payload.get('level') or 'same')
    unit, users = escalation_target(session, task, group, level)
    return f'{unit.name} · {_people(users, group, names)}'


def upcoming_jobs(session: Session, task: HumanTask) -> list[UpcomingJob]:
    """The task's pending reminder and escalation jobs, soonest first, with their recipients."""
    jobs = session.scalars(sa.select(Job).where(Job.human_task_id == task.id, Job.kind.in_(TASK_JOB_KINDS),
                                                Job.status == 'pending').order_by(Job.due_dt, Job.id)).all()
    if not jobs:
        return []
    names = group_names(session, [task.candidate_group, *(str(job.payload.get('to')) for job in jobs)])
    reminded = _reminder_recipients(session, task, names) if any(j.kind == 'reminder' for j in jobs) else ''
    return [UpcomingJob(job, reminded if job.kind == 'reminder'
                        else _escalation_recipients(session, task, job, names)) for job in jobs]


def task_reminder(session: Session, task: HumanTask, job_id: int) -> Job:
    """A reminder job of ``task``; NotFound for any other job (another task's, an escalation, a timer)."""
    job = session.get(Job, job_id)
    if job is None or job.human_task_id != task.id or job.kind != 'reminder':
        raise NotFound('提醒不存在')
    return job


@dataclass(frozen=True)
class ReminderForm:
    """What a supervisor typed into a reminder's snooze or cancel form, and its errors (shown again on 400)."""

    job_id: int
    action: str
    values: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[str, list[str]] = field(default_factory=dict)


# -- the task form: generic from camunda:formData, or a registered hand-made form ------------------------

def form_template(key: str | None) -> str | None:
    """The template of hand-made form ``key`` (dots become underscores), if there is one."""
    if not key or not _FORM_KEY.match(key):
        return None
    name = f'tasks/forms/{key.replace(".", "_")}.html'
    try:
        current_app.jinja_env.get_template(name)
    except TemplateNotFound:
        return None
    return name


def hand_made_schema(form: FormSpec) -> Schema | None:
    """The registered schema of the form's key, if the task uses a hand-made form."""
    schema_class = registered_form(form.key)
    return schema_class() if schema_class is not None else None


@dataclass(frozen=True)
class TaskFormView:
    """The task form ready for the page: generic widgets, or a hand-made form."""

    fields: list[Widget]
    form_errors: list[str]
    hand_form: SchemaForm | None = None


def task_form_view(session: Session, task: HumanTask, values: Mapping[str, str] | None,
                   errors: Mapping[str, list[str]], add_row: str | None = None) -> TaskFormView:
    """Lay out the task's form with ``values`` (None: pre-filled from the task's data).

    :param add_row: a hand-made form's list field that gets one more blank row
    """
    form = task_form(session, task)
    schema = hand_made_schema(form)
    if values is None:
        data = runtime.task_data(session, task) if task.is_open else {}
        values = schema_values(schema, data) if schema is not None else initial_values(form, data)
    if schema is not None:
        hand = schema_form(schema, values, errors, form_template(form.key), add_row)
        return TaskFormView([], hand.form_errors, hand)
    return TaskFormView(widgets(form, values, errors), form_level_errors(form, errors))


def submission(session: Session, task: HumanTask, formdata: Mapping[str, str]) -> dict[str, Any]:
    """The posted task form as data for ``runtime.complete_task`` (nested for a hand-made form)."""
    form = task_form(session, task)
    schema = hand_made_schema(form)
    return parse_indexed(schema, formdata) if schema is not None else submitted_data(form, formdata)


def resubmitted_values(session: Session, task: HumanTask, formdata: Mapping[str, str]) -> dict[str, str]:
    """What the user typed, to show again beside the errors.

    A hand-made form's rows come back as they were validated (blank rows dropped, the rest renumbered),
    so that an error at ``parties.1.name`` stands beside the row it is about.
    """
    form = task_form(session, task)
    schema = hand_made_schema(form)
    if schema is not None:
        return schema_values(schema, parse_indexed(schema, formdata))
    return submitted_values(form, formdata)


def when_text(value: datetime) -> str:
    """A datetime as the ``datetime-local`` input wants it (local time, minutes)."""
    return value.astimezone(LOCAL_ZONE).strftime('%Y-%m-%dT%H:%M')
