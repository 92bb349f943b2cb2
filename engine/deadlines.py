"""Deadline rules declared on user tasks, and the legal counting of due dates.

A designer sets ``camunda:properties`` on a user task (the syntax is in ``docs/deadlines.md``); this
module parses them into a :class:`DeadlineRule` (and :class:`ClockHooks` for pausable case clocks),
checks them at deployment (:func:`check_task_properties`), computes a due time with the law's counting
rules (:func:`compute_due`, :func:`period_end`), the reminder ladder (:func:`reminder_times`), and puts a
due date's rule record into words (:func:`explain`).

Counting (legal-rules §1): the start day is not counted; a calendar-day or month period whose last day
is a rest day ends on the next working day; hours run straight through; working days skip weekends
and holidays and include 调休 working days. A day-based period ends at 23:59:59 local time.

Pure: no database; the calendar is passed in.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Final

from engine.clock import LOCAL_ZONE
from engine.i18n import N_, _

if TYPE_CHECKING:
    from engine.calendar import WorkCalendar

__all__ = [
    'CLOCK_UNITS',
    'ESCALATION_LEVELS',
    'REMINDER_HOUR',
    'UNITS',
    'ClockHooks',
    'ClockStart',
    'DeadlineRule',
    'DeadlineSyntaxError',
    'Due',
    'Escalation',
    'Period',
    'ReminderOffset',
    'check_task_properties',
    'compute_due',
    'end_of_day',
    'explain',
    'is_truthy',
    'parse_clock_hooks',
    'parse_period',
    'parse_reminders',
    'parse_rule',
    'period_end',
    'reminder_times',
    'start_instant',
]

UNITS: Final = ('working_days', 'calendar_days', 'hours', 'months')
#: units a pausable case clock may count in
CLOCK_UNITS: Final = ('working_days', 'calendar_days')
ESCALATION_LEVELS: Final = ('same', 'parent', 'county', 'city', 'province')
#: reminders given in days fire at this local hour
REMINDER_HOUR: Final = 9
#: longest period accepted, in its unit
MAX_LENGTH: Final = 3650
MAX_REMINDERS: Final = 10

_UNIT_WORDS: Final = {
    **dict.fromkeys(('working_days', 'working_day', 'workdays', 'workday', 'wd', '工作日'), 'working_days'),
    **dict.fromkeys(('calendar_days', 'calendar_day', 'days', 'day', 'd', '日', '天', '自然日'), 'calendar_days'),
    **dict.fromkeys(('hours', 'hour', 'h', '小时', '时'), 'hours'),
    **dict.fromkeys(('months', 'month', '月'), 'months'),
}
_PERIOD: Final = re.compile(r'^(\d{1,5})\s*(\S+)$')
_ISO_PERIOD: Final = re.compile(r'^P(?:(\d{1,5})([DWM])|T(\d{1,5})H)$', re.IGNORECASE)
_REMINDER: Final = re.compile(r'^([+-]?)(\d{1,4})\s*(wd|d|h)?$', re.IGNORECASE)
_FIELD: Final = re.compile(r'^[A-Za-z_][A-Za-z0-9_]{0,63}$')
_NAME: Final = re.compile(r'^[A-Za-z_][A-Za-z0-9_.-]{0,63}$')
_CLOCK_START: Final = re.compile(r'^(?P<name>\S+)\s+(?P<period>.+?)(?:\s+from\s+(?P<field>\S+))?$')
_TRUE_WORDS: Final = frozenset({'true', '1', 'yes', 'on', 'y', '是'})

DEADLINE_PROPERTIES: Final = frozenset({
    'deadline', 'deadline.expedited', 'deadline.expedited_field', 'deadline.from', 'deadline.from_label',
    'deadline.basis', 'reminders', 'escalate.to', 'escalate.level', 'clock',
})
CLOCK_PROPERTIES: Final = frozenset({
    'clock.start', 'clock.from_label', 'clock.basis', 'clock.pause', 'clock.resume', 'clock.stop',
    'clock.extend', 'clock.extend_field', 'clock.extend_reason_field',
})
_PREFIXES: Final = ('deadline.', 'clock.', 'escalate.', 'reminders.')

MSG_UNKNOWN_PROPERTY = N_('未知的期限属性“{name}”（可用：{known}）。')
MSG_PERIOD = N_('属性 {name} 的值“{value}”无法识别：应为“数字 单位”，单位为 working_days（工作日）、'
                'calendar_days（日）、hours（小时）或 months（个月），如“10 working_days”。')
MSG_PERIOD_TOO_LONG = N_('属性 {name} 的期限 {length} 过长（上限 {limit}）。')
MSG_REMINDER = N_('reminders 中的“{item}”无法识别：应为相对到期日的偏移，如“-5wd”（工作日）、“-1d”（日）、'
                  '“-4h”（小时）或“0”（到期当日 9 时）。')
MSG_TOO_MANY_REMINDERS = N_('reminders 最多 {limit} 项。')
MSG_FIELD = N_('属性 {name} 的值“{value}”不是有效的字段名（字母、数字、下划线，且不以数字开头）。')
MSG_NAME = N_('属性 {name} 的值“{value}”不是有效的名称。')
MSG_LEVEL = N_('escalate.level 的值“{value}”无效，可选：{known}。')
MSG_NEEDS_DUE = N_('属性 {name} 需要同时设置 deadline 或 clock。')
MSG_BOTH = N_('deadline 与 clock 只能设置一个：任务的期限要么自行计算，要么取自案件期限。')
MSG_EXPEDITED_ALONE = N_('deadline.expedited 需要同时设置 deadline。')
MSG_CLOCK_UNIT = N_('可暂停的案件期限只能以 working_days 或 calendar_days 计算，不能用“{unit}”。')
MSG_CLOCK_START = N_('clock.start 的值“{value}”无法识别：应为“名称 数字 单位 from 字段”，'
                     '如“mediation 30 working_days from accepted_on”。')
MSG_EXTEND_WHICH = N_('clock.extend_field 需要同时设置 clock.extend（或 clock）指明延长哪个期限。')


class DeadlineSyntaxError(ValueError):
    """A deadline property could not be read; the message names the property."""


# -- values ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """A length in one unit: ``Period(10, 'working_days')``."""

    length: int
    unit: str

    def describe(self, locale: str = 'zh') -> str:
        """``10 个工作日`` / ``10 working days``."""
        if locale.startswith('en'):
            words = {'working_days': 'working day', 'calendar_days': 'day', 'hours': 'hour', 'months': 'month'}
            return f'{self.length} {words[self.unit]}{"" if self.length == 1 else "s"}'
        words = {'working_days': '个工作日', 'calendar_days': '日', 'hours': '小时', 'months': '个月'}
        return f'{self.length} {words[self.unit]}'


@dataclass(frozen=True)
class ReminderOffset:
    """One rung of the reminder ladder, relative to the due date (negative: before it)."""

    amount: int
    #: 'wd' working days, 'd' calendar days, 'h' hours
    unit: str

    @property
    def spec(self) -> str:
        """The canonical text, e.g. ``-5wd``; ``0`` for the due day."""
        return '0' if self.amount == 0 else f'{self.amount:+d}{self.unit}'


@dataclass(frozen=True)
class Escalation:
    """Whom an overdue task escalates to: a group, at the task's unit or the nearest ancestor of a level."""

    group: str
    level: str = 'same'


