"""Helpers of the task pages: loading list rows in few queries, naming groups, describing next steps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Session

from engine.definitions import process_bundle
from engine.forms import FormSpec
from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import Group, User
from engine.specs import UserTaskInfo


def prefetch(session: Session, tasks: Sequence[HumanTask]) -> None:
    """Load the cases, units and assignees of ``tasks`` in three queries.

    Many-to-one lazy loads look in the identity map first, so the table then renders without a
    query per row.
    """
    for model, ids in ((Case, {t.case_id for t in tasks}), (OrgUnit, {t.org_unit_id for t in tasks}),
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
