"""Case and instance search for supervisors: every process instance below the units they supervise (a
minor's case only from its county down, 社区矫正法 §54: ``engine.access.supervised_cases_clause``).

The filters are the to-do list's (``engine.tasks.TaskFilter``: process, stage, org unit, risk colour, date
ranges, case text) plus the instance's status, its definition version and whether a failure is recorded on
it. One row per instance, newest first, keyset-paged on the instance id; the instances' serialized state is
never read.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer, selectinload

from engine.access import Scope, supervised_cases_clause
from engine.clock import LOCAL_ZONE
from engine.db import starts_with
from engine.errors import AccessDenied, ValidationFailed
from engine.i18n import N_
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import INSTANCE_STATUSES, ProcessInstance
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.tasks import RISK_COLOURS, TEXT_MAX

__all__ = ['COUNT_CAP', 'InstanceFilter', 'InstanceHit', 'InstancePage', 'count_instances', 'search_instances']

#: counts stop here ("1000+")
COUNT_CAP = 1000
PAGE_MAX = 200
_ID_NUMBER = re.compile(r'^(\d{17}[\dXx]|\d{15})$')
_DATE_KEYS = ('started_from', 'started_to', 'due_from', 'due_to')
_TEXT_KEYS = ('process', 'stage', 'org_unit', 'text')
_YES = ('1', 'true', 'yes', 'on')
_NO = ('0', 'false', 'no', 'off')
MSG_INVALID = N_('筛选条件有误')
MSG_DATE = N_('请按“年-月-日”填写日期。')
MSG_RANGE = N_('结束日期不能早于开始日期。')
MSG_TOO_LONG = N_('输入过长。')
MSG_VERSION = N_('版本应为正整数。')
MSG_YES_NO = N_('应为“是”或“否”。')
MSG_UNIT = N_('该机构不在您的辖区内。')
MSG_CURSOR = N_('无法识别的分页游标。')
MSG_ONLY_SUPERVISORS = N_('只有主管领导可以检索辖区内的案件与流程实例。')


@dataclass(frozen=True)
class InstanceFilter:
    """What an instance search asks for; every field narrows, None leaves it open.

    :param process: the definition key
    :param stage: a user task's BPMN id: instances with an open task there
    :param org_unit: an org unit code within the caller's supervised subtrees: its cases and those below
    :param risk_colour: the case's 三色 colour
    :param started_from: instances started on or after this local day
    :param started_to: ... on or before this local day
    :param due_from: instances with an open task due on or after this local day
    :param due_to: ... due on or before this local day
    :param text: a case number or its start, a person's name or its start, or an ID number (exactly)
    :param status: running / waiting / completed / error / suspended
    :param version: the definition version number
    :param has_error: True: a failure is recorded on the instance; False: none is
    """

    process: str | None = None
    stage: str | None = None
    org_unit: str | None = None
    risk_colour: str | None = None
    started_from: date | None = None
    started_to: date | None = None
    due_from: date | None = None
    due_to: date | None = None
    text: str | None = None
    status: str | None = None
    version: int | None = None
    has_error: bool | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InstanceFilter:
        """Read and check filter values given as text (a query string); unknown keys are ignored.

        :raises ValidationFailed: naming every field that is wrong
        """
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for key in (*_TEXT_KEYS, *_DATE_KEYS, 'risk_colour', 'status', 'version', 'has_error'):
            text = str(raw.get(key) or '').strip()
            if text:
                try:
                    values[key] = _parse(key, text)
                except ValueError as exc:
                    errors[key] = [str(exc)]
        for lower, upper in (('started_from', 'started_to'), ('due_from', 'due_to')):
            if lower in values and upper in values and values[lower] > values[upper]:
                errors[upper] = [MSG_RANGE]
        if errors:
            raise ValidationFailed(MSG_INVALID, errors)
        return cls(**values)

    def to_dict(self) -> dict[str, str]:
        """The filter as text values (for links): only the fields that are set."""
        out = {}
        for key in (*_TEXT_KEYS, *_DATE_KEYS, 'risk_colour', 'status', 'version', 'has_error'):
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool):
                out[key] = '1' if value else '0'
            else:
                out[key] = value.isoformat() if isinstance(value, date) else str(value)
        return out


def _parse(key: str, text: str) -> Any:
    """One filter value from its text; ValueError carries the message (a msgid)."""
    if key in _DATE_KEYS:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(MSG_DATE) from None
    if key == 'risk_colour' and text not in RISK_COLOURS:
        raise ValueError(N_('可选值：red, yellow, green。'))
    if key == 'status' and text not in INSTANCE_STATUSES:
        raise ValueError(N_('可选值：running, waiting, completed, error, suspended。'))
    if key == 'version':
        if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < 1:
            raise ValueError(MSG_VERSION)
        return int(text)
    if key == 'has_error':
        if text.lower() not in (*_YES, *_NO):
            raise ValueError(MSG_YES_NO)
        return text.lower() in _YES
    if len(text) > (TEXT_MAX if key == 'text' else 128):
        raise ValueError(MSG_TOO_LONG)
    return text


# -- the query -----------------------------------------------------------------------------------------------

def day_range(column: Any, start: date | None, end: date | None) -> list[sa.ColumnElement[bool]]:
    """``column`` within the local (Beijing) calendar days ``start`` to ``end``, both included."""
    clauses = []
    if start is not None:
        clauses.append(column >= datetime.combine(start, time(), tzinfo=LOCAL_ZONE))
    if end is not None:
        clauses.append(column < datetime.combine(end + timedelta(days=1), time(), tzinfo=LOCAL_ZONE))
    return clauses


def require_supervisor(scope: Scope) -> None:
    """Raise AccessDenied unless the caller supervises some unit."""
    if not scope.supervisor_paths:
        raise AccessDenied(MSG_ONLY_SUPERVISORS)


def _unit_path(session: Session, scope: Scope, code: str) -> str:
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    if unit is None or not scope.supervises_path(unit.path):
        raise ValidationFailed(MSG_INVALID, {'org_unit': [MSG_UNIT]})
    return unit.path


def _text_clause(text: str) -> sa.ColumnElement[bool]:
    if _ID_NUMBER.match(text):
        return Case.id_number == text.upper()
    return sa.or_(starts_with(Case.number, text.upper()), starts_with(Case.person_name, text))


def _open_task_where(*clauses: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """Instances with an open task matching ``clauses``."""
    return sa.exists().where(HumanTask.instance_id == ProcessInstance.id, HumanTask.status == 'open', *clauses)


def filter_clauses(session: Session, scope: Scope, wanted: InstanceFilter) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``wanted`` over instances joined to their case and definition.

    :raises ValidationFailed: the org unit lies outside the caller's supervised subtrees
    """
    clauses: list[sa.ColumnElement[bool]] = []
    if wanted.process:
        clauses.append(ProcessDefinition.key == wanted.process)
    if wanted.version is not None:
        clauses.append(ProcessDefinition.version == wanted.version)
    if wanted.status:
        clauses.append(ProcessInstance.status == wanted.status)
    if wanted.has_error is not None:
        clauses.append(ProcessInstance.error_message.is_not(None) if wanted.has_error
                       else ProcessInstance.error_message.is_(None))
    if wanted.org_unit:
        clauses.append(starts_with(Case.org_path, _unit_path(session, scope, wanted.org_unit)))
    if wanted.risk_colour:
        clauses.append(Case.risk_colour == wanted.risk_colour)
    if wanted.text:
        clauses.append(_text_clause(wanted.text))
    clauses += day_range(ProcessInstance.created_dt, wanted.started_from, wanted.started_to)
    if wanted.stage:
        clauses.append(_open_task_where(HumanTask.bpmn_id == wanted.stage))
    due = day_range(HumanTask.due_dt, wanted.due_from, wanted.due_to)
    if due:
        clauses.append(_open_task_where(*due))
    return clauses


