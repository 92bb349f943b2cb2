"""Community corrections (社区矫正): the plain functions behind the service tasks.

Each function changes the case, flushes and records what it did in the audit log; none commits. The
legal numbers they apply are in ``shared/domain/legal-rules.md`` §2; the ones marked local practice (🏠)
are module constants a bureau may change.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from engine import audit, runtime
from engine.calendar import WorkCalendar, load_calendar
from engine.clock import get_clock, now
from engine.deadlines import Period, period_end
from engine.errors import ValidationFailed
from engine.messages import signal_case
from engine.models.cases import Case, CaseAccessGrant
from engine.models.instances import ProcessInstance
from engine.models.org_units import OrgUnit
from engine.models.users import User

CORRECTION_TYPES: Final = ('管制', '缓刑', '假释', '暂予监外执行')
MANAGEMENT_LEVELS: Final = ('严管', '普管', '宽管')
#: 🏠 how often an offender reports at each 管理类别, in (months, days) (社区矫正法 §23; 实施办法 §24
#: leaves the frequency to the agency; e.g. one province: 严管 weekly)
REPORT_CYCLES: Final[Mapping[str, tuple[int, int]]] = {'严管': (0, 7), '普管': (1, 0), '宽管': (2, 0)}
#: the recurring reports and how often they fall due, in (months, days)
REPORT_KINDS: Final[Mapping[str, tuple[int, int] | None]] = {
    '定期报告': None,  # by 管理类别, see REPORT_CYCLES
    '身体状况报告': (1, 0),  # 暂予监外执行: every month (实施办法 §24)
    '病情复查': (3, 0),  # 保外就医: every three months (实施办法 §24)
}
#: 🏠 the 期满鉴定 starts this many days before the term ends (实施办法 §53 says "before expiry")
APPRAISAL_LEAD_DAYS: Final = 30
#: 🏠 the renewal review of electronic monitoring starts this many days before the approval runs out
MONITORING_REVIEW_DAYS: Final = 7
#: 🏠 days before the legal deadline on which the assessment extension is offered (working days)
EXTENSION_OFFER_WORKING_DAYS: Final = 2

REWARDS_AND_SANCTIONS: Final = ('表扬', '训诫', '警告')
PROPOSALS: Final = ('提请治安管理处罚', '提请撤销缓刑', '提请撤销假释', '提请收监执行', '提请减刑')
MEASURE: Final = '刑事强制措施'
SANCTION_KINDS: Final = (*REWARDS_AND_SANCTIONS, *PROPOSALS, MEASURE)
#: what blocks release on expiry while it is unresolved (司办通〔2021〕94号)
BLOCKING_KINDS: Final = ('提请撤销缓刑', '提请撤销假释', '提请收监执行', MEASURE)
#: proposals that only fit one correction type
_KIND_TYPES: Final[Mapping[str, str]] = {'提请撤销缓刑': '缓刑', '提请撤销假释': '假释', '提请收监执行': '暂予监外执行'}
#: how a granted proposal (or a conviction while under a coercive measure) ends the corrections
TERMINATIONS: Final[Mapping[str, str]] = {'缓刑': '撤销缓刑', '假释': '撤销假释', '暂予监外执行': '收监执行',
                                         '管制': '判处新罪'}
RELEASE_REASONS: Final = ('期满解除', '死亡', '撤销缓刑', '撤销假释', '收监执行', '判处新罪', '赦免')

# Counter keys in ``case.counters``.
REPRIMANDS: Final = 'reprimands'
REPRIMANDS_SINCE_WARNING: Final = 'reprimands_since_warning'
WARNINGS: Final = 'warnings'
COMMENDATIONS: Final = 'commendations'
PENALTIES: Final = 'public_security_penalties'
HISTORY: Final = 'sanction_history'
PENDING: Final = 'pending_measures'
LEAVES: Final = 'leaves'
LEVELS: Final = 'management_levels'
MONITORING: Final = 'monitoring'
RELEASE_INSTANCE: Final = 'release_instance_id'

SIGNAL_CONCLUDED: Final = 'corrections.concluded'


# -- dates -------------------------------------------------------------------------------------------------

def today() -> date:
    """Today in Beijing, on the engine clock."""
    return get_clock().today()


def parse_date(value: Any, field: str) -> date:
    """A date from task data (``YYYY-MM-DD`` or an ISO datetime); ValidationFailed naming ``field`` if not."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        text = str(value or '').strip()
        return datetime.fromisoformat(text).date() if len(text) > 10 else date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed('数据有误，请检查标出的字段。', {field: ['请输入 YYYY-MM-DD 格式的日期。']}) from None