@dataclass(frozen=True)
class DeadlineRule:
    """What a user task's properties say about its due date, reminders and escalation."""

    #: the normal period (None when the due date comes from a case clock)
    period: Period | None = None
    #: the period used when the data field ``expedited_field`` is true (速裁)
    expedited: Period | None = None
    expedited_field: str = 'expedited'
    #: the task-data field holding the legal start event (None: task creation)
    from_field: str | None = None
    from_label: str | None = None
    basis: str | None = None
    reminders: tuple[ReminderOffset, ...] = ()
    escalation: Escalation | None = None
    #: the case clock whose due date the task takes instead
    clock: str | None = None


@dataclass(frozen=True)
class ClockStart:
    """``clock.start``: start a case clock when the task completes."""

    name: str
    period: Period
    from_field: str | None = None
    from_label: str | None = None
    basis: str | None = None


@dataclass(frozen=True)
class ClockHooks:
    """What a task does to case clocks: pause on READY; start, resume, extend, stop on completion."""

    start: ClockStart | None = None
    pause: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    extend: str | None = None
    extend_field: str = 'extended_due_on'
    extend_reason_field: str | None = None

    def __bool__(self) -> bool:
        return bool(self.start or self.pause or self.resume or self.stop or self.extend)


@dataclass(frozen=True)
class Due:
    """A computed due time (UTC) and the JSON-able record of how it was computed."""

    due_dt: datetime
    record: dict[str, Any] = field(default_factory=dict)