def _base_query(session: Session, scope: Scope, wanted: InstanceFilter) -> sa.Select[Any]:
    require_supervisor(scope)
    return (sa.select(ProcessInstance, Case, ProcessDefinition)
            .join(Case, Case.id == ProcessInstance.case_id)
            .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
            .where(supervised_cases_clause(scope), *filter_clauses(session, scope, wanted)))


@dataclass(frozen=True)
class InstanceHit:
    """One instance found, with its case, its definition version and its open tasks (oldest first)."""

    instance: ProcessInstance
    case: Case
    definition: ProcessDefinition
    open_tasks: list[HumanTask] = field(default_factory=list)


@dataclass(frozen=True)
class InstancePage:
    """One page of hits, newest first, and the cursor (an instance id) of the next page."""

    hits: list[InstanceHit]
    next_cursor: int | None


def parse_cursor(raw: str | None) -> int | None:
    """The ``before`` cursor: the id of the last instance shown.

    :raises ValidationFailed: it is not a plain number
    """
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ValidationFailed(N_('分页参数无效'), {'before': [MSG_CURSOR]})
    return int(raw)


def search_instances(session: Session, scope: Scope, wanted: InstanceFilter, *, before: int | None = None,
                     limit: int = 50) -> InstancePage:
    """The instances below the caller's supervised units matching ``wanted``, newest first.

    :param before: the ``next_cursor`` of the previous page
    :param limit: page size (1–200)
    :raises AccessDenied: the caller supervises nothing
    :raises ValidationFailed: a bad page size, or an org unit outside the caller's subtrees
    """
    if not 1 <= limit <= PAGE_MAX:
        raise ValidationFailed(N_('分页参数无效'), {'limit': [N_('每页条数应在 1 到 200 之间。')]})
    query = (_base_query(session, scope, wanted).options(defer(ProcessInstance.state), selectinload(Case.org_unit))
             .order_by(ProcessInstance.id.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(ProcessInstance.id < before)
    rows = session.execute(query).all()
    shown = rows[:limit]
    tasks = _open_tasks(session, [instance.id for instance, _, _ in shown])
    hits = [InstanceHit(instance, case, definition, tasks.get(instance.id, []))
            for instance, case, definition in shown]
    return InstancePage(hits, shown[-1][0].id if len(rows) > limit else None)


def _open_tasks(session: Session, instance_ids: Sequence[int]) -> dict[int, list[HumanTask]]:
    """The open tasks of the given instances, by instance, in one query."""
    by_instance: defaultdict[int, list[HumanTask]] = defaultdict(list)
    if instance_ids:
        for task in session.scalars(sa.select(HumanTask).where(HumanTask.instance_id.in_(instance_ids),
                                                               HumanTask.status == 'open').order_by(HumanTask.id)):
            by_instance[task.instance_id].append(task)
    return dict(by_instance)


def count_instances(session: Session, scope: Scope, wanted: InstanceFilter, *, cap: int = COUNT_CAP) -> int:
    """How many instances match, counting no further than ``cap`` + 1 (the page shows "1000+")."""
    limited = _base_query(session, scope, wanted).with_only_columns(ProcessInstance.id).limit(cap + 1).subquery()
    return session.scalar(sa.select(sa.func.count()).select_from(limited)) or 0
