"""奖惩 with its ladder kept in case.counters, and 解除/终止 (blocked while a revocation is pending)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.cases import Case, Document
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from tests.workflows.corrections.conftest import Corrections


def _sanction(c: Corrections, case: object, kind: str, facts: str = '未按规定时间报告，经教育仍未改正') -> None:
    c.start('corrections_sanction', {'case_id': case.id, 'kind': kind, 'facts': facts}, user='lsj_staff')


def _decide(c: Corrections, case: object, given: bool = True, on: str = '2025-10-10') -> None:
    c.complete('investigate', {'investigation': '经调查属实，本人承认', 'township_opinion': '建议给予'},
               'lsj_staff', case)
    c.complete('decide', {'approved': given, 'decided_on': on, 'decision_reason': '违反报告规定，情节轻微'},
               'lsj_officer', case)
    if given:
        c.complete('serve', {'served_on': on, 'talk_notes': '已教育，本人表示改正'}, 'lsj_staff', case)


def _propose(c: Corrections, case: object, result: str = '准许', **ruling: str) -> None:
    c.complete('gather', {'investigation': '两次警告后仍不报告', 'evidence_list': '警告决定书两份'},
               'lsj_officer', case)
    c.complete('deliberate', {'approved': True, 'decided_on': '2025-11-01', 'proposal_to': '冷水江市人民法院',
                              'decision_reason': '经集体研究'}, 'lsj_officer', case)
    c.complete('send_proposal', {'sent_on': '2025-11-02', 'procuratorate_copied': True}, 'lsj_officer', case)
    if result:
        c.complete('ruling', {'result': result, 'ruled_on': '2025-11-20', **ruling}, 'lsj_officer', case)


def test_reprimand_is_decided_documented_and_counted(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '训诫')
    _decide(c, case)
    case = c.case(case)
    assert case.counters['reprimands'] == 1 and case.counters['sanction_history'][0]['kind'] == '训诫'
    document = c.session.scalars(sa.select(Document).where(Document.title == '训诫决定书')).one()
    assert '训诫' in document.body_html and case.person_name in document.body_html
    changes = c.session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'case.counters_changed')).all()
    assert any(e.after.get('reprimands') == 1 for e in changes)


def test_sanction_not_given(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '警告')
    _decide(c, case, given=False)
    assert 'warnings' not in c.case(case).counters and c.open_tasks(case) == []


def test_commendation(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '表扬', '积极参加公益活动，见义勇为')
    _decide(c, case)
    assert c.case(case).counters['commendations'] == 1


def test_kind_must_fit_the_correction_type(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    with pytest.raises(ValidationFailed) as error:
        _sanction(c, case, '提请收监执行')
    assert 'kind' in error.value.fields


def test_failure_to_report_climbs_the_sanction_ladder(corrections: Corrections) -> None:
    """Late reporting → 训诫; missed reports → a second 训诫 → 警告 considered; two 警告 → revocation proposed."""
    c = corrections
    case = c.start('corrections_reception', {
        **__import__('tests.workflows.corrections.conftest', fromlist=['x']).reception_data()})
    c.advance(days=14)
    c.complete('search', {'notified_on': '2025-10-10', 'found': True, 'reported_on': '2025-10-12',
                          'township_code': '431381001', 'search_notes': '家属陪同报到'}, 'lsj_officer', case)
    _decide(c, case, on='2025-10-13')  # 训诫 no. 1
    _sanction(c, case, '训诫')
    _decide(c, case, on='2025-10-20')  # 训诫 no. 2: a 警告 is proposed
    assert c.data('investigate', case)['kind'] == '警告'
    _decide(c, case, on='2025-10-27')  # 警告 no. 1
    assert c.case(case).counters['reprimands_since_warning'] == 0
    _sanction(c, case, '警告')
    _decide(c, case, on='2025-11-03')  # 警告 no. 2: revocation proposed
    counters = c.case(case).counters
    assert (counters['reprimands'], counters['warnings']) == (2, 2)
    assert c.data('gather', case)['kind'] == '提请撤销缓刑'


def test_revocation_granted_terminates_the_case(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '提请撤销缓刑')
    _propose(c, case, '准许', ruling_number='（2025）湘1381刑更9号')
    assert c.names(case) == ['terminate']
    c.complete('terminate', {'event_on': '2025-11-20', 'termination_notes': '裁定已生效'}, 'lsj_officer', case)
    c.complete('notify_termination', {'notified_on': '2025-11-21', 'notified_bodies': '法院、检察院、公安'},
               'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and case.outcome == '撤销缓刑' and case.counters['pending_measures'] == []
    titles = {d.title for d in c.session.scalars(sa.select(Document).where(Document.case_id == case.id))}
    assert {'撤销缓刑建议书', '终止社区矫正通知书'} <= titles


def test_proposal_not_made_and_proposal_rejected(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '提请治安管理处罚')
    c.complete('gather', {'investigation': '与邻居发生纠纷', 'evidence_list': '询问笔录'}, 'lsj_officer', case)
    c.complete('deliberate', {'approved': False, 'decided_on': '2025-11-01', 'proposal_to': '冷水江市公安局',
                              'decision_reason': '情节显著轻微'}, 'lsj_officer', case)
    _sanction(c, case, '提请治安管理处罚')
    _propose(c, case, '驳回')
    case = c.case(case)
    assert case.status == 'open' and case.counters['pending_measures'] == []


def test_sentence_reduction_moves_the_release(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '提请减刑', '有重大立功表现')
    _propose(c, case, '准许', new_term_end='2026-06-30')
    case = c.case(case)
    assert str(case.term_end_on) == '2026-06-30'
    old, new = c.instances(case, 'corrections_release')
    assert case.counters['release_instance_id'] == new.id
    c.clock.set(c.clock.now().replace(year=2026, month=6, day=1, hour=2))
    c.advance(minutes=1)
    assert c.instances(case, 'corrections_release')[0].status == 'waiting'  # old one waits for the old date
    assert 'appraisal' in c.names(case)
    c.clock.set(c.clock.now().replace(month=8, day=26))
    c.advance(minutes=1)
    assert c.instances(case, 'corrections_release')[0].status == 'completed'  # superseded: ended quietly


def _to_appraisal(c: Corrections) -> None:
    """To 期满前 30 日 of the default term (ending 2026-09-24): the appraisal falls due."""
    c.clock.set(c.clock.now().replace(year=2026, month=8, day=26, hour=2))
    c.advance(minutes=1)


def _appraise(c: Corrections, case: object) -> None:
    c.complete('appraisal', {'self_summary_received': True, 'performance': '表现良好', 'appraisal_opinion': '遵纪守法',
                             'community_opinion': '同意解除', 'resettlement_handover': '已衔接安置帮教'},
               'lsj_staff', case)


def _to_expiry(c: Corrections, case: object) -> None:
    _to_appraisal(c)
    _appraise(c, case)
    c.clock.set(c.clock.now().replace(month=9, day=24, hour=0))
    c.advance(minutes=1)


def test_release_on_expiry(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _to_expiry(c, case)
    declare = c.task('declare', case)
    assert declare.due_rule['due_on'] == '2026-09-24'
    c.complete('declare', {'declared_on': '2026-09-24', 'venue': '锡矿山司法所', 'attendees': '矫正小组'},
               'lsj_officer', case)
    c.complete('notify', {'notified_on': '2026-09-24', 'notified_bodies': '法院、检察院、公安'}, 'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and case.outcome == '期满解除'
    certificate = c.session.scalars(sa.select(Document).where(Document.title == '解除社区矫正证明书')).one()
    assert '原判刑罚不再执行' in certificate.body_html


def test_release_blocked_by_pending_revocation_until_it_is_granted(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '提请撤销缓刑')
    _propose(c, case, result='')  # sent, awaiting the court
    _to_expiry(c, case)
    assert 'declare' not in c.names(case) and 'pending' in c.names(case)
    c.complete('pending', {'pending_result': '仍未决', 'pending_notes': '法院尚未开庭'}, 'lsj_officer', case)
    c.advance(days=7, minutes=1)
    assert 'pending' in c.names(case)  # checked again a week later: still blocked
    c.complete('ruling', {'result': '准许', 'ruled_on': '2026-10-05'}, 'lsj_officer', case)
    c.complete('terminate', {'event_on': '2026-10-05', 'termination_notes': '法院裁定撤销缓刑'}, 'lsj_officer', case)
    c.complete('notify_termination', {'notified_on': '2026-10-06', 'notified_bodies': '法院、检察院、公安'},
               'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and case.outcome == '撤销缓刑' and c.open_tasks(case) == []
    assert not c.session.scalars(sa.select(Document).where(Document.title == '解除社区矫正证明书')).all()


def test_release_resumes_when_a_coercive_measure_is_lifted(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _sanction(c, case, '刑事强制措施', '因涉嫌盗窃被刑事拘留')
    c.complete('register_measure', {'measure_type': '刑事拘留', 'measure_authority': '冷水江市公安局',
                                    'measure_started_on': '2026-09-01'}, 'lsj_officer', case)
    _to_expiry(c, case)
    c.complete('ruling', {'result': '驳回', 'ruled_on': '2026-09-25'}, 'lsj_officer', case)
    c.complete('pending', {'pending_result': '已驳回或已解除', 'pending_notes': '强制措施已解除'}, 'lsj_officer', case)
    assert 'declare' in c.names(case)


def test_death_terminates(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    c.start('corrections_release', {'case_id': case.id, 'reason': '死亡', 'event_on': '2025-12-01'})
    assert c.task('terminate', case).due_rule['due_on'] == '2025-12-08'  # 12-06 is a Saturday
    c.complete('terminate', {'event_on': '2025-12-01', 'termination_notes': '家属报告因病死亡'}, 'lsj_officer', case)
    c.complete('notify_termination', {'notified_on': '2025-12-02', 'notified_bodies': '法院、检察院、公安'},
               'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and case.outcome == '死亡'


def _die(c: Corrections, case: Case, on: str) -> None:
    c.start('corrections_release', {'case_id': case.id, 'reason': '死亡', 'event_on': on})
    c.complete('terminate', {'event_on': on, 'termination_notes': '家属报告因病死亡'}, 'lsj_officer', case)
    c.complete('notify_termination', {'notified_on': on, 'notified_bodies': '法院、检察院、公安'}, 'lsj_officer', case)
    assert c.case(case).outcome == '死亡'


def _expiry_release_is_over(c: Corrections, case: Case) -> None:
    """The release on expiry ended with the case: no timer of its own left pending, no task of its own open."""
    [expiry, _] = c.instances(case, 'corrections_release')
    assert expiry.status == 'completed' and expiry.next_timer_dt is None
    assert not c.session.scalars(sa.select(Job).where(Job.instance_id == expiry.id, Job.status == 'pending')).all()
    assert not c.session.scalars(sa.select(HumanTask).where(HumanTask.instance_id == expiry.id,
                                                            HumanTask.status == 'open')).all()


def test_death_before_the_appraisal_ends_the_release_on_expiry(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    [expiry] = c.instances(case, 'corrections_release')
    assert expiry.status == 'waiting' and expiry.next_timer_dt is not None  # for 期满前 30 日
    _die(c, case, '2025-12-01')
    _expiry_release_is_over(c, case)
    [timer] = c.session.scalars(sa.select(Job).where(Job.instance_id == expiry.id, Job.kind == 'timer')).all()
    assert timer.status == 'cancelled'  # withdrawn by the termination, not fired


def test_death_leaves_nothing_of_the_case_waiting(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    [report] = c.instances(case, 'corrections_report')
    assert report.status == 'waiting' and report.next_timer_dt is not None  # for the next 定期报告
    _die(c, case, '2025-12-01')
    instances = c.instances(case)
    assert {i.status for i in instances} == {'completed'} and {i.next_timer_dt for i in instances} == {None}
    assert not c.session.scalars(sa.select(Job).where(Job.instance_id.in_([i.id for i in instances]),
                                                      Job.status == 'pending')).all()


def test_death_during_the_appraisal_withdraws_it(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _to_appraisal(c)
    appraisal = c.task('appraisal', case)
    _die(c, case, '2026-08-28')
    _expiry_release_is_over(c, case)
    assert c.session.get(HumanTask, appraisal.id).status == 'cancelled'  # type: ignore[union-attr]
    assert 'appraisal' not in c.queue('lsj_staff')


def test_death_between_the_appraisal_and_the_expiry_day_declares_no_release(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _to_appraisal(c)
    _appraise(c, case)
    _die(c, case, '2026-09-10')
    _expiry_release_is_over(c, case)
    c.clock.set(c.clock.now().replace(month=9, day=24, hour=0))
    c.advance(minutes=1)  # the expiry day passes: nothing waits for it any more
    assert c.open_tasks(case) == []
    assert not c.session.scalars(sa.select(Document).where(Document.title == '解除社区矫正证明书')).all()
