"""Pausable case clocks, and the due dates of human tasks.

A case clock (:class:`~engine.models.calendar.CaseClock`) is a named legal period of a whole case — the
30 working days a medical-dispute mediation has from acceptance — that stops while something else runs
(the 鉴定: 条例 §38 does not count it) and can be extended by agreement. Tasks take their due date from it
through their ``clock`` property; whenever its due date changes, every open task on it is recomputed and
its reminder jobs rescheduled.

Counting with pauses: the day a pause begins still counts; the days after it up to and including the
day the clock resumes do not (the resume day is not counted, like a start day, legal-rules §5), so the
due date moves by exactly the working days paused. An agreed extension replaces the due day; a pause
that begins after the extension moves the agreed day by the days it paused.

:func:`task_due` is what the runtime calls for every new human task; :func:`on_task_ready` and
:func:`on_task_completed` apply the ``clock.*`` hooks a task declares (``docs/deadlines.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import audit, reminders
from engine.calendar import WorkCalendar, load_calendar
from engine.clock import LOCAL_ZONE, get_clock, now
from engine.deadlines import (
    CLOCK_UNITS,
    DeadlineSyntaxError,
    compute_due,
    end_of_day,
    parse_clock_hooks,
    parse_rule,
    start_instant,
)
from engine.errors import Conflict, NotFound, ValidationFailed, WorkflowFault
from engine.models.calendar import CaseClock
from engine.models.cases import Case
from engine.models.tasks import HumanTask
from engine.models.users import User

__all__ = [
    'case_clock',
    'clock_due',
    'extend_clock',
    'on_task_completed',
    'on_task_ready',
    'pause_clock',
    'resume_clock',
    'start_clock',
    'stop_clock',
    'task_due',
]

Interval = tuple[date, date]


def _today() -> date:
    return get_clock().today()


_CLOCK = sa.select(CaseClock).where(CaseClock.case_id == sa.bindparam('case_id'),
                                    CaseClock.name == sa.bindparam('name'))


def case_clock(session: Session, case_id: int, name: str) -> CaseClock | None:
    """The case's clock called ``name``, if it was started."""
    return session.scalars(_CLOCK, {'case_id': case_id, 'name': name}).one_or_none()


# -- counting -------------------------------------------------------------------------------------------

def _intervals(clock: CaseClock, calendar: WorkCalendar) -> list[Interval]:
    """Finished pauses as (last counted day, last paused day)."""
    result = []
    for start, end in clock.pauses:
        resumed = date.fromisoformat(end)
        # As with a start day, a resume day that is a rest day counts as resumed on the next working day.
        last = calendar.roll_forward(resumed) if clock.unit == 'working_days' else resumed
        result.append((date.fromisoformat(start), last))
    return result


def _paused(day: date, intervals: Sequence[Interval]) -> bool:
    return any(start < day <= end for start, end in intervals)


def _counted_days(unit: str, intervals: Sequence[Interval], calendar: WorkCalendar) -> int:
    """How many days of ``unit`` the pauses took out."""
    total = 0
    for start, end in intervals:
        total += (calendar.working_days_between(start, end) if unit == 'working_days' else (end - start).days)
    return total


def _walk(unit: str, length: int, start: date, intervals: Sequence[Interval],
          calendar: WorkCalendar) -> tuple[date, date | None]:
    """The ``length``-th counted day after ``start``, skipping paused days; rolled for calendar days."""
    if unit == 'working_days':
        day = calendar.roll_forward(start)
        counted = 0
        while counted < length:
            day = calendar.next_workday(day)
            counted += not _paused(day, intervals)
        return day, None
    day, counted = start, 0
    while counted < length:
        day += timedelta(days=1)
        counted += not _paused(day, intervals)
    due = calendar.roll_forward(day)
    return due, (day if due != day else None)


def _extended(clock: CaseClock, intervals: Sequence[Interval], calendar: WorkCalendar) -> date:
    assert clock.extended_due_on is not None and clock.extended_on is not None
    later = [pause for pause in intervals if pause[0] >= clock.extended_on]
    shift = _counted_days(clock.unit, later, calendar)
    if not shift:
        return clock.extended_due_on
    if clock.unit == 'working_days':
        return calendar.add_working_days(clock.extended_due_on, shift)
    return calendar.roll_forward(clock.extended_due_on + timedelta(days=shift))


