"""Service operations the community-corrections diagrams call (``camunda:topic="corrections.…"``).

Each one reads the task data and the service task's ``camunda:properties``, calls :mod:`.operations`,
and returns the data the diagram's gateways and timers read next. Raising ValidationFailed (a bad org
code in a form, a sanction that does not fit the correction type) rolls the whole command back, so the
person who submitted the form sees the message and nothing changed.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from engine.clock import LOCAL_ZONE
from engine.clocks import case_clock, start_clock, stop_clock
from engine.deadlines import is_truthy
from engine.errors import ValidationFailed
from engine.services import ServiceContext, service
from workflows.corrections import operations as ops
from workflows.corrections.forms import has_female_member
from workflows.shared.documents import generate_document

Data = dict[str, Any]

_DECISION_DOCUMENTS = {'表扬': ('commendation', '表扬决定书'), '训诫': ('reprimand', '训诫决定书'),
                       '警告': ('warning', '警告决定书')}
_INVALID = '数据有误，请检查标出的字段。'


def _date(data: Data, field: str) -> date:
    return ops.parse_date(data.get(field), field)


def _optional_date(data: Data, field: str) -> date | None:
    return _date(data, field) if data.get(field) else None


def _property(context: ServiceContext, name: str, default: str = '') -> str:
    return str(context.properties.get(name) or default).strip()


# -- 调查评估 ---------------------------------------------------------------------------------------------

@service('corrections.prepare_assessment')
def prepare_assessment(context: ServiceContext, data: Data) -> Data:
    """Start the assessment's case clock: 10 working days from receipt of the 委托函, 5 under 速裁 (实施办法 §14).

    Properties: ``length``, ``expedited_length`` (working days), ``from_label``, ``basis``.
    """
    received = _date(data, 'commission_received_on')
    if received > ops.today():
        raise ValidationFailed(_INVALID, {'commission_received_on': ['收到委托函的日期不能晚于今天。']})
    expedited = is_truthy(data.get('expedited'))
    length = int(_property(context, 'expedited_length' if expedited else 'length', '5' if expedited else '10'))
    clock = start_clock(context.session, context.case, 'assessment', length, 'working_days', received,
                        actor=context.actor, from_label=_property(context, 'from_label', '收到委托函'),
                        basis=_property(context, 'basis') or None)
    assert clock.due_dt is not None  # a clock just started runs
    due = clock.due_dt.astimezone(LOCAL_ZONE).date()
    offer = ops.calendar_for(context.session, context.case).add_working_days(due, -ops.EXTENSION_OFFER_WORKING_DAYS)
    return {'assessment_due_on': due.isoformat(), 'extension_offer_at': ops.timer_at(max(offer, ops.today()), 9)}


@service('corrections.check_extension')
def check_extension(context: ServiceContext, data: Data) -> Data:
    """An agreed extension needs the agreed date, later than the legal one; no date without agreement."""
    agreed, new_due = is_truthy(data.get('extension_agreed')), _optional_date(data, 'extended_due_on')
    if agreed and new_due is None:
        raise ValidationFailed(_INVALID, {'extended_due_on': ['已与委托机关商定延期的，请填写商定的新期限。']})
    if not agreed and new_due is not None:
        raise ValidationFailed(_INVALID, {'extended_due_on': ['未商定延期的，不要填写新期限。']})
    if new_due is not None and new_due <= _date(data, 'assessment_due_on'):
        raise ValidationFailed(_INVALID, {'extended_due_on': [f'新期限须晚于法定期限 {data["assessment_due_on"]}。']})
    return {}


@service('corrections.check_township')
def check_township(context: ServiceContext, data: Data) -> Data:
    """Check the 司法所 named in a form (property ``field``, default ``township_code``).

    With property ``move`` = ``true`` the case is entrusted to it (法 §9): its unit becomes that 司法所.
    A blank field is accepted when the case already sits at a 司法所.
    """
    field = _property(context, 'field', 'township_code')
    code = str(data.get(field) or '').strip()
    if not code and context.case.org_unit.level == 'township':
        return {field: context.case.org_unit.code, 'township_name': context.case.org_unit.name}
    unit = ops.township_in_county(context.session, context.case, code, field)
    if is_truthy(_property(context, 'move')) and unit.id != context.case.org_unit_id:
        ops.move_case(context.session, context.case, unit, actor=context.actor, reason='指定受委托司法所')
    return {field: unit.code, 'township_name': unit.name}


@service('corrections.finish_assessment')
def finish_assessment(context: ServiceContext, data: Data) -> Data:
    """Stop the assessment clock and record the result: the opinion (适宜/不适宜) or property ``outcome``."""
    outcome = _property(context, 'outcome') or str(data.get('opinion') or '')
    clock = case_clock(context.session, context.case.id, 'assessment')
    if clock is not None and clock.status != 'stopped':
        stop_clock(context.session, context.case, 'assessment', actor=context.actor, note=outcome)
    ops.set_outcome(context.session, context.case, outcome, actor=context.actor)
    return {'assessment_outcome': outcome}


# -- 交付接收 ---------------------------------------------------------------------------------------------

@service('corrections.prepare_reception')
def prepare_reception(context: ServiceContext, data: Data) -> Data:
    """The day the offender must have reported by: 10 days after the judgment took effect (法 §21)."""
    effective = _date(data, 'judgment_effective_on')
    due = ops.legal_day(context.session, context.case, effective, 10)
    return {'report_due_on': due.isoformat(), 'report_overdue_at': ops.timer_at(due + timedelta(days=1))}


@service('corrections.check_team')
def check_team(context: ServiceContext, data: Data) -> Data:
    """A female offender's 矫正小组 must have a female member (社区矫正法 §25)."""
    gender = str(context.case.start_data.get('gender') or ops.gender_from_id_number(context.case.id_number) or '')
    if gender == '女' and not has_female_member(data):
        raise ValidationFailed(_INVALID, {'members': [
            '社区矫正对象为女性的，矫正小组中应有女性成员（社区矫正法 §25）。']})
    return {}