def gender_from_id_number(id_number: str | None) -> str | None:
    """男 or 女 from the 17th digit of an ID number (odd: male), None without one."""
    if not id_number or len(id_number) != 18 or not id_number[16].isdigit():
        return None
    return '男' if int(id_number[16]) % 2 else '女'


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), or that month's last day (01-31 + 1 → 02-28)."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def add_cycle(day: date, cycle: tuple[int, int]) -> date:
    """``day`` plus (months, days)."""
    months, days = cycle
    return add_months(day, months) + timedelta(days=days)


def timer_at(day: date, hour: int = 0) -> str:
    """A local timer instant for a BPMN timeDate: ``2025-10-10T00:00:00`` (read as Beijing time)."""
    return datetime.combine(day, time(hour)).isoformat()


def calendar_for(session: Session, case: Case) -> WorkCalendar:
    """The working-day calendar of the case's unit (overrides included)."""
    return load_calendar(session, case.org_path)


def legal_day(session: Session, case: Case, start: date, days: int) -> date:
    """The last day of a period of ``days`` calendar days after ``start``, rolled past rest days (民法典 §203)."""
    due, _ = period_end(Period(days, 'calendar_days'), start, calendar_for(session, case))
    return due


# -- org units ---------------------------------------------------------------------------------------------

def unit_by_code(session: Session, code: str) -> OrgUnit | None:
    """The org unit with ``code``."""
    return session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code.strip())).one_or_none()


def ancestor_at(unit: OrgUnit, level: str) -> OrgUnit | None:
    """``unit`` itself or its nearest ancestor at ``level`` (county, city...)."""
    current: OrgUnit | None = unit
    while current is not None and current.level != level:
        current = current.parent
    return current


def common_ancestor(first: OrgUnit, second: OrgUnit) -> OrgUnit:
    """The lowest unit above both (the 上一级 that coordinates two counties)."""
    current: OrgUnit | None = first
    while current is not None:
        if current.contains(second):
            return current
        current = current.parent
    raise ValidationFailed('两个机构不在同一机构树中。')


def township_in_county(session: Session, case: Case, code: str | None, field: str) -> OrgUnit:
    """The 司法所 named by ``code``; it must lie in the county the case belongs to."""
    county = ancestor_at(case.org_unit, 'county') or case.org_unit
    unit = unit_by_code(session, code) if code else None
    if unit is None or unit.level != 'township' or not county.contains(unit):
        raise ValidationFailed('数据有误，请检查标出的字段。',
                               {field: [f'请填写{county.name}下属司法所的机构代码。']})
    return unit


def move_case(session: Session, case: Case, unit: OrgUnit, *, actor: User | None, reason: str,
              keep_access: OrgUnit | None = None) -> Case:
    """Make ``unit`` responsible for ``case``; its whole history goes with it.

    :param keep_access: a unit (the county the case leaves) that keeps read access to the case
    """
    before = {'org_unit': case.org_unit.code, 'org_path': case.org_path}
    case.org_unit, case.org_unit_id, case.org_path = unit, unit.id, unit.path
    if keep_access is not None and not keep_access.contains(unit):
        exists = session.scalar(sa.select(CaseAccessGrant.id).where(CaseAccessGrant.case_id == case.id,
                                                                    CaseAccessGrant.org_path == keep_access.path))
        if exists is None:
            session.add(CaseAccessGrant(case_id=case.id, org_path=keep_access.path, reason=reason,
                                        granted_dt=now()))
    session.flush()
    audit.record(session, 'case.transferred', actor=actor, case_id=case.id, org_path=unit.path, before=before,
                 after={'org_unit': unit.code, 'org_path': unit.path,
                        'kept_access': keep_access.code if keep_access is not None else None}, note=reason)
    return case


# -- counters ----------------------------------------------------------------------------------------------

