"""Service operations the medical-dispute BPMN calls by topic (``camunda:topic="disputes.…"``).

Each takes the command's :class:`~engine.services.ServiceContext` and a copy of the task data, changes the
case through :mod:`workflows.disputes.operations`, and returns the task-data updates the diagram's gateways
and timers read. Raising :class:`~engine.errors.ValidationFailed` rolls the whole command back, so a task
completion that breaks a rule (escalating before the "431" minimum) changes nothing and the form shows why.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from engine import audit, clocks
from engine.calendar import load_calendar
from engine.clock import LOCAL_ZONE
from engine.deadlines import Period, end_of_day, period_end
from engine.errors import ValidationFailed, WorkflowFault
from engine.models.tasks import HumanTask
from engine.reminders import reminder_recipients
from engine.services import ServiceContext, service
from workflows.disputes import operations
from workflows.disputes.settings import (
    CONFIRMATION_REMINDER_DAYS,
    CONFIRMATION_WINDOW_DAYS,
    DEFAULT_MAX_APPRAISALS,
    DEFAULT_MAX_EXPERT_CONSULTATIONS,
    DEFAULT_MAX_EXTENSIONS,
    DEFAULT_MAX_SESSIONS_PER_LEVEL,
    DEFAULT_MINIMUMS,
    LEVEL_NAMES,
    LEVEL_PROPERTIES,
    LEVELS,
    MEDIATION_CLOCK,
    NOTICE_HOUR,
    OUTCOME_FAILED,
    OUTCOME_REJECTED,
    OUTCOME_SETTLED,
    OUTCOME_TERMINATED,
    SUBSIDISED_OUTCOMES,
    SUBSIDY_AMOUNTS,
)
from workflows.disputes.util import yuan_in_words

Data = dict[str, Any]

REASON_COURT = '当事人已就该纠纷向人民法院提起诉讼并已被受理（医疗纠纷预防和处理条例 §31 第四款）'
REASON_HEALTH_BUREAU = '当事人已就该纠纷申请卫生主管部门调解并已被受理（医疗纠纷预防和处理条例 §31 第四款）'
REASON_REFUSED = '另一方当事人明确拒绝调解（人民调解法 §17；医疗纠纷预防和处理条例 §31 第一款）'
REASON_EXPIRED = ('自受理之日起 30 个工作日内（鉴定时间不计入）未达成调解协议，且未约定延长调解期限，'
                  '视为调解不成（医疗纠纷预防和处理条例 §38）')
REASON_EXHAUSTED = ('经网格/村（居）、乡镇（街道）、县三级逐级调解，均未能达成调解协议'
                    '（“431”矛盾纠纷分级化解机制；人民调解法 §26）')
REASON_WITHDRAWN = '当事人撤回调解申请或明确表示拒绝继续调解（人民调解法 §23、§26）'


# -- helpers ----------------------------------------------------------------------------------------------

def _int_property(properties: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number service-task property, or ``default``; a designer's typo is reported, not guessed at."""
    raw = (properties.get(name) or '').strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise WorkflowFault(f'服务任务属性 {name} 须为非负整数，当前为“{raw}”。')
    return int(raw)


def _local_iso(instant: datetime) -> str:
    return instant.astimezone(LOCAL_ZONE).isoformat()


def _at_notice_hour(day: date) -> str:
    """``day`` at the notice hour, Beijing time, as an aware ISO string (what BPMN date timers read)."""
    return datetime.combine(day, time(NOTICE_HOUR), LOCAL_ZONE).isoformat()


def _date(data: Mapping[str, Any], name: str) -> date:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise WorkflowFault(f'流程数据缺少日期“{name}”。')
    return date.fromisoformat(value[:10])


# -- acceptance and triage -----------------------------------------------------------------------------