@service('corrections.set_management_level')
def set_management_level(context: ServiceContext, data: Data) -> Data:
    """Set the 管理类别 chosen in the form (field ``management_level``, reason ``level_reason``)."""
    ops.set_management_level(context.session, context.case, str(data.get('management_level') or ''),
                             actor=context.actor, reason=str(data.get('level_reason') or '入矫初始评估'))
    return {}


@service('corrections.start_supervision')
def start_supervision(context: ServiceContext, data: Data) -> Data:
    """Start the recurring reports and the release on expiry, each as its own short request instance."""
    case, start = context.case, ops.today()
    level = case.management_level or '普管'
    first = ops.add_cycle(start, ops.REPORT_CYCLES[level])
    started = {'定期报告': first}
    if case.correction_type == '暂予监外执行':
        started['身体状况报告'] = ops.add_months(start, 1)
        if case.start_data.get('temporary_release_reason') == '保外就医':
            started['病情复查'] = ops.add_months(case.term_start_on or start, 3)
    for kind, due in started.items():
        if case.term_end_on is None or due <= case.term_end_on:
            ops.start_request(context.session, case, 'corrections_report', {'report_kind': kind,
                                                                            'due_on': due.isoformat()},
                              actor=context.actor)
    ops.start_request(context.session, case, 'corrections_release', {'reason': '期满解除'}, actor=context.actor)
    return {'supervision_started_on': start.isoformat()}


# -- recurring reports ------------------------------------------------------------------------------------

@service('corrections.check_case_active')
def check_case_active(context: ServiceContext, data: Data) -> Data:
    """Whether the corrections still run (the case is open and not concluded)."""
    return {'case_active': context.case.status == 'open' and context.case.outcome is None}


@service('corrections.schedule_next_report')
def schedule_next_report(context: ServiceContext, data: Data) -> Data:
    """Start the next report of the same kind, one cycle on (by 管理类别 for 定期报告), unless the term is over."""
    kind = str(data.get('report_kind') or '')
    due = _date(data, 'due_on')
    cycle = ops.REPORT_KINDS.get(kind) or ops.REPORT_CYCLES[context.case.management_level or '普管']
    following = ops.add_cycle(due, cycle)
    case = context.case
    if case.status != 'open' or case.outcome is not None or (case.term_end_on and following > case.term_end_on):
        return {'next_report_on': None}
    ops.start_request(context.session, case, 'corrections_report',
                      {'report_kind': kind, 'due_on': following.isoformat()}, actor=context.actor)
    return {'next_report_on': following.isoformat()}


# -- proposing sanctions from other processes ------------------------------------------------------------

def _propose(context: ServiceContext, kind: str, facts: str) -> Data:
    ops.start_request(context.session, context.case, 'corrections_sanction',
                      {'kind': kind, 'facts': facts[:500], 'source': context.instance.definition.name[:60]},
                      actor=context.actor)
    return {'proposed_sanction': kind}