# -- parsing --------------------------------------------------------------------------------------------

def parse_period(value: str, *, name: str = 'deadline') -> Period:
    """Read ``10 working_days``, ``10 工作日``, ``10个工作日``, ``48 hours``, ``1 months`` or ``P3D``/``PT48H``/``P1M``.

    :param name: the property, for the error message
    :raises DeadlineSyntaxError: the value is not a period
    """
    text = value.strip()
    iso = _ISO_PERIOD.match(text)
    if iso:
        if iso.group(3):
            return _checked(Period(int(iso.group(3)), 'hours'), name)
        length, designator = int(iso.group(1)), iso.group(2).upper()
        if designator == 'W':
            return _checked(Period(length * 7, 'calendar_days'), name)
        return _checked(Period(length, 'months' if designator == 'M' else 'calendar_days'), name)
    match = _PERIOD.match(text)
    word = match.group(2).lower().removeprefix('个') if match else ''
    if not match or word not in _UNIT_WORDS:
        raise DeadlineSyntaxError(_(MSG_PERIOD).format(name=name, value=value))
    return _checked(Period(int(match.group(1)), _UNIT_WORDS[word]), name)


def _checked(period: Period, name: str) -> Period:
    if period.length > MAX_LENGTH:
        raise DeadlineSyntaxError(_(MSG_PERIOD_TOO_LONG).format(name=name, length=period.length,
                                                                limit=MAX_LENGTH))
    return period


def parse_reminders(value: str) -> tuple[ReminderOffset, ...]:
    """Read ``-5wd,-2wd,0`` into offsets, earliest first, without duplicates.

    :raises DeadlineSyntaxError: an item is not an offset
    """
    offsets: list[ReminderOffset] = []
    for item in (part.strip() for part in value.replace('，', ',').split(',')):
        if not item:
            continue
        match = _REMINDER.match(item)
        if not match or (match.group(3) is None and int(match.group(2)) != 0):
            raise DeadlineSyntaxError(_(MSG_REMINDER).format(item=item))
        amount = int(match.group(2)) * (-1 if match.group(1) == '-' else 1)
        offset = ReminderOffset(amount, (match.group(3) or 'wd').lower()) if amount else ReminderOffset(0, 'wd')
        if offset not in offsets:
            offsets.append(offset)
    if len(offsets) > MAX_REMINDERS:
        raise DeadlineSyntaxError(_(MSG_TOO_MANY_REMINDERS).format(limit=MAX_REMINDERS))
    return tuple(offsets)