@service('disputes.register_acceptance')
def register_acceptance(context: ServiceContext, data: Data) -> Data:
    """Accepted: check the tier the mediation starts at, and set the "431" counters to zero."""
    session, case = context.session, context.case
    confirmed = data.get('confirmed_township_code')
    township_code = confirmed or data.get('township_code')
    level = data.get('start_level') or '县'
    if township_code or level in ('村', '乡镇'):
        operations.township_unit(session, case, township_code, field='confirmed_township_code')
    operations.init_counters(session, case, actor=context.actor)
    return {'township_code': township_code, 'session_total': 0, 'appraisal_count': 0, 'public_code': case.public_code,
            'accepted_by_name': context.actor.display_name if context.actor else None}


@service('disputes.reject_application')
def reject_application(context: ServiceContext, data: Data) -> Data:
    """Not accepted: list the reasons the 不予受理通知书 gives."""
    reasons = []
    if data.get('court_accepted'):
        reasons.append(REASON_COURT)
    if data.get('health_bureau_accepted'):
        reasons.append(REASON_HEALTH_BUREAU)
    if data.get('consent_status') == 'refused':
        reasons.append(REASON_REFUSED)
    audit.record(context.session, 'dispute.rejected', actor=context.actor, case_id=context.case.id,
                 org_path=context.case.org_path, after={'reasons': reasons})
    return {'rejection_reasons': reasons, 'case_outcome': OUTCOME_REJECTED}


@service('disputes.apply_triage')
def apply_triage(context: ServiceContext, data: Data) -> Data:
    """Put the 三色 decision (DMN ``dispute_triage``) on the case; a red case goes to the county at once.

    Red also tells the county's leadership straight away (legal-rules §3.3: 红 → notify immediately).
    """
    colour = data.get('risk_colour')
    if not isinstance(colour, str) or not colour:
        raise WorkflowFault('三色预警决策表没有给出风险等级，请检查决策表是否覆盖所有情形。')
    session, case = context.session, context.case
    reason = str(data.get('triage_reason') or '')
    inputs = {name: data.get(name) for name in ('patient_died', 'claimed_amount', 'people_involved',
                                                'online_attention', 'prior_failed_talks', 'source')}
    operations.set_risk_colour(session, case, colour, reason=reason, inputs=inputs, actor=context.actor)
    if colour != 'red':
        return {}
    leaders = operations.group_members(session, 'supervisor', case.org_path)
    operations.notify(session, case, leaders, kind='red_alert', key=f'disputes.red_alert:{case.id}',
                      title=f'红色预警：{case.title}（{case.number}）',
                      body=f'{reason}。已启动红色处置方案：资深调解员主导、心理疏导介入，医调委、卫健局、医院当日联合调解。')
    return {'start_level': '县'}


# -- tiered mediation ----------------------------------------------------------------------------------

@service('disputes.enter_level')
def enter_level(context: ServiceContext, data: Data) -> Data:
    """Start mediating at the tier chosen at acceptance (or in the backlog plan)."""
    level = data.get('start_level') or '县'
    if level not in LEVELS:
        raise ValidationFailed('数据有误', {'start_level': [f'调解层级只能是 {"、".join(LEVELS)}。']})
    if level != '县':
        operations.township_unit(context.session, context.case, data.get('township_code'), field='start_level')
    operations.change_level(context.session, context.case, level, actor=context.actor,
                            note=f'开始{LEVEL_NAMES[level]}调解')
    return {'mediation_level': level}


@service('disputes.refresh_deadline')
def refresh_deadline(context: ServiceContext, data: Data) -> Data:
    """Read the mediation clock's current due time for the 视为调解不成 timers.

    Called before every session: the due time moves when an appraisal paused the clock or the parties
    agreed an extension, and each new session's boundary timer takes the date as it is now.
    """
    name = context.properties.get('clock') or MEDIATION_CLOCK
    clock = clocks.case_clock(context.session, context.case.id, name)
    if clock is None or clock.status != 'running' or clock.due_dt is None:
        state = clock.status if clock is not None else '未开始'
        raise WorkflowFault(f'调解期限“{name}”不在计时中（{state}），无法安排调解。')
    return {'mediation_due_at': _local_iso(clock.due_dt),
            'mediation_due_on': clock.due_dt.astimezone(LOCAL_ZONE).date().isoformat()}


