"""变更执行地 as in the 冷水江 → 浏阳 story: both counties' queues, the transfer and the read access kept."""

from __future__ import annotations

import pytest

from engine import runtime
from engine.access import can_view_case, load_scope
from engine.errors import NotFound, ValidationFailed
from tests.workflows.corrections.conftest import Corrections


def _apply(c: Corrections, case: object, target: str = '430181') -> None:
    c.start('corrections_residence_change', {'case_id': case.id, 'applied_on': '2025-10-09', 'target_org_unit': target,
                                              'new_address': '浏阳市淮川街道白沙路 12 号',
                                              'reason': '在浏阳就业，已签劳动合同',
                                              'proof': '劳动合同、租房合同'}, user='lsj_staff')


def _to_reply(c: Corrections, case: object) -> None:
    _apply(c, case)
    c.complete('township_sign', {'township_opinion': '情况属实，同意报送', 'forwarded_on': '2025-10-09'},
               'lsj_staff', case)
    c.complete('county_review', {'consult': '征求意见', 'review_opinion': '拟同意变更', 'decided_on': '2025-10-10',
                                 'letter_sent_on': '2025-10-10'}, 'lsj_officer', case)


def test_lengshuijiang_to_liuyang(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _to_reply(c, case)
    # The 征求意见函 arrives in the receiving county's queue, not in 冷水江's.
    assert 'reply' in c.queue('ly_officer') and 'reply' not in c.queue('lsj_officer')
    reply = c.task('reply', case)
    assert reply.org_path == c.units.liuyang.path and reply.due_rule['due_on'] == '2025-10-15'
    c.complete('reply', {'receiving_agrees': True, 'verification': '经核实，居住、就业属实',
                         'receiving_unit_code': '430181001', 'replied_on': '2025-10-13'}, 'ly_officer', case)
    assert c.queue('lsj_officer') == ['decide']
    c.complete('decide', {'approve': True, 'decided_on': '2025-10-14', 'decision_reason': '符合变更条件'},
               'lsj_officer', case)
    c.complete('handover', {'handed_over_on': '2025-10-15', 'report_notice_given': True,
                            'copied_bodies': '冷水江市人民法院、冷水江市人民检察院、冷水江市公安局'},
               'lsj_officer', case)
    case = c.case(case)
    assert case.org_unit.code == '430181001' and case.org_path == c.units.huaichuan.path
    assert c.queue('ly_officer') == ['receipt'] and c.queue('lsj_officer') == []
    c.complete('receipt', {'receipt_sent_on': '2025-10-16', 'forwarded_to': '浏阳市人民检察院、公安局'},
               'ly_officer', case)
    new_report = c.task('new_report', case)
    assert new_report.due_rule['due_on'] == '2025-10-21'  # 7 days from the decision
    c.complete('new_report', {'reported_on': '2025-10-18', 'township_code': ''}, 'ly_officer', case)
    # The old county keeps read access, but no longer acts on the case.
    old = c.users['lsj_officer']
    assert can_view_case(c.session, load_scope(c.session, old), case)
    assert can_view_case(c.session, load_scope(c.session, c.users['lsj_staff']), case)
    with pytest.raises(NotFound):
        runtime.start_case(c.session, 'corrections_alarm', {'case_id': case.id, 'alarm_type': '越界',
                                                            'occurred_at': '2025-10-20T10:00:00'},
                           actor=old, org_unit=c.units.lengshuijiang, scope=load_scope(c.session, old))
    c.session.rollback()
    # Later recurring work lands in 浏阳.
    assert c.instances(case, 'corrections_residence_change')[0].status == 'completed'
    c.advance(days=40)
    assert 'regular' in c.queue('ly_staff') and 'regular' not in c.queue('lsj_staff')


def test_same_county_target_is_refused(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    with pytest.raises(ValidationFailed) as error:
        _apply(c, case, target='431381001')
    assert 'target_org_unit' in error.value.fields


def test_county_refuses_without_consulting(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _apply(c, case)
    c.complete('township_sign', {'township_opinion': '证明材料不足', 'forwarded_on': '2025-10-09'}, 'lsj_staff', case)
    c.complete('county_review', {'consult': '不予同意', 'review_opinion': '无稳定居所证明', 'decided_on': '2025-10-10'},
               'lsj_officer', case)
    c.complete('refuse', {'told_on': '2025-10-11', 'told_notes': '已当面告知'}, 'lsj_officer', case)
    assert c.case(case).org_unit.code == '431381001'


def test_disagreement_is_coordinated_above_and_then_refused(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _to_reply(c, case)
    c.complete('reply', {'receiving_agrees': False, 'verification': '租住地不实', 'replied_on': '2025-10-13'},
               'ly_officer', case)
    assert c.queue('hn_chief') == ['coordinate'] and c.task('coordinate', case).org_path == c.units.province.path
    c.complete('coordinate', {'coordination_result': '经协调，新执行地仍不同意接收', 'receiving_agrees': False},
               'hn_chief', case)
    c.complete('decide', {'approve': False, 'decided_on': '2025-10-16', 'decision_reason': '新居住地不实'},
               'lsj_officer', case)
    c.complete('refuse', {'told_on': '2025-10-17', 'told_notes': '已当面告知'}, 'lsj_officer', case)
    assert c.open_tasks(case) == []


@pytest.mark.parametrize('found', [True, False])
def test_late_report_at_new_county(corrections: Corrections, found: bool) -> None:
    c = corrections
    case = c.receive()
    _to_reply(c, case)
    c.complete('reply', {'receiving_agrees': True, 'verification': '经核实属实', 'receiving_unit_code': '430181001',
                         'replied_on': '2025-10-13'}, 'ly_officer', case)
    c.complete('decide', {'approve': True, 'decided_on': '2025-10-14', 'decision_reason': '符合变更条件'},
               'lsj_officer', case)
    c.complete('handover', {'handed_over_on': '2025-10-15', 'report_notice_given': True, 'copied_bodies': '法院'},
               'lsj_officer', case)
    c.complete('receipt', {'receipt_sent_on': '2025-10-16', 'forwarded_to': '检察院、公安'}, 'ly_officer', case)
    c.advance(days=26)  # 2025-10-22 09:00: 7 days from 10-14 have passed
    assert 'search' in c.queue('ly_officer')
    data = {'found': found, 'search_notes': '电话联系'}
    if found:
        data.update(reported_on='2025-10-23', township_code='430181001')
    c.complete('search', data, 'ly_officer', case)
    sanction = c.instances(case, 'corrections_sanction')[-1]
    first = runtime.task_data(c.session, c.open_tasks(case)[-1])
    assert sanction.status == 'running' and first['kind'] == ('训诫' if found else '提请撤销缓刑')
