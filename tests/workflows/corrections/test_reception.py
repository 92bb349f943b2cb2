"""交付接收 → the long-lived corrections case: every path of corrections_reception."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import ValidationFailed
from engine.models.cases import Document
from tests.workflows.corrections.conftest import FEMALE_ID, TEAM, Corrections, reception_data


def test_reception_to_supervision_starts_reports_and_release(corrections: Corrections) -> None:
    c = corrections
    case = c.start('corrections_reception', reception_data())
    assert case.number.startswith('SJ-2025-') and case.correction_type == '缓刑'
    assert str(case.term_end_on) == '2026-09-24' and case.commissioning_body == '冷水江市人民法院'
    receipt, report = c.task('receipt', case), c.task('report', case)
    # 回执 within 5 days of receiving the documents, report within 10 days of the judgment: both fall in
    # the National Day holiday and roll to its first working day.
    assert receipt.due_rule['due_on'] == '2025-10-09' and receipt.due_rule['rolled_from'] == '2025-10-01'
    assert report.due_rule['due_on'] == '2025-10-09' and report.due_rule['rolled_from'] == '2025-10-05'
    c.complete('receipt', {'documents_received_on': '2025-09-26', 'documents_complete': True,
                           'receipt_sent_on': '2025-09-27'}, 'lsj_officer', case)
    c.complete('report', {'reported_on': '2025-09-28', 'reception_method': '自行报到', 'township_code': '431381001',
                          'residence_address': '七里江社区'}, 'lsj_officer', case)
    case = c.case(case)
    assert case.org_unit.code == '431381001'  # entrusted to the 司法所
    assert c.queue('lsj_staff') == ['declare']
    c.complete('declare', {'declared_on': '2025-09-29', 'venue': '锡矿山司法所', 'attendees': '刘晓燕'},
               'lsj_staff', case)
    c.complete('team', TEAM, 'lsj_staff', case)
    c.complete('approve_level', {'management_level': '严管', 'level_reason': '入矫不满两个月'}, 'lsj_officer', case)
    case = c.case(case)
    assert case.management_level == '严管' and case.counters['management_levels'][0]['level'] == '严管'
    kinds = [i.definition.key for i in c.instances(case)]
    assert kinds == ['corrections_reception', 'corrections_report', 'corrections_release']
    lifecycle, report_request, release = c.instances(case)
    assert lifecycle.status == 'waiting' and report_request.status == 'waiting' and release.status == 'waiting'
    assert report_request.task_count < 20  # short request instances, not one growing lifecycle
    titles = [d.title for d in c.session.scalars(sa.select(Document).where(Document.case_id == case.id))]
    assert titles == ['社区矫正宣告书']


def test_missing_documents_are_chased(corrections: Corrections) -> None:
    c = corrections
    case = c.start('corrections_reception', reception_data())
    c.complete('receipt', {'documents_received_on': '2025-09-26', 'documents_complete': False,
                           'missing_documents': '执行通知书', 'receipt_sent_on': '2025-09-26'}, 'lsj_officer', case)
    chase = c.task('chase_documents', case)
    assert chase.due_rule['due_on'] == '2025-10-09'  # 10-01 falls in 国庆: rolled to the first working day
    c.complete('chase_documents', {'request_sent_on': '2025-09-26', 'supplemented_on': '2025-09-30'},
               'lsj_officer', case)
    c.complete('report', {'reported_on': '2025-09-28', 'reception_method': '自行报到', 'township_code': '431381001',
                          'residence_address': '七里江社区'}, 'lsj_officer', case)
    assert c.names(case) == ['declare']


def test_female_offender_needs_a_woman_in_the_team(corrections: Corrections) -> None:
    c = corrections
    case = c.start('corrections_reception', reception_data(id_number=FEMALE_ID, person_name='王某'))
    c.complete('receipt', {'documents_received_on': '2025-09-26', 'documents_complete': True,
                           'receipt_sent_on': '2025-09-27'}, 'lsj_officer', case)
    c.complete('report', {'reported_on': '2025-09-28', 'reception_method': '自行报到', 'township_code': '431381001',
                          'residence_address': '七里江社区'}, 'lsj_officer', case)
    c.complete('declare', {'declared_on': '2025-09-29', 'venue': '司法所', 'attendees': '刘晓燕'}, 'lsj_staff', case)
    men = {**TEAM, 'members': [{'name': '张某', 'role': '司法所工作人员', 'gender': '男'},
                               {'name': '王父', 'role': '家庭成员或监护人', 'gender': '男'}]}
    with pytest.raises(ValidationFailed) as error:
        c.complete('team', men, 'lsj_staff', case)
    assert 'members' in error.value.fields
    c.session.rollback()
    c.complete('team', TEAM, 'lsj_staff', case)
    assert c.names(case) == ['approve_level']


def test_bad_start_data_is_refused(corrections: Corrections) -> None:
    with pytest.raises(ValidationFailed) as error:
        corrections.start('corrections_reception', reception_data(id_number='431381198503120016',
                                                                  term_end='2025-01-01'))
    assert set(error.value.fields) >= {'id_number', 'term_end'}


def test_failure_to_report_found_late_proposes_a_reprimand(corrections: Corrections) -> None:
    c = corrections
    case = c.start('corrections_reception', reception_data())
    c.advance(days=14)  # 2025-10-10 09:00: the day after the last day to report
    assert 'search' in c.names(case) and 'report' not in c.names(case)
    notice = c.session.scalars(sa.select(Document).where(Document.case_id == case.id)).one()
    assert notice.title == '社区矫正对象报到情况通知单' and '2025-10-09' in notice.body_html
    c.complete('search', {'notified_on': '2025-10-10', 'found': True, 'reported_on': '2025-10-14',
                          'township_code': '431381001', 'search_notes': '经家属联系，已到司法局报到'},
               'lsj_officer', case)
    sanction = c.instances(case, 'corrections_sanction')
    assert len(sanction) == 1
    assert c.data('investigate', case)['kind'] == '训诫'  # five days late: 训诫 (实施办法 §34)
    assert c.case(case).org_unit.code == '431381001'


def test_absconding_offender_is_proposed_for_revocation_then_found(corrections: Corrections) -> None:
    c = corrections
    case = c.start('corrections_reception', reception_data())
    c.advance(days=14)
    c.complete('search', {'notified_on': '2025-10-10', 'found': False, 'township_code': '',
                          'search_notes': '电话关机，住所无人'}, 'lsj_officer', case)
    assert c.data('gather', case)['kind'] == '提请撤销缓刑'
    c.complete('follow_absconded', {'reported_on': '2025-10-20', 'township_code': '431381001',
                                    'search_notes': '公安协助查获'}, 'lsj_officer', case)
    assert c.names(case) == ['receipt', 'gather']  # the 入矫宣告 waits for the documents too
    c.complete('receipt', {'documents_received_on': '2025-09-26', 'documents_complete': True,
                           'receipt_sent_on': '2025-09-27'}, 'lsj_officer', case)
    assert c.names(case) == ['gather', 'declare']


def test_absconding_offender_whose_probation_is_revoked_ends_the_case(corrections: Corrections) -> None:
    c = corrections
    case = c.start('corrections_reception', reception_data())
    c.advance(days=14)
    c.complete('search', {'notified_on': '2025-10-10', 'found': False, 'township_code': '',
                          'search_notes': '下落不明'}, 'lsj_officer', case)
    c.complete('gather', {'investigation': '经查逾期未报到且下落不明', 'evidence_list': '查找记录'},
               'lsj_officer', case)
    c.complete('deliberate', {'approved': True, 'decided_on': '2025-10-11', 'proposal_to': '冷水江市人民法院',
                              'decision_reason': '脱离监管'}, 'lsj_officer', case)
    c.complete('send_proposal', {'sent_on': '2025-10-11', 'procuratorate_copied': True}, 'lsj_officer', case)
    c.complete('ruling', {'result': '准许', 'ruled_on': '2025-11-05', 'ruling_number': '（2025）湘1381刑更5号'},
               'lsj_officer', case)
    c.complete('terminate', {'event_on': '2025-11-05', 'termination_notes': '法院裁定撤销缓刑'}, 'lsj_officer', case)
    c.complete('notify_termination', {'notified_on': '2025-11-06', 'notified_bodies': '法院、检察院、公安'},
               'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and case.outcome == '撤销缓刑'
    assert c.open_tasks(case) == []  # the 继续查找 task ended with the case (signal boundary, terminate end)


def test_case_concluded_during_intake_does_not_start_supervision(corrections: Corrections) -> None:
    c = corrections
    case = c.start('corrections_reception', reception_data())
    c.complete('receipt', {'documents_received_on': '2025-09-26', 'documents_complete': True,
                           'receipt_sent_on': '2025-09-27'}, 'lsj_officer', case)
    c.complete('report', {'reported_on': '2025-09-28', 'reception_method': '自行报到', 'township_code': '431381001',
                          'residence_address': '七里江社区'}, 'lsj_officer', case)
    c.complete('declare', {'declared_on': '2025-09-29', 'venue': '司法所', 'attendees': '刘晓燕'}, 'lsj_staff', case)
    c.complete('team', TEAM, 'lsj_staff', case)
    c.start('corrections_release', {'case_id': case.id, 'reason': '死亡', 'event_on': '2025-09-30'})
    c.complete('terminate', {'event_on': '2025-09-30', 'termination_notes': '因病死亡，家属报告'}, 'lsj_officer', case)
    c.complete('notify_termination', {'notified_on': '2025-10-01', 'notified_bodies': '法院、检察院、公安'},
               'lsj_officer', case)
    assert c.case(case).status == 'open'  # the lifecycle was at a task, not waiting for the signal
    c.complete('approve_level', {'management_level': '普管', 'level_reason': '—已终止—'}, 'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and case.outcome == '死亡'
    assert [i.definition.key for i in c.instances(case)] == ['corrections_reception', 'corrections_release']