def _limits(properties: Mapping[str, str]) -> dict[str, int]:
    limits = {level: _int_property(properties, LEVEL_PROPERTIES[level], DEFAULT_MINIMUMS[level]) for level in LEVELS}
    limits['max_sessions'] = _int_property(properties, 'max_sessions_per_level', DEFAULT_MAX_SESSIONS_PER_LEVEL)
    limits['鉴定'] = _int_property(properties, 'max_appraisals', DEFAULT_MAX_APPRAISALS)
    limits['专家咨询'] = _int_property(properties, 'max_expert_consultations', DEFAULT_MAX_EXPERT_CONSULTATIONS)
    limits['延期'] = _int_property(properties, 'max_extensions', DEFAULT_MAX_EXTENSIONS)
    return limits


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed('本次调解结果无法采用，请检查。', {'session_outcome': [message]})


#: session outcomes that leave the loop for a bounded side route: outcome → (counter, words)
_ROUTE_COUNTERS = {'appraisal': ('鉴定', '医疗损害鉴定'), 'expert': ('专家咨询', '专家咨询'),
                   'extend': ('延期', '延长调解期限')}
#: the options of the session forms' 本次调解结果
_OUTCOMES = frozenset({'agreement', 'continue', 'escalate', 'terminate', *_ROUTE_COUNTERS})


def _next_step(outcome: str, level: str, attempts: int, limits: Mapping[str, int],
               counters: Mapping[str, Any]) -> str:
    """Where the session leads; raises ValidationFailed when the choice breaks a rule."""
    if outcome not in _OUTCOMES:
        raise WorkflowFault(f'调解结果“{outcome}”无法识别：表单的选项与服务操作不一致。')
    if outcome == 'continue' and attempts >= limits['max_sessions']:
        raise _refuse(f'{LEVEL_NAMES[level]}已调解 {attempts} 次，达到每级上限 {limits["max_sessions"]} 次：'
                      '请提请上一级调解，或终止调解。')
    if outcome == 'escalate':
        minimum = limits[level]
        if attempts < minimum:
            raise _refuse(f'按“431”分级化解机制，{LEVEL_NAMES[level]}至少调解 {minimum} 次，'
                          f'本级已调解 {attempts} 次（含本次），请继续本级调解。')
        return 'exhausted' if level == LEVELS[-1] else 'escalate'
    if outcome in _ROUTE_COUNTERS:
        key, words = _ROUTE_COUNTERS[outcome]
        if int(counters.get(key, 0)) >= limits[key]:
            raise _refuse(f'本案已{words} {counters.get(key, 0)} 次，达到上限 {limits[key]} 次。')
    return outcome


@service('disputes.record_session')
def record_session(context: ServiceContext, data: Data) -> Data:
    """Count the session as a "431" attempt at the current tier and decide where the case goes next.

    Properties (all optional, defaults in :mod:`workflows.disputes.settings`): ``minimum.village``,
    ``minimum.township``, ``minimum.county`` (the "431" minimums), ``max_sessions_per_level``,
    ``max_appraisals``, ``max_expert_consultations``, ``max_extensions`` (the loop bounds).
    """
    session, case = context.session, context.case
    level = case.mediation_level or LEVELS[-1]
    outcome = str(data.get('session_outcome') or '')
    limits = _limits(context.properties)
    attempts = int((case.counters or {}).get(level, 0)) + 1
    step = _next_step(outcome, level, attempts, limits, case.counters or {})
    operations.increment_counter(session, case, level, actor=context.actor,
                                 note=f'{LEVEL_NAMES[level]}第 {attempts} 次调解（{data.get("session_on")}）')
    updates: Data = {'next_step': step, 'session_number': attempts, 'session_level': level,
                     'session_total': int(data.get('session_total') or 0) + 1,
                     'level_minimum': limits[level]}
    if outcome in _ROUTE_COUNTERS:
        key = _ROUTE_COUNTERS[outcome][0]
        count = operations.increment_counter(session, case, key, actor=context.actor)
        if outcome == 'appraisal':
            updates['appraisal_count'] = count
    if step == 'exhausted':
        updates.update(case_outcome=OUTCOME_FAILED, termination_reason=REASON_EXHAUSTED)
    elif step == 'terminate':
        updates.update(case_outcome=OUTCOME_TERMINATED, termination_reason=REASON_WITHDRAWN)
    return updates