def change_counters(session: Session, case: Case, changes: Mapping[str, Any], *, actor: User | None,
                    note: str) -> dict[str, Any]:
    """Apply ``changes`` to ``case.counters`` (a key mapped to None is removed); audited with before/after."""
    before = {key: case.counters.get(key) for key in changes}
    counters = dict(case.counters or {})
    for key, value in changes.items():
        if value is None:
            counters.pop(key, None)
        else:
            counters[key] = value
    case.counters = counters
    flag_modified(case, 'counters')
    session.flush()
    audit.record(session, 'case.counters_changed', actor=actor, case_id=case.id, org_path=case.org_path,
                 before=before, after={key: counters.get(key) for key in changes}, note=note)
    return counters


def _count(case: Case, key: str) -> int:
    value = (case.counters or {}).get(key, 0)
    return int(value) if isinstance(value, int) else 0


def _history(case: Case, key: str) -> list[dict[str, Any]]:
    value = (case.counters or {}).get(key)
    return list(value) if isinstance(value, list) else []


def set_management_level(session: Session, case: Case, level: str, *, actor: User | None, reason: str) -> Case:
    """Set the 管理类别 (严管/普管/宽管); the change and its reason are kept with the case."""
    if level not in MANAGEMENT_LEVELS:
        raise ValidationFailed('数据有误，请检查标出的字段。', {'management_level': ['请选择严管、普管或宽管。']})
    before = case.management_level
    case.management_level = level
    entry = {'level': level, 'previous': before, 'on': today().isoformat(), 'reason': reason}
    change_counters(session, case, {LEVELS: [*_history(case, LEVELS), entry]}, actor=actor, note=f'管理类别：{level}')
    return case


# -- rewards, sanctions and the ladder ---------------------------------------------------------------------

def check_sanction_kind(case: Case, kind: str) -> str:
    """The branch a sanction request takes: ``decision``, ``proposal`` or ``measure``.

    :raises ValidationFailed: the kind does not fit the case's correction type
    """
    if kind not in SANCTION_KINDS:
        raise ValidationFailed('数据有误，请检查标出的字段。', {'kind': ['请选择奖惩类别。']})
    wanted = _KIND_TYPES.get(kind)
    if wanted is not None and case.correction_type != wanted:
        raise ValidationFailed('数据有误，请检查标出的字段。',
                               {'kind': [f'“{kind}”只适用于{wanted}的社区矫正对象，本案为{case.correction_type}。']})
    if kind in REWARDS_AND_SANCTIONS:
        return 'decision'
    return 'measure' if kind == MEASURE else 'proposal'


def revocation_kind(case: Case) -> str:
    """What two 警告 (or absconding over a month) lead to for this correction type."""
    return {'缓刑': '提请撤销缓刑', '假释': '提请撤销假释', '暂予监外执行': '提请收监执行'}.get(
        case.correction_type or '', '提请治安管理处罚')


def kind_for_lateness(case: Case, days: int) -> str:
    """The sanction the ladder proposes for reporting (or returning) ``days`` days late (实施办法 §34–35, §46).

    Up to 10 days: 训诫; more than 10: 警告; more than a month: revocation (or 收监, or for 管制 a
    public-security penalty).
    """
    if days > 30:
        return revocation_kind(case)
    return '警告' if days > 10 else '训诫'