def clock_due(clock: CaseClock, calendar: WorkCalendar) -> tuple[datetime | None, dict[str, Any]]:
    """The clock's due time (None while paused) and its rule record."""
    intervals = _intervals(clock, calendar)
    record: dict[str, Any] = {
        'kind': 'clock', 'clock': clock.name, 'status': clock.status, 'unit': clock.unit,
        'length': clock.length, 'start': clock.start_on.isoformat(), 'from_field': None,
        'from_label': clock.from_label or '开始计时', 'from_missing': False, 'basis': clock.basis,
        'pauses': [list(pause) for pause in clock.pauses],
        'paused_days': _counted_days(clock.unit, intervals, calendar),
        'paused_since': clock.paused_since.isoformat() if clock.paused_since else None,
        'extension': ({'due_on': clock.extended_due_on.isoformat(), 'on': clock.extended_on.isoformat()
                       if clock.extended_on else None, 'reason': clock.extension_reason}
                      if clock.extended_due_on else None),
        'rolled_from': None, 'due_on': None, 'due': None,
    }
    due: datetime | None = None
    if clock.status != 'paused':
        if clock.extended_due_on is not None:
            due_day = _extended(clock, intervals, calendar)
        else:
            due_day, rolled = _walk(clock.unit, clock.length, clock.start_on, intervals, calendar)
            record['rolled_from'] = rolled.isoformat() if rolled else None
        due = end_of_day(due_day)
        record.update(due_on=due_day.isoformat(), due=due.astimezone(LOCAL_ZONE).isoformat())
    record['calendar'] = calendar.source()
    return due, record


def _recompute(session: Session, clock: CaseClock, case: Case, actor: User | None) -> None:
    """Recompute the clock's due date and carry it to every open task on the clock."""
    clock.due_dt, clock.due_rule = clock_due(clock, load_calendar(session, case.org_path))
    session.flush()
    tasks = session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == 'open')
                            .order_by(HumanTask.id)).all()
    for task in tasks:
        if task.due_rule and task.due_rule.get('kind') == 'clock' and task.due_rule.get('clock') == clock.name:
            _retime_task(session, task, clock, actor)


def _task_record(clock: CaseClock | None, name: str, extra: Mapping[str, Any]) -> tuple[datetime | None,
                                                                                      dict[str, Any]]:
    """A task's due time and rule from its clock (no due date unless the clock is running or extended)."""
    if clock is None:
        return None, {'kind': 'clock', 'clock': name, 'status': 'not_started', **extra}
    record = {**(clock.due_rule or {}), **extra, 'status': clock.status}
    if clock.status == 'stopped':
        return None, {**record, 'due': None}
    return clock.due_dt, record


def _retime_task(session: Session, task: HumanTask, clock: CaseClock, actor: User | None) -> None:
    extra = {key: (task.due_rule or {}).get(key) for key in ('reminders', 'escalate')}
    due_dt, record = _task_record(clock, clock.name, extra)
    if due_dt == task.due_dt and record == task.due_rule:
        return
    before = {'due_dt': task.due_dt}
    task.due_dt, task.due_rule = due_dt, record
    session.flush()
    if before['due_dt'] != due_dt:
        audit.record(session, 'task.due_changed', actor=actor, case_id=task.case_id, instance_id=task.instance_id,
                     task_id=task.id, org_path=task.org_path, before=before,
                     after={'due_dt': due_dt, 'clock': clock.name, 'clock_status': clock.status})
    reminders.schedule_task_jobs(session, task)


# -- operations -----------------------------------------------------------------------------------------

def _require(session: Session, case: Case, name: str) -> CaseClock:
    clock = case_clock(session, case.id, name)
    if clock is None:
        raise NotFound(f'案件没有名为“{name}”的期限')
    return clock