@service('corrections.propose_sanction')
def propose_sanction(context: ServiceContext, data: Data) -> Data:
    """Start a 奖惩 request. Properties: ``kind`` or ``kind_field`` (no kind, or 教育, proposes nothing),
    ``facts`` (a lead sentence) and ``facts_field`` (the form field with the details)."""
    kind = _property(context, 'kind') or str(data.get(_property(context, 'kind_field', 'proposal')) or '')
    if kind not in ops.SANCTION_KINDS:
        return {'proposed_sanction': ''}
    details = str(data.get(_property(context, 'facts_field', 'notes')) or '')
    return _propose(context, kind, '。'.join(part for part in (_property(context, 'facts'), details) if part))


@service('corrections.propose_for_lateness')
def propose_for_lateness(context: ServiceContext, data: Data) -> Data:
    """Propose the sanction the ladder gives for reporting late, or for absconding (实施办法 §34–35, §46).

    Properties: ``due_field`` (the last allowed day), ``actual_field`` (when it happened), ``found_field``
    (False: the person is missing, which calls for revocation/收监), ``facts``.
    """
    lead = _property(context, 'facts', '未按规定时间报到')
    found_field = _property(context, 'found_field')
    if found_field and not is_truthy(data.get(found_field)):
        return _propose(context, ops.revocation_kind(context.case), f'{lead}，经查找下落不明，脱离监管。')
    due = _date(data, _property(context, 'due_field', 'report_due_on'))
    actual = _optional_date(data, _property(context, 'actual_field', 'reported_on')) or ops.today()
    days = (actual - due).days
    if days <= 0:
        return {'proposed_sanction': ''}
    return _propose(context, ops.kind_for_lateness(context.case, days), f'{lead}，逾期 {days} 日（应于 {due} 前）。')


# -- 变更执行地 -------------------------------------------------------------------------------------------

@service('corrections.check_residence_target')
def check_residence_target(context: ServiceContext, data: Data) -> Data:
    """Resolve the new place of execution: the receiving county, and the unit that coordinates the two."""
    session, case = context.session, context.case
    target = ops.unit_by_code(session, str(data.get('target_org_unit') or ''))
    receiving = ops.ancestor_at(target, 'county') if target is not None else None
    current = ops.ancestor_at(case.org_unit, 'county')
    if target is None or receiving is None or current is None:
        raise ValidationFailed(_INVALID, {'target_org_unit': ['请填写新执行地县级司法局（或其司法所）的机构代码。']})
    if receiving.id == current.id:
        raise ValidationFailed(_INVALID, {'target_org_unit': [
            f'新执行地仍在{current.name}辖区内，无需变更执行地，请在县内调整受委托司法所。']})
    coordinating = ops.common_ancestor(current, receiving)
    return {'receiving_county_code': receiving.code, 'receiving_county_name': receiving.name,
            'source_county_code': current.code, 'source_county_name': current.name,
            'coordinating_unit_code': coordinating.code, 'coordinating_unit_name': coordinating.name}


@service('corrections.transfer_case')
def transfer_case(context: ServiceContext, data: Data) -> Data:
    """Hand the case to the new place of execution (法 §27): its unit changes, the old county keeps read access.

    The receiving county may name one of its 司法所 (``receiving_unit_code``) in its reply; otherwise the
    unit the application named. The offender must report there within 7 days of the decision (实施办法 §31).
    """
    session, case = context.session, context.case
    receiving = ops.unit_by_code(session, str(data.get('receiving_county_code') or ''))
    if receiving is None:
        raise ValidationFailed(_INVALID, {'receiving_county_code': ['新执行地不存在。']})
    code = str(data.get('receiving_unit_code') or '').strip() or str(data.get('target_org_unit') or '')
    unit = ops.unit_by_code(session, code)
    if unit is None or not receiving.contains(unit):
        unit = receiving
    old_county = ops.ancestor_at(case.org_unit, 'county')
    ops.move_case(session, case, unit, actor=context.actor, keep_access=old_county,
                  reason=f'变更执行地：由{old_county.name if old_county else case.org_unit.name}移交{unit.name}')
    decided = _date(data, 'decided_on')
    due = ops.legal_day(session, case, decided, 7)
    return {'new_report_due_on': due.isoformat(), 'new_report_overdue_at': ops.timer_at(due + timedelta(days=1)),
            'new_unit_name': unit.name}


# -- 外出 ------------------------------------------------------------------------------------------------

_LEVEL_NAMES = {'township': '司法所', 'county': '县级社区矫正机构', 'city': '市级社区矫正机构'}