def _field(properties: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = (properties.get(name) or '').strip()
    if not value:
        return default
    if not _FIELD.match(value):
        raise DeadlineSyntaxError(_(MSG_FIELD).format(name=name, value=value))
    return value


def _name(properties: Mapping[str, str], name: str) -> str | None:
    value = (properties.get(name) or '').strip()
    if not value:
        return None
    if not _NAME.match(value):
        raise DeadlineSyntaxError(_(MSG_NAME).format(name=name, value=value))
    return value


def _names(properties: Mapping[str, str], name: str) -> tuple[str, ...]:
    value = properties.get(name) or ''
    names = tuple(part.strip() for part in value.split(',') if part.strip())
    for item in names:
        if not _NAME.match(item):
            raise DeadlineSyntaxError(_(MSG_NAME).format(name=name, value=item))
    return names


def _text(properties: Mapping[str, str], name: str) -> str | None:
    return (properties.get(name) or '').strip() or None


def _escalation(properties: Mapping[str, str]) -> Escalation | None:
    group = _name(properties, 'escalate.to')
    level = (properties.get('escalate.level') or '').strip() or 'same'
    if level not in ESCALATION_LEVELS:
        raise DeadlineSyntaxError(_(MSG_LEVEL).format(value=level, known='、'.join(ESCALATION_LEVELS)))
    if group is None:
        return None if 'escalate.level' not in properties else Escalation('supervisor', level)
    return Escalation(group, level)


def parse_rule(properties: Mapping[str, str]) -> DeadlineRule | None:
    """The task's deadline rule, or None when it declares neither ``deadline`` nor ``clock``.

    :raises DeadlineSyntaxError: a property is malformed (deployment refuses such a diagram)
    """
    _combination(properties)
    deadline, clock = _text(properties, 'deadline'), _name(properties, 'clock')
    expedited_text = _text(properties, 'deadline.expedited')
    reminders = parse_reminders(properties.get('reminders') or '')
    escalation = _escalation(properties)
    if not deadline and not clock:
        return None
    return DeadlineRule(
        period=parse_period(deadline) if deadline else None,
        expedited=parse_period(expedited_text, name='deadline.expedited') if expedited_text else None,
        expedited_field=_field(properties, 'deadline.expedited_field', 'expedited') or 'expedited',
        from_field=_field(properties, 'deadline.from'),
        from_label=_text(properties, 'deadline.from_label'),
        basis=_text(properties, 'deadline.basis'),
        reminders=reminders,
        escalation=escalation,
        clock=clock,
    )


def _clock_start(properties: Mapping[str, str]) -> ClockStart | None:
    value = _text(properties, 'clock.start')
    if value is None:
        return None
    match = _CLOCK_START.match(value)
    if not match or not _NAME.match(match.group('name')):
        raise DeadlineSyntaxError(_(MSG_CLOCK_START).format(value=value))
    try:
        period = parse_period(match.group('period'), name='clock.start')
    except DeadlineSyntaxError:
        raise DeadlineSyntaxError(_(MSG_CLOCK_START).format(value=value)) from None
    if period.unit not in CLOCK_UNITS:
        raise DeadlineSyntaxError(_(MSG_CLOCK_UNIT).format(unit=period.unit))
    from_field = match.group('field')
    if from_field is not None and not _FIELD.match(from_field):
        raise DeadlineSyntaxError(_(MSG_FIELD).format(name='clock.start', value=from_field))
    return ClockStart(match.group('name'), period, from_field, _text(properties, 'clock.from_label'),
                      _text(properties, 'clock.basis'))


def parse_clock_hooks(properties: Mapping[str, str]) -> ClockHooks:
    """What the task does to case clocks (empty hooks when nothing).

    :raises DeadlineSyntaxError: a property is malformed
    """
    extend = _name(properties, 'clock.extend')
    extend_field = _field(properties, 'clock.extend_field')
    if extend_field and not extend:
        extend = _name(properties, 'clock')
        if extend is None:
            raise DeadlineSyntaxError(_(MSG_EXTEND_WHICH))
    return ClockHooks(
        start=_clock_start(properties),
        pause=_names(properties, 'clock.pause'),
        resume=_names(properties, 'clock.resume'),
        stop=_names(properties, 'clock.stop'),
        extend=extend,
        extend_field=extend_field or 'extended_due_on',
        extend_reason_field=_field(properties, 'clock.extend_reason_field'),
    )


def check_task_properties(properties: Mapping[str, str]) -> list[str]:
    """Every problem with a user task's deadline, reminder, escalation and clock properties.

    Properties outside the ``deadline``/``reminders``/``escalate.``/``clock`` names are not looked at.

    :return: messages (Simplified Chinese, translated through :mod:`engine.i18n`); empty when fine
    """
    problems: list[str] = []
    known = DEADLINE_PROPERTIES | CLOCK_PROPERTIES
    for name in sorted(properties):
        if name.startswith(_PREFIXES) and name not in known:
            problems.append(_(MSG_UNKNOWN_PROPERTY).format(name=name, known='、'.join(sorted(known))))
    checks: list[Callable[[], object]] = [
        lambda: _text(properties, 'deadline') and parse_period(properties['deadline']),
        lambda: _text(properties, 'deadline.expedited') and parse_period(properties['deadline.expedited'],
                                                                          name='deadline.expedited'),
        lambda: parse_reminders(properties.get('reminders') or ''),
        lambda: _escalation(properties),
        lambda: [_field(properties, name) for name in ('deadline.from', 'deadline.expedited_field')],
        lambda: _name(properties, 'clock'),
        lambda: _combination(properties),
        lambda: _clock_start(properties),
        lambda: [_names(properties, name) for name in ('clock.pause', 'clock.resume', 'clock.stop')],
        lambda: parse_clock_hooks(properties),
    ]
    for check in checks:
        try:
            check()
        except DeadlineSyntaxError as error:
            if str(error) not in problems:
                problems.append(str(error))
    return problems


def _combination(properties: Mapping[str, str]) -> None:
    """The properties that only make sense together."""
    deadline, clock = _text(properties, 'deadline'), _text(properties, 'clock')
    if deadline and clock:
        raise DeadlineSyntaxError(_(MSG_BOTH))
    if _text(properties, 'deadline.expedited') and not deadline:
        raise DeadlineSyntaxError(_(MSG_EXPEDITED_ALONE))
    if not deadline and not clock:
        for name in ('reminders', 'escalate.to', 'escalate.level', 'deadline.from'):
            if _text(properties, name):
                raise DeadlineSyntaxError(_(MSG_NEEDS_DUE).format(name=name))


# -- counting -------------------------------------------------------------------------------------------

def end_of_day(day: date) -> datetime:
    """23:59:59 local time on ``day``, in UTC."""
    return datetime.combine(day, time(23, 59, 59), LOCAL_ZONE).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    """The same day number ``months`` later, or that month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def period_end(period: Period, start: date, calendar: WorkCalendar) -> tuple[date, date | None]:
    """The last day of a day-based period starting after ``start``, and the raw last day if it was rolled.

    :param period: a working_days, calendar_days or months period
    :return: ``(due day, raw last day or None)``
    """
    if period.unit == 'working_days':
        return calendar.add_working_days(start, period.length), None
    if period.unit == 'calendar_days':
        raw = start + timedelta(days=period.length)
    elif period.unit == 'months':
        raw = _add_months(start, period.length)
    else:
        raise ValueError(f'{period.unit} is not a day-based unit')
    due = calendar.roll_forward(raw)
    return due, (raw if due != raw else None)


def is_truthy(value: Any) -> bool:
    """Whether a task-data value means yes (``True``, ``"true"``, ``"1"``, ``"是"``...)."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE_WORDS
    return value is True or (isinstance(value, int) and value == 1)


def _parse_instant(value: Any) -> datetime | None:
    """A date or datetime (object or ISO text) as an aware instant; a date means local midnight."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=LOCAL_ZONE)
    if isinstance(value, date):
        return datetime.combine(value, time(0), LOCAL_ZONE)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), LOCAL_ZONE)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_ZONE)


def start_instant(from_field: str | None, data: Mapping[str, Any],
                  created_dt: datetime) -> tuple[datetime, bool]:
    """When the period starts: the ``from_field`` value, else ``created_dt``.

    :return: ``(instant, True if from_field was named but held no date)``
    """
    if from_field is None:
        return created_dt, False
    instant = _parse_instant(data.get(from_field))
    return (created_dt, True) if instant is None else (instant, False)


def _local_iso(instant: datetime) -> str:
    return instant.astimezone(LOCAL_ZONE).isoformat()


def compute_due(rule: DeadlineRule, data: Mapping[str, Any], *, created_dt: datetime,
                calendar: WorkCalendar) -> Due | None:
    """The due time of a task with ``rule`` (None when the rule takes its due date from a clock).

    :param data: the task's data (start field, expedited flag)
    :param created_dt: when the task became ready (the default start)
    :param calendar: the working-day calendar of the task's unit
    """
    if rule.period is None:
        return None
    expedited = rule.expedited is not None and is_truthy(data.get(rule.expedited_field))
    period = rule.expedited if expedited and rule.expedited else rule.period
    start, missing = start_instant(rule.from_field, data, created_dt)
    record: dict[str, Any] = {
        'kind': 'deadline', 'unit': period.unit, 'length': period.length, 'expedited': expedited,
        'from_field': rule.from_field, 'from_label': rule.from_label, 'from_missing': missing,
        'basis': rule.basis, 'pauses': [], 'extension': None, 'rolled_from': None,
        'reminders': [offset.spec for offset in rule.reminders],
        'escalate': _escalation_record(rule.escalation),
    }
    if period.unit == 'hours':
        due_dt = start + timedelta(hours=period.length)
        record.update(start=_local_iso(start), due_on=due_dt.astimezone(LOCAL_ZONE).date().isoformat())
    else:
        start_day = start.astimezone(LOCAL_ZONE).date()
        due_day, rolled = period_end(period, start_day, calendar)
        due_dt = end_of_day(due_day)
        record.update(start=start_day.isoformat(), due_on=due_day.isoformat(),
                      rolled_from=rolled.isoformat() if rolled else None)
    record.update(due=_local_iso(due_dt), calendar=calendar.source())
    return Due(due_dt.astimezone(UTC), record)


def _escalation_record(escalation: Escalation | None) -> dict[str, str]:
    escalation = escalation or Escalation('supervisor', 'same')
    return {'to': escalation.group, 'level': escalation.level}


def reminder_times(offsets: tuple[ReminderOffset, ...] | list[str], due_dt: datetime,
                   calendar: WorkCalendar) -> list[tuple[ReminderOffset, datetime]]:
    """When each reminder fires, in time order.

    Day offsets fire at :data:`REMINDER_HOUR` local time on the day counted from the due day (working
    days on the task's calendar); hour offsets at exactly that many hours from the due time.

    :param offsets: parsed offsets or their specs (as stored in a rule record)
    """
    parsed = [o if isinstance(o, ReminderOffset) else parse_reminders(o)[0] for o in offsets]
    due_day = due_dt.astimezone(LOCAL_ZONE).date()
    times = []
    for offset in parsed:
        if offset.unit == 'h':
            when = due_dt + timedelta(hours=offset.amount)
        else:
            day = (calendar.add_working_days(due_day, offset.amount) if offset.unit == 'wd' and offset.amount
                   else due_day + timedelta(days=offset.amount))
            when = datetime.combine(day, time(REMINDER_HOUR), LOCAL_ZONE)
        times.append((offset, when.astimezone(UTC)))
    return sorted(times, key=lambda pair: pair[1])


# -- words ----------------------------------------------------------------------------------------------

_ZH = {
    'from': '自 {start} {label}起算', 'from_plain': '自 {start} 起算', 'created': '任务创建',
    'missing': '（未取得起算日期“{field}”，按任务创建时间起算）', 'expedited': '（从快）',
    'rolled': '，末日 {raw} 为休息日，顺延', 'pause': '，其间暂停 {start} 至 {end}',
    'paused_now': '，自 {since} 起暂停计时', 'extension': '，经协商延长至 {day}', 'reason': '（{reason}）',
    'due': ' → {due} 到期', 'paused_due': ' → 暂停中，恢复后重新计算到期日', 'stopped': '（已停止计时）',
    'not_started': '取自案件期限“{clock}”，尚未开始计时',
    'fallback': '（{years} 年无法定节假日数据，按周一至周五计算）',
    'basis': '（{basis}）', 'sep': '，',
}
_EN = {
    'from': 'from {label} on {start}', 'from_plain': 'from {start}', 'created': 'task creation',
    'missing': ' (start date "{field}" missing: counted from task creation)', 'expedited': ' (expedited)',
    'rolled': ', last day {raw} is a rest day, moved on', 'pause': ', paused {start} to {end}',
    'paused_now': ', paused since {since}', 'extension': ', extended by agreement to {day}', 'reason': ' ({reason})',
    'due': ' → due {due}', 'paused_due': ' → paused; due date recomputed on resumption',
    'stopped': ' (clock stopped)', 'not_started': 'from case clock "{clock}", not started yet',
    'fallback': ' ({years}: no official holiday data, counted Monday to Friday)', 'basis': ' ({basis})',
    'sep': ' ',
}


def explain(rule: Mapping[str, Any], locale: str = 'zh') -> str:
    """Put a rule record (a task's ``due_rule``) into words.

    ``10 个工作日，自 2025-09-26 收到委托函起算（社区矫正法实施办法 §14）→ 2025-10-16 到期``;
    in English (``locale='en'``): ``10 working days from 收到委托函 on 2025-09-26 (社区矫正法实施办法 §14)
    → due 2025-10-16``.
    """
    words = _EN if locale.startswith('en') else _ZH
    if rule.get('kind') == 'clock' and rule.get('status') == 'not_started':
        return words['not_started'].format(clock=rule.get('clock'))
    period = Period(int(rule['length']), str(rule['unit']))
    start = str(rule.get('start', ''))
    if period.unit == 'hours':
        start = start[:16].replace('T', ' ')
    label = rule.get('from_label') or (words['created'] if not rule.get('from_field') else None)
    parts = [period.describe(locale)]
    if rule.get('expedited'):
        parts.append(words['expedited'])
    parts.append(words['sep'])
    parts.append(words['from'].format(start=start, label=label) if label
                 else words['from_plain'].format(start=start))
    if rule.get('from_missing'):
        parts.append(words['missing'].format(field=rule.get('from_field')))
    if rule.get('basis'):
        parts.append(words['basis'].format(basis=rule['basis']))
    parts.extend(_explain_changes(rule, words))
    text = ''.join(parts)
    return text if words is _EN else text.replace('） → ', '）→ ')


def _explain_changes(rule: Mapping[str, Any], words: Mapping[str, str]) -> list[str]:
    parts = []
    if rule.get('rolled_from'):
        parts.append(words['rolled'].format(raw=rule['rolled_from']))
    for pause_start, pause_end in rule.get('pauses') or ():
        parts.append(words['pause'].format(start=pause_start, end=pause_end))
    if rule.get('paused_since'):
        parts.append(words['paused_now'].format(since=rule['paused_since']))
    extension = rule.get('extension')
    if extension:
        parts.append(words['extension'].format(day=extension.get('due_on')))
        if extension.get('reason'):
            parts.append(words['reason'].format(reason=extension['reason']))
    if rule.get('paused_since') or not rule.get('due'):
        parts.append(words['paused_due'])
    else:
        due = str(rule['due'])[:16].replace('T', ' ') if rule.get('unit') == 'hours' else rule.get('due_on')
        parts.append(words['due'].format(due=due))
    if rule.get('status') == 'stopped':
        parts.append(words['stopped'])
    fallback = (rule.get('calendar') or {}).get('fallback_years') or []
    if fallback:
        parts.append(words['fallback'].format(years='、'.join(str(y) for y in fallback)))
    return parts