def _state(clock: CaseClock) -> dict[str, Any]:
    return {'name': clock.name, 'status': clock.status, 'due_dt': clock.due_dt,
            'paused_since': clock.paused_since, 'extended_due_on': clock.extended_due_on}


def _audit(session: Session, kind: str, clock: CaseClock, case: Case, actor: User | None,
           before: dict[str, Any] | None, note: str | None) -> None:
    audit.record(session, kind, actor=actor, case_id=case.id, org_path=case.org_path, before=before,
                 after={**_state(clock), 'pauses': clock.pauses}, note=note)


def start_clock(session: Session, case: Case, name: str, length: int, unit: str, start_on: date, *,
                actor: User | None, from_label: str | None = None, basis: str | None = None,
                note: str | None = None) -> CaseClock:
    """Start the case clock ``name``: ``length`` ``unit`` counted from the day after ``start_on``.

    :param unit: ``working_days`` or ``calendar_days``
    :param start_on: the day of the legal start event (not counted)
    :param from_label: words for that event, e.g. 受理
    :param basis: the article, e.g. 医疗纠纷预防和处理条例 §38
    :raises Conflict: the case already has a clock of that name
    """
    if unit not in CLOCK_UNITS:
        raise ValidationFailed('数据有误', {'unit': [f'可选值：{", ".join(CLOCK_UNITS)}']})
    if length < 0:
        raise ValidationFailed('数据有误', {'length': ['期限不能为负数。']})
    if case_clock(session, case.id, name) is not None:
        raise Conflict(f'案件已有名为“{name}”的期限')
    clock = CaseClock(case_id=case.id, name=name, length=length, unit=unit, start_on=start_on,
                      from_label=from_label, basis=basis, pauses=[], created_dt=now())
    session.add(clock)
    session.flush()
    _recompute(session, clock, case, actor)
    _audit(session, 'clock.started', clock, case, actor, None, note)
    return clock


def pause_clock(session: Session, case: Case, name: str, *, actor: User | None, on: date | None = None,
                note: str | None = None) -> CaseClock:
    """Stop counting after ``on`` (default today; that day still counts). Open tasks on it lose their due date.

    :raises Conflict: the clock is not running
    """
    clock = _require(session, case, name)
    before = _state(clock)
    clock.pause(on or _today())
    _recompute(session, clock, case, actor)
    _audit(session, 'clock.paused', clock, case, actor, before, note)
    return clock


def resume_clock(session: Session, case: Case, name: str, *, actor: User | None, on: date | None = None,
                 note: str | None = None) -> CaseClock:
    """Count again after ``on`` (default today; that day is not counted): the remaining days carry over.

    :raises Conflict: the clock is not paused
    """
    clock = _require(session, case, name)
    before = _state(clock)
    clock.resume(on or _today())
    _recompute(session, clock, case, actor)
    _audit(session, 'clock.resumed', clock, case, actor, before, note)
    return clock


def extend_clock(session: Session, case: Case, name: str, new_due: date, reason: str, *,
                 actor: User | None) -> CaseClock:
    """Set an agreed new due day (延长期限), replacing the computed one.

    :param new_due: the agreed last day
    :param reason: the agreement (required, audited)
    :raises Conflict: the clock is stopped
    """
    clock = _require(session, case, name)
    if clock.status == 'stopped':
        raise Conflict(f'期限“{name}”已停止，无法延长。')
    if not reason.strip():
        raise ValidationFailed('数据有误', {'reason': ['请填写延长理由。']})
    if new_due <= clock.start_on:
        raise ValidationFailed('数据有误', {'new_due': ['延长后的到期日须晚于起算日。']})
    before = _state(clock)
    clock.extended_due_on, clock.extended_on, clock.extension_reason = new_due, _today(), reason.strip()
    _recompute(session, clock, case, actor)
    _audit(session, 'clock.extended', clock, case, actor, before, reason.strip())
    return clock


def stop_clock(session: Session, case: Case, name: str, *, actor: User | None, note: str | None = None) -> CaseClock:
    """End the clock (its stage is over); open tasks on it lose their due date and reminders.

    :raises Conflict: the clock is already stopped
    """
    clock = _require(session, case, name)
    before = _state(clock)
    clock.stop(_today(), now())
    _recompute(session, clock, case, actor)
    _audit(session, 'clock.stopped', clock, case, actor, before, note)
    return clock