@service('corrections.leave_approval_level')
def leave_approval_level(context: ServiceContext, data: Data) -> Data:
    """Who approves the leave, counting the days away in the two months around it (实施办法 §26)."""
    leave_from, leave_to = _date(data, 'leave_from'), _date(data, 'leave_to')
    days, cumulative, level = ops.leave_level(context.case, leave_from, leave_to)
    applied = _optional_date(data, 'applied_on') or ops.today()
    city = ops.ancestor_at(context.case.org_unit, 'city')
    return {'leave_days': days, 'leave_days_in_two_months': cumulative, 'approval_level': level,
            'approval_level_name': _LEVEL_NAMES[level], 'applied_days_ahead': (leave_from - applied).days,
            'city_unit_code': city.code if city else context.case.org_unit.code,
            'return_overdue_at': ops.timer_at(leave_to + timedelta(days=1))}


@service('corrections.record_leave')
def record_leave(context: ServiceContext, data: Data) -> Data:
    """Keep the approved leave with the case, for the two-month total."""
    ops.record_leave(context.session, context.case, _date(data, 'leave_from'), _date(data, 'leave_to'),
                     str(data.get('destination') or ''), actor=context.actor,
                     level=str(data.get('approval_level') or ''), instance_id=context.instance.id)
    return {}


# -- 电子定位 ---------------------------------------------------------------------------------------------

@service('corrections.start_monitoring')
def start_monitoring(context: ServiceContext, data: Data) -> Data:
    """Record the approved period (≤ 3 months, 法 §29) and when its renewal review is due."""
    start_on = max(_date(data, 'start_on'), ops.today())
    months = int(data.get('approved_months') or data.get('months') or 3)
    until = ops.start_monitoring(context.session, context.case, start_on, months, actor=context.actor,
                                 grounds=str(data.get('grounds') or ''), instance_id=context.instance.id)
    review = max(until - timedelta(days=ops.MONITORING_REVIEW_DAYS), ops.today())
    return {'monitoring_from': start_on.isoformat(), 'monitoring_until': until.isoformat(),
            'monitoring_review_at': ops.timer_at(review, 9),
            'monitoring_expire_at': ops.timer_at(until + timedelta(days=1))}


@service('corrections.end_monitoring')
def end_monitoring(context: ServiceContext, data: Data) -> Data:
    """End this approval's monitoring (property ``reason``)."""
    ops.end_monitoring(context.session, context.case, actor=context.actor, instance_id=context.instance.id,
                       reason=_property(context, 'reason', '解除电子定位'))
    return {}


@service('corrections.renew_monitoring')
def renew_monitoring(context: ServiceContext, data: Data) -> Data:
    """Ask for a further period: a new 电子定位 request from the day after this one ends, for approval again."""
    following = _date(data, 'monitoring_until') + timedelta(days=1)
    months = int(data.get('renewal_months') or 3)
    ops.start_request(context.session, context.case, 'corrections_monitoring',
                      {'grounds': data.get('grounds'), 'months': months, 'start_on': following.isoformat(),
                       'is_renewal': True}, actor=context.actor)
    ops.end_monitoring(context.session, context.case, actor=context.actor, instance_id=context.instance.id,
                       reason='期满，已提请延长')
    return {'renewal_from': following.isoformat()}


# -- 奖惩 ------------------------------------------------------------------------------------------------

@service('corrections.check_sanction_kind')
def check_sanction_kind(context: ServiceContext, data: Data) -> Data:
    """Which branch the request takes; refuses a kind that does not fit the correction type."""
    return {'sanction_branch': ops.check_sanction_kind(context.case, str(data.get('kind') or ''))}


@service('corrections.record_decision')
def record_decision(context: ServiceContext, data: Data) -> Data:
    """Issue the 表扬/训诫/警告决定书, count it, and start what the ladder calls for next."""
    kind = str(data.get('kind') or '')
    decided_on = _date(data, 'decided_on')
    template, title = _DECISION_DOCUMENTS[kind]
    document = generate_document(context.session, context.case, context.instance, f'corrections/{template}', title,
                                 data, actor=context.actor, audience='parties')
    follow_ups = ops.record_decision(context.session, context.case, kind, decided_on, actor=context.actor,
                                     instance_id=context.instance.id, document_number=document.number)
    for follow_kind, facts in follow_ups:
        _propose(context, follow_kind, facts)
    return {'document_number': document.number, 'follow_up_sanctions': '、'.join(k for k, _ in follow_ups)}