@service('disputes.escalate_level')
def escalate_level(context: ServiceContext, data: Data) -> Data:
    """Hand the dispute to the next tier up (村 → 乡镇 → 县) once this tier's "431" minimum is met."""
    case = context.case
    current = case.mediation_level or LEVELS[0]
    index = LEVELS.index(current)
    if index + 1 >= len(LEVELS):
        raise WorkflowFault('已是县级调解，无法再提请上一级。')
    upper = LEVELS[index + 1]
    if upper != '县':
        operations.township_unit(context.session, case, data.get('township_code'), field='session_outcome')
    attempts = int((case.counters or {}).get(current, 0))
    operations.change_level(context.session, case, upper, actor=context.actor,
                            note=f'{LEVEL_NAMES[current]}已调解 {attempts} 次未果，提请{LEVEL_NAMES[upper]}')
    return {'mediation_level': upper}


@service('disputes.confirm_extension')
def confirm_extension(context: ServiceContext, data: Data) -> Data:
    """Check an agreed extension (医疗纠纷预防和处理条例 §38): both parties consent, to a later day.

    The clock itself was extended by the task's ``clock.extend`` hook; a refusal here rolls that back.
    """
    if not data.get('extension_agreed'):
        if data.get('agreed_due_on'):
            raise ValidationFailed('数据有误', {'agreed_due_on': ['未达成延长约定时，不应填写延长后的期限。']})
        return {'extension_result': 'not_agreed'}
    problems: dict[str, list[str]] = {}
    for name, who in (('patient_consents', '患方'), ('hospital_consents', '医方')):
        if not data.get(name):
            problems[name] = [f'延长调解期限须经{who}同意（医疗纠纷预防和处理条例 §38）。']
    agreed = data.get('agreed_due_on')
    previous = data.get('mediation_due_on')
    if not agreed:
        problems['agreed_due_on'] = ['请填写约定延长至的日期。']
    elif previous and agreed <= previous:
        problems['agreed_due_on'] = [f'延长后的期限须晚于原期限 {previous}。']
    if problems:
        raise ValidationFailed('延长调解期限的约定不完整。', problems)
    return {'extension_result': 'extended'}


@service('disputes.mark_expired')
def mark_expired(context: ServiceContext, data: Data) -> Data:
    """The mediation period ran out without an agreement: 视为调解不成 (医疗纠纷预防和处理条例 §38)."""
    audit.record(context.session, 'dispute.expired', actor=None, case_id=context.case.id,
                 org_path=context.case.org_path, after={'due': data.get('mediation_due_at')}, note=REASON_EXPIRED)
    return {'case_outcome': OUTCOME_FAILED, 'termination_reason': REASON_EXPIRED}


# -- agreement, judicial confirmation, performance ----------------------------------------------------------

@service('disputes.record_agreement')
def record_agreement(context: ServiceContext, data: Data) -> Data:
    """A signed 调解协议书: store the amount, and set the dates of the 司法确认 window and the 回访.

    The window is 30 calendar days from the day the agreement took effect (人民调解法 §33), its last day
    moved to the next working day if it is a rest day; reminders go out on days 7, 20 and 27.
    """
    session, case = context.session, context.case
    amount = Decimal(str(data['amount_agreed']))
    operations.record_agreement(session, case, amount, actor=context.actor)
    effective = _date(data, 'signed_on')
    calendar = load_calendar(session, case.org_path)
    window_end, _ = period_end(Period(CONFIRMATION_WINDOW_DAYS, 'calendar_days'), effective, calendar)
    updates: Data = {
        'case_outcome': OUTCOME_SETTLED,
        'amount_agreed_words': yuan_in_words(amount),
        'agreement_effective_on': effective.isoformat(),
        'confirmation_deadline_on': window_end.isoformat(),
        'confirmation_deadline_at': _local_iso(end_of_day(window_end)),
        'performance_due_at': _at_notice_hour(_date(data, 'performance_due_on')),
    }
    for day in CONFIRMATION_REMINDER_DAYS:
        updates[f'confirmation_day{day}_at'] = _at_notice_hour(effective + timedelta(days=day))
    return updates