def record_decision(session: Session, case: Case, kind: str, decided_on: date, *, actor: User | None,
                    instance_id: int | None, document_number: str | None) -> list[tuple[str, str]]:
    """Count a 表扬/训诫/警告 decision and return the follow-ups the ladder calls for.

    Two 训诫 without correction call for considering a 警告; two 警告 call for a revocation (收监, or for
    管制 a public-security penalty) proposal, unless one is already pending (实施办法 §35, 刑诉法解释 §543).

    :return: ``[(kind, facts)]`` of sanction requests to start
    """
    changes: dict[str, Any] = {}
    follow_ups: list[tuple[str, str]] = []
    if kind == '表扬':
        changes[COMMENDATIONS] = _count(case, COMMENDATIONS) + 1
    elif kind == '训诫':
        since = _count(case, REPRIMANDS_SINCE_WARNING) + 1
        changes.update({REPRIMANDS: _count(case, REPRIMANDS) + 1, REPRIMANDS_SINCE_WARNING: since})
        if since % 2 == 0:
            follow_ups.append(('警告', f'自上次警告以来已受到{since}次训诫仍未改正，依法审议是否给予警告'
                                     '（社区矫正法实施办法 §35）。'))
    elif kind == '警告':
        warnings = _count(case, WARNINGS) + 1
        changes.update({WARNINGS: warnings, REPRIMANDS_SINCE_WARNING: 0})
        revocation = revocation_kind(case)
        if warnings >= 2 and not any(p.get('kind') == revocation for p in _history(case, PENDING)):
            follow_ups.append((revocation, f'已受到{warnings}次警告仍不改正，依法提请处理'
                                           '（最高人民法院关于适用刑事诉讼法的解释 §543）。'))
    else:
        raise ValidationFailed('数据有误，请检查标出的字段。', {'kind': ['只能登记表扬、训诫或警告。']})
    entry = {'kind': kind, 'on': decided_on.isoformat(), 'document': document_number, 'instance_id': instance_id}
    changes[HISTORY] = [*_history(case, HISTORY), entry]
    change_counters(session, case, changes, actor=actor, note=f'{kind}决定')
    return follow_ups


def add_pending(session: Session, case: Case, kind: str, since: date, *, actor: User | None,
                instance_id: int) -> None:
    """Note an unresolved revocation/收监 proposal or coercive measure (it blocks release on expiry)."""
    entry = {'kind': kind, 'since': since.isoformat(), 'instance_id': instance_id}
    pending = [p for p in _history(case, PENDING) if p.get('instance_id') != instance_id]
    change_counters(session, case, {PENDING: [*pending, entry]}, actor=actor, note=f'{kind}待处理')


def resolve_pending(session: Session, case: Case, kind: str, granted: bool, ruled_on: date, *,
                    actor: User | None, instance_id: int, new_term_end: date | None = None) -> str | None:
    """Record the outcome of a proposal or measure; return the release reason it ends the corrections with.

    :param granted: the court/决定机关/公安 granted the proposal (for a coercive measure: it ended in a
        conviction)
    :param new_term_end: for a granted 减刑, the shortened term's last day
    """
    changes: dict[str, Any] = {PENDING: [p for p in _history(case, PENDING) if p.get('instance_id') != instance_id]}
    entry = {'kind': kind, 'on': ruled_on.isoformat(), 'granted': granted, 'instance_id': instance_id}
    changes[HISTORY] = [*_history(case, HISTORY), entry]
    if granted and kind == '提请治安管理处罚':
        changes[PENALTIES] = _count(case, PENALTIES) + 1
    change_counters(session, case, changes, actor=actor, note=f'{kind}：{"准许" if granted else "未准许"}')
    if not granted:
        return None
    if kind == '提请减刑':
        if new_term_end is not None:
            _shorten_term(session, case, new_term_end, actor=actor)
        return None
    if kind in ('提请撤销缓刑', '提请撤销假释', '提请收监执行', MEASURE):
        return TERMINATIONS.get(case.correction_type or '', '判处新罪')
    return None


def _shorten_term(session: Session, case: Case, new_end: date, *, actor: User | None) -> None:
    if case.term_end_on is not None and new_end >= case.term_end_on:
        raise ValidationFailed('数据有误，请检查标出的字段。', {'new_term_end': ['减刑后的矫正结束日须早于原结束日。']})
    before = case.term_end_on
    case.term_end_on = new_end
    session.flush()
    audit.record(session, 'case.term_changed', actor=actor, case_id=case.id, org_path=case.org_path,
                 before={'term_end_on': before}, after={'term_end_on': new_end}, note='减刑')


def release_blockers(case: Case) -> list[dict[str, Any]]:
    """The pending proposals and measures that forbid releasing the offender on expiry."""
    return [p for p in _history(case, PENDING) if p.get('kind') in BLOCKING_KINDS]


# -- leave (外出) ------------------------------------------------------------------------------------------

def leave_days(leave_from: date, leave_to: date) -> int:
    """Days away, both ends included (a leave from 10-01 to 10-07 is 7 days)."""
    return (leave_to - leave_from).days + 1