@service('corrections.issue_proposal')
def issue_proposal(context: ServiceContext, data: Data) -> Data:
    """Issue the 建议书 (治安管理处罚/撤销缓刑/撤销假释/收监执行/减刑) to the deciding body."""
    kind = str(data.get('kind') or '')
    title = f'{kind.removeprefix("提请")}建议书'
    document = generate_document(context.session, context.case, context.instance, 'corrections/proposal', title,
                                 data, actor=context.actor)
    return {'proposal_number': document.number}


@service('corrections.mark_pending')
def mark_pending(context: ServiceContext, data: Data) -> Data:
    """Note the proposal (or coercive measure) as awaiting a decision: it blocks release on expiry."""
    since = _optional_date(data, 'sent_on') or _optional_date(data, 'measure_started_on') or ops.today()
    ops.add_pending(context.session, context.case, str(data.get('kind') or ''), since, actor=context.actor,
                    instance_id=context.instance.id)
    return {'pending_since': since.isoformat()}


@service('corrections.record_ruling')
def record_ruling(context: ServiceContext, data: Data) -> Data:
    """Record the decision on a proposal; a revocation or 收监 ends the corrections, a 减刑 moves the release."""
    kind = str(data.get('kind') or '')
    ruled_on = _date(data, 'ruled_on')
    new_end = _optional_date(data, 'new_term_end')
    reason = ops.resolve_pending(context.session, context.case, kind, data.get('result') == '准许', ruled_on,
                                 actor=context.actor, instance_id=context.instance.id, new_term_end=new_end)
    if reason is not None:
        ops.start_request(context.session, context.case, 'corrections_release',
                          {'reason': reason, 'event_on': ruled_on.isoformat(),
                           'notes': f'{kind}：{data.get("ruling_number") or ""}'}, actor=context.actor)
    elif kind == '提请减刑' and new_end is not None and data.get('result') == '准许':
        # The release instance waiting for the old expiry is superseded by one for the new term.
        ops.start_request(context.session, context.case, 'corrections_release', {'reason': '期满解除'},
                          actor=context.actor)
    return {'termination_reason': reason or ''}


# -- 解除/终止 --------------------------------------------------------------------------------------------

@service('corrections.prepare_release')
def prepare_release(context: ServiceContext, data: Data) -> Data:
    """Dates of the release on expiry (期满鉴定 30 days before, 解矫 on the last day), or a termination."""
    reason = str(data.get('reason') or '期满解除')
    case = context.case
    if reason != '期满解除':
        return {'release_kind': 'termination', 'reason': reason,
                'event_on': (_optional_date(data, 'event_on') or ops.today()).isoformat()}
    if case.term_end_on is None:
        raise ValidationFailed(_INVALID, {'case_id': ['案件没有矫正结束日，无法安排期满解除。']})
    ops.change_counters(context.session, case, {ops.RELEASE_INSTANCE: context.instance.id}, actor=context.actor,
                        note='期满解除流程')
    appraisal_on = case.term_end_on - timedelta(days=ops.APPRAISAL_LEAD_DAYS)
    return {'release_kind': 'expiry', 'reason': reason, 'term_end_on': case.term_end_on.isoformat(),
            'appraisal_start_on': appraisal_on.isoformat(), 'appraisal_start_at': ops.timer_at(appraisal_on, 9),
            'term_end_at': ops.timer_at(case.term_end_on)}


@service('corrections.check_release_current')
def check_release_current(context: ServiceContext, data: Data) -> Data:
    """Whether this release still applies: the case runs, and no later release (after a 减刑) replaced it."""
    case = context.case
    current = (case.counters or {}).get(ops.RELEASE_INSTANCE) == context.instance.id
    return {'release_current': current and case.status == 'open' and case.outcome is None}


@service('corrections.check_release_blocked')
def check_release_blocked(context: ServiceContext, data: Data) -> Data:
    """Whether a revocation, 收监 or coercive measure is pending: then the offender is not released."""
    blockers = ops.release_blockers(context.case)
    return {'release_blocked': bool(blockers),
            'release_blockers': '、'.join(f'{b["kind"]}（{b["since"]}起）' for b in blockers)}


@service('corrections.conclude')
def conclude(context: ServiceContext, data: Data) -> Data:
    """End the corrections (outcome = property ``outcome`` or the release reason) and close the case."""
    outcome = _property(context, 'outcome') or str(data.get('reason') or '期满解除')
    ops.conclude_case(context.session, context.case, outcome, actor=context.actor, instance_id=context.instance.id)
    return {'outcome': outcome}

