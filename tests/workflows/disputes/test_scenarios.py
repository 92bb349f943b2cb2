"""The seed stories, end to end: the 桃江 red alert settled the same day, the Yongding "431" ladder ending in
guidance to court, and a long mediation extended by agreement and settled after many sessions."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from engine.clock import LOCAL_ZONE
from engine.clocks import case_clock
from engine.models.jobs import Job
from engine.models.notifications import Notification
from tests.workflows.disputes.conftest import Driver, agreement_data, session_data
from tests.workflows.disputes.test_mediation import EXPERT, appraisal_data, local_due, pending_timers


def test_taojiang_red_alert_settled_the_same_day(driver: Driver) -> None:
    """王哲 died on 25 June after three failed talks; the 综治中心 brought 医调委, 卫健局 and the hospital
    together that day, with a senior mediator and a counsellor, and the family signed in the afternoon."""
    driver.at('2025-06-25 09:30')
    case = driver.start(applied_on='2025-06-25', source='诉源', patient_died=True, prior_failed_talks=3,
                        online_attention=True, people_involved=6, claimed_amount='600000.00',
                        applicant_side='患方', dispute_summary='家属认为医院诊断延误、用药不当，导致患者死亡。')
    driver.accept(case, accepted_on='2025-06-25')
    assert driver.fresh(case).risk_colour == 'red'
    [alert] = driver.session.scalars(sa.select(Notification).where(Notification.kind == 'red_alert')).all()
    assert alert.user_id == driver.user('chief').id and '红色预警' in alert.title

    # Each body finds its part of the joint session in its own queue, due the same day.
    queues = {'senior': 'red_lead', 'counsellor': 'red_counselling', 'mediator': 'joint_committee',
              'health': 'joint_health', 'hospital': 'joint_hospital'}
    for username, bpmn_id in queues.items():
        [task] = [t for t in driver.queue(username) if t.case_id == case.id and t.bpmn_id == bpmn_id]
        assert local_due(task) == '2025-06-25 23:59:59'
    assert 'joint_health' not in [t.bpmn_id for t in driver.queue('mediator')]
    assert 'red_lead' not in [t.bpmn_id for t in driver.queue('counsellor')]

    driver.at('2025-06-25 11:00')
    driver.complete(case, 'red_counselling', {'counselling_record': '对家属进行心理疏导，情绪趋于平稳。',
                                              'emotional_state': '基本稳定', 'mass_incident_risk': False})
    driver.complete(case, 'joint_hospital', {'hospital_statement': '说明抢救经过和用药情况。',
                                             'hospital_offer': '200000.00'})
    driver.complete(case, 'joint_committee', {'committee_opinion': '解读诊疗规范，核对证据。'})
    driver.complete(case, 'joint_health', {'health_opinion': '提供监管依据。'})
    driver.at('2025-06-25 13:30')
    driver.complete(case, 'red_lead', {'joint_outcome': 'settled', 'lead_record': '三小时完成证据核对、责任厘清。'})
    assert driver.open_ids(case) == ['draft_agreement']

    driver.at('2025-06-25 15:00')
    driver.complete(case, 'draft_agreement', agreement_data(
        signed_on='2025-06-25', performance_due_on='2025-06-25', amount_claimed='600000.00',
        amount_agreed='260000.00', insurer_share='150000.00',
        other_terms='医院返还部分医疗费；患方亲属自愿放弃后续诉求。'))
    settled = driver.fresh(case)
    assert settled.agreed_amount == Decimal('260000.00')
    agreement = [d for d in driver.documents(case) if d.kind == 'agreement'][0]
    assert agreement.created_dt.astimezone(LOCAL_ZONE).date().isoformat() == '2025-06-25'
    assert '贰拾陆万元整' in agreement.body_html

    driver.at('2025-06-25 16:00')
    assert sorted(driver.open_ids(case)) == ['confirmation', 'followup']
    driver.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    driver.complete(case, 'followup', {'visit_on': '2025-06-25', 'visit_method': '当面回访',
                                       'performance_status': 'performed', 'paid_amount': '260000.00',
                                       'satisfaction': '满意'})
    driver.complete(case, 'analyse_causes', {'hospital_problems': True, 'problems_found': '过敏反应后再次用药。',
                                             'rectification_suggestions': '完善药物过敏处置流程。'})
    driver.complete(case, 'health_rectification', {'rectification_measures': '全院通报并培训。',
                                                   'rectification_status': 'done',
                                                   'rectification_reply_on': '2025-07-10'})
    driver.complete(case, 'close_review', {'review_opinion': '红色预警案件当日化解，同意结案。'})
    closed = driver.fresh(case)
    assert (closed.status, closed.outcome, closed.subsidy_tier) == ('closed', '调解成功', '重大')
    [event] = driver.audit(case, 'dispute.closed')
    assert event.after['subsidy_amount'] == '2000.00'
    assert driver.document_kinds(case) == ['registration_form', 'rights_notice', 'agreement', 'followup_record',
                                           'rectification_letter']


def test_yongding_431_ladder_exhausted_ends_in_guidance_to_court(driver: Driver) -> None:
    """Village at least 4 attempts, township at least 3, county at least 1, then litigation or legal aid."""
    case = driver.start(township_code='430922001', claimed_amount='50000.00')
    driver.accept(case, start_level='村')
    village_dates = ['2025-09-26', '2025-09-29', '2025-10-09', '2025-10-10']
    for number, day in enumerate(village_dates, start=1):
        driver.at(f'{day} 10:00')
        [task] = driver.queue('village')
        assert (task.bpmn_id, task.org_unit_id) == ('session_village', driver.org.township.id)
        assert 'session_village' not in [t.bpmn_id for t in driver.queue('mediator')]
        driver.complete(case, 'session_village', session_data('escalate' if number == 4 else 'continue', on=day))
    assert driver.fresh(case).mediation_level == '乡镇'

    for number, day in enumerate(['2025-10-13', '2025-10-15', '2025-10-17'], start=1):
        driver.at(f'{day} 10:00')
        assert [t.bpmn_id for t in driver.queue('township')] == ['session_township']
        driver.complete(case, 'session_township', session_data('escalate' if number == 3 else 'continue', on=day))
    assert driver.fresh(case).mediation_level == '县'

    driver.at('2025-10-22 10:00')
    driver.complete(case, 'session_county', session_data('escalate', on='2025-10-22'))
    assert driver.open_ids(case) == ['guidance']
    assert driver.fresh(case).counters == {'村': 4, '乡镇': 3, '县': 1}
    levels = [(e.before['mediation_level'], e.after['mediation_level'])
              for e in driver.audit(case, 'dispute.level_changed')]
    assert levels == [(None, '村'), ('村', '乡镇'), ('乡镇', '县')]

    driver.complete(case, 'guidance', {'guidance_route': 'litigation', 'legal_aid_eligible': True,
                                       'legal_aid_referred': True, 'guidance_note': '引导向桃江县人民法院起诉。',
                                       'notice_delivered_on': '2025-10-22'})
    notice = driver.documents(case)[-1]
    assert notice.kind == 'termination_notice'
    assert '三级逐级调解' in notice.body_html and '法律援助' in notice.body_html and '提起诉讼' in notice.body_html
    assert [d.kind for d in driver.documents(case)].count('session_record') == 8
    driver.complete(case, 'analyse_causes', {'hospital_problems': False})
    driver.complete(case, 'close_review', {'review_opinion': '已引导诉讼，同意结案。'})
    closed = driver.fresh(case)
    assert (closed.status, closed.outcome, closed.subsidy_tier) == ('closed', '调解不成', '疑难')


def test_mediation_extended_by_agreement_and_settled_after_many_sessions(driver: Driver) -> None:
    case = driver.start(claimed_amount='80000.00')
    driver.accept(case)
    driver.at('2025-09-30 10:00')
    driver.complete(case, 'session_county', session_data('continue', on='2025-09-30'))
    driver.at('2025-10-10 10:00')
    driver.complete(case, 'session_county', session_data('expert', on='2025-10-10'))
    driver.at('2025-10-13 10:00')
    driver.complete(case, 'expert_consult', {**EXPERT, 'consulted_on': '2025-10-13'})
    driver.at('2025-10-15 10:00')
    driver.complete(case, 'session_county', session_data('continue', on='2025-10-15'))
    driver.at('2025-10-20 10:00')
    driver.complete(case, 'session_county', session_data('appraisal', on='2025-10-20'))
    driver.at('2025-10-27 10:00')
    driver.complete(case, 'appraisal', appraisal_data())
    assert local_due(driver.task(case, 'session_county')) == '2025-11-20 23:59:59'
    for day in ('2025-10-29', '2025-11-05'):
        driver.at(f'{day} 10:00')
        driver.complete(case, 'session_county', session_data('continue', on=day))
    driver.at('2025-11-14 10:00')
    driver.complete(case, 'session_county', session_data('extend', on='2025-11-14'))
    driver.complete(case, 'extension', {'extension_agreed': True, 'agreed_due_on': '2025-12-12',
                                        'extension_reason': '双方同意待鉴定费用结算后继续协商',
                                        'patient_consents': True, 'hospital_consents': True})
    task = driver.task(case, 'session_county')
    assert local_due(task) == '2025-12-12 23:59:59'
    assert pending_timers(driver, task.instance_id) == ['2025-12-12 23:59:59']

    # The day after the computed deadline passes: the agreed extension keeps the mediation alive.
    driver.at('2025-11-21 09:00')
    assert driver.open_ids(case) == ['session_county']
    driver.at('2025-11-25 10:00')
    driver.complete(case, 'session_county', session_data('continue', on='2025-11-25'))
    driver.at('2025-12-05 10:00')
    driver.complete(case, 'session_county', session_data('agreement', on='2025-12-05'))
    driver.complete(case, 'draft_agreement', agreement_data(
        signed_on='2025-12-05', performance_due_on='2025-12-20', amount_claimed='80000.00', amount_agreed='45000.00',
        insurer_share='30000.00', responsibility='经益阳市医学会鉴定，医方承担次要责任。'))
    clock = case_clock(driver.session, case.id, 'mediation')
    assert clock is not None and clock.status == 'stopped' and clock.extended_due_on is not None
    assert driver.fresh(case).counters == {'村': 0, '乡镇': 0, '县': 9, '专家咨询': 1, '鉴定': 1, '延期': 1}
    assert [d.kind for d in driver.documents(case)].count('session_record') == 9
    assert '次要责任' in driver.documents(case)[-1].body_html

    driver.at('2025-12-08 10:00')
    driver.complete(case, 'confirmation', {'confirmation_decision': 'applied',
                                           'confirmation_applied_on': '2025-12-08', 'court_name': '桃江县人民法院'})
    driver.at('2025-12-15 10:00')
    driver.complete(case, 'court_ruling', {'court_case_number': '（2025）湘0922民特45号',
                                           'court_ruling_result': 'confirmed', 'ruling_on': '2025-12-15'})
    driver.at('2025-12-20 09:01')
    driver.complete(case, 'followup', {'visit_on': '2025-12-22', 'visit_method': '电话回访',
                                       'performance_status': 'partial', 'paid_amount': '30000.00',
                                       'satisfaction': '基本满意'})
    driver.complete(case, 'urge_performance', {'urge_result': 'enforcement',
                                               'urge_note': '医院自付部分未付，已协助患方申请强制执行。'})
    driver.complete(case, 'analyse_causes', {'hospital_problems': False})
    driver.complete(case, 'close_review', {'review_opinion': '经鉴定、延期后调解成功，同意结案。'})
    closed = driver.fresh(case)
    assert (closed.status, closed.outcome, closed.subsidy_tier, closed.agreed_amount) == (
        'closed', '调解成功', '疑难', Decimal('45000.00'))
    # Nine sessions, an expert, an appraisal and an extension: the instance stays small.
    instance = driver.instance(case)
    assert instance.status == 'completed' and instance.task_count < 400
    assert driver.session.scalar(sa.select(sa.func.count()).select_from(Job).where(
        Job.instance_id == instance.id, Job.kind == 'timer', Job.status == 'pending')) == 0