def leave_level(case: Case, leave_from: date, leave_to: date) -> tuple[int, int, str]:
    """Days, days away within the two months around it, and who approves (实施办法 §26).

    Up to 7 days: the 司法所; more: the county agency, at most 30 days per approval; more than 30 days, or
    more than 30 days in all within two months: the city-level agency, with the procuratorate told.

    :return: ``(days, cumulative days, 'township' | 'county' | 'city')``
    """
    days = leave_days(leave_from, leave_to)
    window_start = add_months(leave_from, -2)
    cumulative = days
    for leave in _history(case, LEAVES):
        start, end = date.fromisoformat(leave['from']), date.fromisoformat(leave['to'])
        overlap_start, overlap_end = max(start, window_start), min(end, leave_to)
        if overlap_end >= overlap_start:
            cumulative += leave_days(overlap_start, overlap_end)
    if days > 30 or cumulative > 30:
        return days, cumulative, 'city'
    return days, cumulative, ('county' if days > 7 else 'township')


def record_leave(session: Session, case: Case, leave_from: date, leave_to: date, destination: str, *,
                 actor: User | None, level: str, instance_id: int) -> None:
    """Keep an approved leave with the case (the two-month total counts it)."""
    entry = {'from': leave_from.isoformat(), 'to': leave_to.isoformat(), 'destination': destination,
             'level': level, 'instance_id': instance_id}
    change_counters(session, case, {LEAVES: [*_history(case, LEAVES), entry]}, actor=actor, note='外出批准')


# -- electronic monitoring (电子定位) ----------------------------------------------------------------------

def start_monitoring(session: Session, case: Case, start_on: date, months: int, *, actor: User | None,
                     grounds: str, instance_id: int) -> date:
    """Record an approved period of electronic monitoring (≤ 3 months, 社区矫正法 §29); return its last day."""
    if not 1 <= months <= 3:
        raise ValidationFailed('数据有误，请检查标出的字段。', {'months': ['每次批准的期限为 1 至 3 个月。']})
    until = add_months(start_on, months) - timedelta(days=1)
    entry = {'from': start_on.isoformat(), 'until': until.isoformat(), 'grounds': grounds,
             'instance_id': instance_id, 'ended_on': None}
    change_counters(session, case, {MONITORING: [*_history(case, MONITORING), entry]}, actor=actor,
                    note='批准使用电子定位')
    return until


def end_monitoring(session: Session, case: Case, *, actor: User | None, instance_id: int, reason: str) -> None:
    """Mark the monitoring period approved in ``instance_id`` as ended."""
    periods = [dict(p, ended_on=p.get('ended_on') or today().isoformat(), end_reason=reason)
               if p.get('instance_id') == instance_id else p for p in _history(case, MONITORING)]
    change_counters(session, case, {MONITORING: periods}, actor=actor, note=f'电子定位：{reason}')


# -- starting requests and concluding --------------------------------------------------------------------

def start_request(session: Session, case: Case, process_key: str, data: Mapping[str, Any], *,
                  actor: User | None) -> int:
    """Start the request process ``process_key`` on ``case`` (as the system) and return its instance id."""
    runtime.start_case(session, process_key, {'case_id': case.id, **data}, actor=actor, org_unit=case.org_unit)
    instance_id = session.scalar(sa.select(sa.func.max(ProcessInstance.id)).where(ProcessInstance.case_id == case.id))
    return int(instance_id or 0)


def set_outcome(session: Session, case: Case, outcome: str, *, actor: User | None) -> None:
    """Record how the case ended (期满解除, 撤销缓刑, 死亡...; 适宜/不适宜 for an assessment)."""
    before = case.outcome
    case.outcome = outcome
    session.flush()
    audit.record(session, 'case.outcome', actor=actor, case_id=case.id, org_path=case.org_path,
                 before={'outcome': before}, after={'outcome': outcome})


def conclude_case(session: Session, case: Case, outcome: str, *, actor: User | None, instance_id: int) -> list[int]:
    """End the corrections with ``outcome`` and tell the case's lifecycle, which then closes the case.

    :param instance_id: the concluding request (it is mid-command and is not signalled)
    :return: the instances that caught the signal
    """
    set_outcome(session, case, outcome, actor=actor)
    return signal_case(session, case, SIGNAL_CONCLUDED, actor=actor, exclude_instance_id=instance_id)