@service('disputes.remind_confirmation')
def remind_confirmation(context: ServiceContext, data: Data) -> Data:
    """Remind whoever holds the 司法确认 follow-up that the 30-day window is running (property ``day``)."""
    session, case = context.session, context.case
    day = _int_property(context.properties, 'day', 0)
    task = session.scalars(sa.select(HumanTask).where(
        HumanTask.instance_id == context.instance.id, HumanTask.bpmn_id == 'confirmation',
        HumanTask.status == 'open')).first()
    users = reminder_recipients(session, task) if task is not None else \
        operations.group_members(session, 'mediator', case.org_path)
    deadline = data.get('confirmation_deadline_on')
    operations.notify(
        session, case, users, kind='reminder', task_id=task.id if task is not None else None,
        key=f'disputes.confirmation:{case.id}:{data.get("agreement_effective_on")}:{day}',
        title=f'司法确认提醒：{case.number} 调解协议生效第 {day} 日',
        body=(f'案件 {case.number} 的调解协议自 {data.get("agreement_effective_on")} 生效，双方可于 {deadline} 前'
              '共同向人民法院申请司法确认（人民调解法 §33），请及时告知并协助当事人。'))
    return {}


@service('disputes.confirmation_lapsed')
def confirmation_lapsed(context: ServiceContext, data: Data) -> Data:
    """The 30-day window closed without a joint application: the agreement binds as a contract only."""
    audit.record(context.session, 'dispute.confirmation_lapsed', actor=None, case_id=context.case.id,
                 org_path=context.case.org_path, after={'deadline': data.get('confirmation_deadline_on')},
                 note='司法确认申请期限届满，双方未共同申请（人民调解法 §33）')
    return {'confirmation_decision': 'lapsed'}


@service('disputes.record_ruling')
def record_ruling(context: ServiceContext, data: Data) -> Data:
    """Put the court's 司法确认 ruling into the case history."""
    after = {name: data.get(name) for name in ('court_name', 'court_case_number', 'court_ruling_result',
                                               'ruling_on', 'confirmation_applied_on')}
    audit.record(context.session, 'dispute.confirmation_ruled', actor=context.actor, case_id=context.case.id,
                 org_path=context.case.org_path, after=after)
    return {}


# -- closure --------------------------------------------------------------------------------------------

@service('disputes.close_case')
def close_case(context: ServiceContext, data: Data) -> Data:
    """Close the dispute: outcome, 个案补贴 tier and amount (以案定补), and stop the mediation clock.

    The outcome comes from the path taken (property ``outcome`` overrides it); the tier is the one the
    reviewer confirmed, else the one the ``dispute_subsidy`` decision table gave.
    """
    session, case = context.session, context.case
    outcome = context.properties.get('outcome') or str(data.get('case_outcome') or OUTCOME_FAILED)
    tier = None if outcome == OUTCOME_REJECTED else (data.get('confirmed_tier') or data.get('subsidy_tier'))
    if tier is not None and tier not in SUBSIDY_AMOUNTS:
        raise WorkflowFault(f'补贴等级“{tier}”不在设置中（{"、".join(SUBSIDY_AMOUNTS)}）。')
    amount = SUBSIDY_AMOUNTS[tier] if tier and outcome in SUBSIDISED_OUTCOMES else Decimal('0.00')
    clock = clocks.case_clock(session, case.id, MEDIATION_CLOCK)
    if clock is not None and clock.status != 'stopped':
        clocks.stop_clock(session, case, MEDIATION_CLOCK, actor=context.actor, note=f'结案：{outcome}')
    operations.close_dispute(session, case, outcome=outcome, tier=tier, subsidy=amount, actor=context.actor)
    return {'case_outcome': outcome, 'subsidy_tier': tier, 'subsidy_amount': str(amount)}