# -- the runtime's hooks --------------------------------------------------------------------------------

def task_due(session: Session, case: Case, org_path: str, properties: Mapping[str, str],
             data: Mapping[str, Any], created_dt: datetime) -> tuple[datetime | None, dict[str, Any] | None]:
    """The due time and rule record of a new task with ``properties`` (``(None, None)`` without a deadline).

    :param org_path: the task's unit, whose working-day calendar counts
    :param data: the task's data (the start-event field, the expedited flag)
    :param created_dt: when the task became ready (the default start)
    """
    try:
        rule = parse_rule(properties)
    except DeadlineSyntaxError as error:  # deployment checks this; a definition stored before may not be
        raise WorkflowFault(f'任务的期限设置有误：{error}') from None
    if rule is None:
        return None, None
    if rule.clock is not None:
        extra = {'reminders': [o.spec for o in rule.reminders],
                 'escalate': {'to': rule.escalation.group, 'level': rule.escalation.level}
                 if rule.escalation else {'to': 'supervisor', 'level': 'same'}}
        return _task_record(case_clock(session, case.id, rule.clock), rule.clock, extra)
    due = compute_due(rule, data, created_dt=created_dt, calendar=load_calendar(session, org_path))
    return (due.due_dt, due.record) if due else (None, None)


def _hook_note(task: HumanTask) -> str:
    return f'由任务“{task.title}”触发'


def on_task_ready(session: Session, task: HumanTask, properties: Mapping[str, str], actor: User | None) -> None:
    """Apply ``clock.pause`` of a task that just became ready (a running clock pauses today)."""
    hooks = parse_clock_hooks(properties)
    for name in hooks.pause:
        clock = case_clock(session, task.case_id, name)
        if clock is not None and clock.status == 'running':
            pause_clock(session, task.case, name, actor=actor, note=_hook_note(task))


def _date_value(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(LOCAL_ZONE).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return datetime.fromisoformat(value.strip()).date() if len(value.strip()) > 10 \
                else date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def on_task_completed(session: Session, task: HumanTask, properties: Mapping[str, str], data: Mapping[str, Any],
                      actor: User | None) -> None:
    """Apply the ``clock.start``, ``clock.resume``, ``clock.extend_field`` and ``clock.stop`` of a completed task.

    :param data: the task's data after completion (its form's values included)
    """
    hooks = parse_clock_hooks(properties)
    if not hooks:
        return
    case, note = task.case, _hook_note(task)
    start = hooks.start
    if start is not None and case_clock(session, case.id, start.name) is None:
        instant, _ = start_instant(start.from_field, data, now())
        start_clock(session, case, start.name, start.period.length, start.period.unit,
                    instant.astimezone(LOCAL_ZONE).date(), actor=actor, from_label=start.from_label,
                    basis=start.basis, note=note)
    for name in hooks.resume:
        clock = case_clock(session, case.id, name)
        if clock is not None and clock.status == 'paused':
            resume_clock(session, case, name, actor=actor, note=note)
    if hooks.extend is not None:
        _extend_from_data(session, task, hooks.extend, hooks.extend_field, hooks.extend_reason_field, data, actor)
    for name in hooks.stop:
        clock = case_clock(session, case.id, name)
        if clock is not None and clock.status != 'stopped':
            stop_clock(session, case, name, actor=actor, note=note)


def _extend_from_data(session: Session, task: HumanTask, name: str, field: str, reason_field: str | None,
                      data: Mapping[str, Any], actor: User | None) -> None:
    new_due = _date_value(data.get(field))
    clock = case_clock(session, task.case_id, name)
    if new_due is None or clock is None or clock.status == 'stopped' or clock.extended_due_on == new_due:
        return
    reason = str(data.get(reason_field) or '').strip() if reason_field else ''
    extend_clock(session, task.case, name, new_due, reason or f'双方同意延长（{_hook_note(task)}）', actor=actor)

