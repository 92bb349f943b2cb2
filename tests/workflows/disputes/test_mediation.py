"""Tiered mediation: the 30-working-day clock, the "431" ladder, expert consultation, appraisal, extension,
termination and the 视为调解不成 timers."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from engine.clock import LOCAL_ZONE
from engine.clocks import case_clock
from engine.deadlines import explain
from engine.errors import ValidationFailed
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from tests.workflows.disputes.conftest import Driver, bj, session_data

EXPERT = {'expert_name': '汤医生', 'expert_field': '心血管内科', 'consulted_on': '2025-10-09',
          'recusal_confirmed': True, 'expert_opinion': '用药时机尚可，但过敏观察不到位。'}


def appraisal_data(completed_on: str = '2025-10-27') -> dict[str, Any]:
    return {'appraisal_entrusted_by': 'joint', 'appraisal_institution_type': 'medical_association',
            'appraisal_institution': '益阳市医学会', 'appraisal_entrusted_on': '2025-10-20',
            'appraisal_completed_on': completed_on, 'medical_damage': '患者遗留九级伤残。', 'medical_fault': True,
            'causation': True, 'liability_degree': '次要责任', 'appraisal_fee': '3500.00'}


def local_due(task: HumanTask) -> str:
    assert task.due_dt is not None
    return task.due_dt.astimezone(LOCAL_ZONE).strftime('%Y-%m-%d %H:%M:%S')


def pending_timers(driver: Driver, instance_id: int) -> list[str]:
    rows = driver.session.scalars(sa.select(Job).where(Job.instance_id == instance_id, Job.kind == 'timer',
                                                       Job.status == 'pending').order_by(Job.due_dt))
    return [job.due_dt.astimezone(LOCAL_ZONE).strftime('%Y-%m-%d %H:%M:%S') for job in rows]


def test_thirty_working_days_from_acceptance(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    task = driver.task(case, 'session_county')
    # 2025-09-26 + 30 working days, over the National Day break and its make-up Sundays.
    assert local_due(task) == '2025-11-13 23:59:59'
    assert driver.data(case)['mediation_due_on'] == '2025-11-13'
    assert pending_timers(driver, task.instance_id) == ['2025-11-13 23:59:59']
    assert explain(task.due_rule or {}).startswith('30 个工作日，自 2025-09-26 受理起算（医疗纠纷预防和处理条例 §38）')


@pytest.mark.parametrize(('level', 'bpmn_id', 'group', 'unit'), [
    ('村', 'session_village', 'village_mediator', 'township'),
    ('乡镇', 'session_township', 'township_mediator', 'township'),
    ('县', 'session_county', 'mediator', 'county'),
])
def test_first_tier_routes_to_its_committee(driver: Driver, level: str, bpmn_id: str, group: str,
                                            unit: str) -> None:
    case = driver.start(township_code='430922001')
    driver.accept(case, start_level=level)
    task = driver.task(case, bpmn_id)
    assert (task.candidate_group, task.org_unit_id) == (group, getattr(driver.org, unit).id)
    assert driver.fresh(case).mediation_level == level
    assert driver.fresh(case).counters == {'村': 0, '乡镇': 0, '县': 0}


@pytest.mark.parametrize(('code', 'message'), [(None, '须填写'), ('430903', '不是本县'), ('430922', '不是本县')])
def test_village_tier_needs_a_township_of_the_county(driver: Driver, code: str | None, message: str) -> None:
    case = driver.start()
    with pytest.raises(ValidationFailed) as error:
        driver.accept(case, start_level='村', confirmed_township_code=code)
    driver.session.rollback()
    assert message in error.value.fields['confirmed_township_code'][0]
    assert driver.open_ids(case) == ['accept_review']
    assert case_clock(driver.session, case.id, 'mediation') is None


def test_confirmed_township_code_is_used(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case, start_level='村', confirmed_township_code='430922002')
    assert driver.task(case, 'session_village').org_unit_id == driver.org.other_township.id


def test_escalating_before_the_431_minimum_is_refused_and_changes_nothing(driver: Driver) -> None:
    case = driver.start(township_code='430922001')
    driver.accept(case, start_level='村')
    with pytest.raises(ValidationFailed) as error:
        driver.complete(case, 'session_village', session_data('escalate', on='2025-09-26'))
    driver.session.rollback()
    assert '至少调解 4 次' in error.value.fields['session_outcome'][0]
    assert driver.fresh(case).counters['村'] == 0
    assert driver.open_ids(case) == ['session_village']


def test_sessions_per_tier_are_bounded(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    for _ in range(9):
        driver.complete(case, 'session_county', session_data('continue', on='2025-09-26'))
    with pytest.raises(ValidationFailed) as error:
        driver.complete(case, 'session_county', session_data('continue', on='2025-09-26'))
    driver.session.rollback()
    assert '达到每级上限 10 次' in error.value.fields['session_outcome'][0]
    assert driver.fresh(case).counters['县'] == 9


def test_escalation_moves_up_one_tier(driver: Driver) -> None:
    case = driver.start(township_code='430922001')
    driver.accept(case, start_level='乡镇')
    for _ in range(2):
        driver.complete(case, 'session_township', session_data('continue', on='2025-09-26'))
    driver.complete(case, 'session_township', session_data('escalate', on='2025-09-26'))
    assert driver.open_ids(case) == ['session_county']
    assert driver.fresh(case).counters == {'村': 0, '乡镇': 3, '县': 0}
    [event] = driver.audit(case, 'dispute.level_changed')[-1:]
    assert event.before == {'mediation_level': '乡镇'} and event.after['mediation_level'] == '县'


def test_expert_consultation_lands_in_the_expert_queue_and_returns(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    driver.complete(case, 'session_county', session_data('expert', on='2025-09-26'))
    assert driver.open_ids(case) == ['expert_consult']
    assert [task.bpmn_id for task in driver.queue('expert')] == ['expert_consult']
    driver.complete(case, 'expert_consult', EXPERT)
    assert driver.open_ids(case) == ['session_county']
    assert driver.fresh(case).counters['专家咨询'] == 1


def test_appraisal_pauses_the_clock_by_exactly_the_paused_working_days(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    driver.at('2025-10-20 10:00')
    driver.complete(case, 'session_county', session_data('appraisal', on='2025-10-20'))
    appraisal = driver.task(case, 'appraisal')
    clock = case_clock(driver.session, case.id, 'mediation')
    assert clock is not None and clock.status == 'paused' and clock.due_dt is None
    # No 视为调解不成 timer runs while the appraisal does.
    assert pending_timers(driver, appraisal.instance_id) == []
    driver.at('2025-10-27 16:00')
    driver.complete(case, 'appraisal', appraisal_data())
    # Paused 2025-10-20 (still counted) to 2025-10-27: 21, 22, 23, 24 and 27 October, five working days.
    task = driver.task(case, 'session_county')
    assert local_due(task) == '2025-11-20 23:59:59'
    assert driver.data(case)['mediation_due_on'] == '2025-11-20'
    assert pending_timers(driver, task.instance_id) == ['2025-11-20 23:59:59']
    assert driver.fresh(case).counters['鉴定'] == 1 and driver.data(case)['appraisal_count'] == 1
    # The old due day passes without consequence.
    driver.at('2025-11-14 09:00')
    assert driver.open_ids(case) == ['session_county']


def test_appraisals_are_bounded(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    for _ in range(2):
        driver.complete(case, 'session_county', session_data('appraisal', on='2025-09-26'))
        driver.complete(case, 'appraisal', appraisal_data(completed_on='2025-09-26'))
    with pytest.raises(ValidationFailed) as error:
        driver.complete(case, 'session_county', session_data('appraisal', on='2025-09-26'))
    driver.session.rollback()
    assert '医疗损害鉴定 2 次' in error.value.fields['session_outcome'][0]


def _extend(driver: Driver, case: Any, **data: Any) -> None:
    driver.complete(case, 'session_county', session_data('extend', on='2025-11-10'))
    driver.complete(case, 'extension', data)


def test_extension_agreed_before_expiry_moves_the_deadline(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    driver.at('2025-11-10 09:00')
    _extend(driver, case, extension_agreed=True, agreed_due_on='2025-12-05', extension_reason='等待医保报销结算',
            patient_consents=True, hospital_consents=True)
    task = driver.task(case, 'session_county')
    assert local_due(task) == '2025-12-05 23:59:59'
    assert pending_timers(driver, task.instance_id) == ['2025-12-05 23:59:59']
    assert driver.document_kinds(case)[-1] == 'extension_agreement'
    [event] = driver.audit(case, 'clock.extended')
    assert event.note == '等待医保报销结算'
    driver.at('2025-11-14 09:00')
    assert driver.open_ids(case) == ['session_county']
    driver.at('2025-12-06 00:00:01')
    assert driver.open_ids(case) == ['termination_notice']


def test_extension_not_agreed_keeps_the_deadline(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    _extend(driver, case, extension_agreed=False)
    assert local_due(driver.task(case, 'session_county')) == '2025-11-13 23:59:59'
    assert 'extension_agreement' not in driver.document_kinds(case)


@pytest.mark.parametrize(('data', 'field'), [
    ({'extension_agreed': True, 'agreed_due_on': '2025-12-05', 'patient_consents': True}, 'hospital_consents'),
    ({'extension_agreed': True, 'agreed_due_on': '2025-11-12', 'patient_consents': True,
      'hospital_consents': True}, 'agreed_due_on'),
    ({'extension_agreed': True, 'patient_consents': True, 'hospital_consents': True}, 'agreed_due_on'),
    ({'extension_agreed': False, 'agreed_due_on': '2025-12-05'}, 'agreed_due_on'),
])
def test_incomplete_extension_is_refused(driver: Driver, data: dict[str, Any], field: str) -> None:
    case = driver.start()
    driver.accept(case)
    driver.complete(case, 'session_county', session_data('extend', on='2025-09-26'))
    with pytest.raises(ValidationFailed) as error:
        driver.complete(case, 'extension', data)
    driver.session.rollback()
    assert field in error.value.fields
    clock = case_clock(driver.session, case.id, 'mediation')
    assert clock is not None and clock.extended_due_on is None


def test_withdrawal_terminates_with_notice(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    driver.complete(case, 'session_county', session_data('terminate', on='2025-09-26'))
    assert driver.open_ids(case) == ['termination_notice']
    driver.complete(case, 'termination_notice', {'route_litigation': True, 'delivery_method': '直接送达',
                                                 'notice_delivered_on': '2025-09-26'})
    assert driver.open_ids(case) == ['analyse_causes']
    notice = driver.documents(case)[-1]
    assert notice.kind == 'termination_notice' and notice.audience == 'parties'
    assert '当事人撤回调解申请' in notice.body_html


def _reach(driver: Driver, host: str) -> Any:
    level = {'session_village': '村', 'session_township': '乡镇'}.get(host, '县')
    case = driver.start(township_code='430922001')
    driver.accept(case, start_level=level)
    if host == 'expert_consult':
        driver.complete(case, 'session_county', session_data('expert', on='2025-09-26'))
    elif host == 'extension':
        driver.complete(case, 'session_county', session_data('extend', on='2025-09-26'))
    assert driver.open_ids(case) == [host]
    return case


@pytest.mark.parametrize('host', ['session_village', 'session_township', 'session_county', 'expert_consult',
                                  'extension'])
def test_deadline_without_agreement_counts_as_failed(driver: Driver, host: str) -> None:
    case = _reach(driver, host)
    driver.at('2025-11-13 23:00')
    assert driver.open_ids(case) == [host]
    driver.at('2025-11-14 00:00:01')
    assert driver.open_ids(case) == ['termination_notice']
    assert driver.data(case)['case_outcome'] == '调解不成'
    assert driver.audit(case, 'dispute.expired')
    driver.complete(case, 'termination_notice', {'route_litigation': True, 'route_administrative': True,
                                                 'delivery_method': '邮寄送达', 'notice_delivered_on': '2025-11-14'})
    notice = driver.documents(case)[-1]
    assert notice.kind == 'termination_notice' and '视为调解不成' in notice.body_html
    driver.complete(case, 'analyse_causes', {'hospital_problems': False})
    driver.complete(case, 'close_review', {'review_opinion': '调解不成，同意结案。'})
    closed = driver.fresh(case)
    assert (closed.status, closed.outcome) == ('closed', '调解不成')
    [closing] = driver.audit(case, 'dispute.closed')
    assert closing.after['subsidy_amount'] == '0.00'


def test_reminders_before_the_mediation_deadline(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    task = driver.task(case, 'session_county')
    reminders = driver.session.scalars(sa.select(Job).where(Job.human_task_id == task.id, Job.kind == 'reminder')
                                       .order_by(Job.due_dt)).all()
    # 10, 5 and 2 working days before 2025-11-13, at 09:00.
    assert [job.due_dt for job in reminders] == [bj('2025-10-30 09:00'), bj('2025-11-06 09:00'),
                                                 bj('2025-11-11 09:00')]
