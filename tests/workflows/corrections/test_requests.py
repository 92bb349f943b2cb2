"""外出, 监管报警, 定期报告 and 电子定位: every path, as short request instances on a corrections case."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from engine import runtime
from engine.models.cases import Document
from tests.workflows.corrections.conftest import Corrections


def _leave(c: Corrections, case: object, leave_from: str, leave_to: str) -> None:
    c.start('corrections_leave', {'case_id': case.id, 'leave_from': leave_from, 'leave_to': leave_to,
                                  'destination': '长沙市', 'reason': '陪同母亲就医', 'applied_on': '2025-10-10'},
            user='lsj_staff')


APPROVE = {'approved': True, 'approval_opinion': '同意外出'}


def test_short_leave_approved_by_the_township_and_closed_on_return(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _leave(c, case, '2025-10-13', '2025-10-17')
    assert c.queue('lsj_staff') == ['township_approve']
    c.complete('township_approve', APPROVE, 'lsj_staff', case)
    assert c.task('away', case).due_rule['due_on'] == '2025-10-17'
    assert c.session.scalars(sa.select(Document).where(Document.title == '社区矫正对象外出审批表')).one()
    c.complete('away', {'returned_on': '2025-10-17', 'checkins': '每日视频核查正常'}, 'lsj_staff', case)
    assert c.case(case).counters['leaves'][0]['level'] == 'township'


def test_refused_leave(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _leave(c, case, '2025-10-13', '2025-10-15')
    c.complete('township_approve', {'approved': False, 'approval_opinion': '事由不充分'}, 'lsj_staff', case)
    assert c.open_tasks(case) == [] and 'leaves' not in c.case(case).counters


def test_county_approves_longer_leave(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _leave(c, case, '2025-10-13', '2025-10-30')
    c.complete('township_review', {'township_opinion': '情况属实'}, 'lsj_staff', case)
    assert c.queue('lsj_officer') == ['county_approve']
    c.complete('county_approve', APPROVE, 'lsj_officer', case)
    assert 'away' in c.names(case)


@pytest.mark.parametrize('forward', [True, False])
def test_over_thirty_days_in_two_months_goes_to_the_city(corrections: Corrections, forward: bool) -> None:
    c = corrections
    case = c.receive()
    _leave(c, case, '2025-10-13', '2025-10-30')  # 18 days
    c.complete('township_review', {'township_opinion': '情况属实'}, 'lsj_staff', case)
    c.complete('county_approve', APPROVE, 'lsj_officer', case)
    c.complete('away', {'returned_on': '2025-10-30', 'checkins': '正常'}, 'lsj_staff', case)
    _leave(c, case, '2025-11-10', '2025-11-25')  # 16 more days: 34 within two months
    c.complete('township_review', {'township_opinion': '情况属实'}, 'lsj_staff', case)
    assert c.queue('lsj_officer') == ['county_forward']
    c.complete('county_forward', {'approved': forward, 'county_opinion': '同意报批',
                                  'procuratorate_notified_on': '2025-11-05'}, 'lsj_officer', case)
    if forward:
        assert c.queue('ld_chief') == ['city_approve']
        assert c.task('city_approve', case).org_path == c.units.loudi.path
        c.complete('city_approve', APPROVE, 'ld_chief', case)
        assert 'away' in c.names(case)
    else:
        assert c.open_tasks(case) == []


@pytest.mark.parametrize(('status', 'sanctioned'), [('无正当理由逾期未归', True), ('因故不能按期返回已报告', False)])
def test_overdue_return_is_checked(corrections: Corrections, status: str, sanctioned: bool) -> None:
    c = corrections
    case = c.receive()
    _leave(c, case, '2025-10-13', '2025-10-15')
    c.complete('township_approve', APPROVE, 'lsj_staff', case)
    c.advance(days=20)  # past 2025-10-16 00:00
    assert 'check_return' in c.names(case) and 'away' not in c.names(case)
    c.complete('check_return', {'return_status': status, 'returned_on': '2025-10-18', 'check_notes': '电话核实'},
               'lsj_staff', case)
    assert bool(c.instances(case, 'corrections_sanction')) is sanctioned


def _alarm(c: Corrections, case: object) -> None:
    c.start('corrections_alarm', {'case_id': case.id, 'alarm_type': '越界', 'occurred_at': '2025-10-10T10:15:00',
                                  'location': '冷水江市与新化县交界'}, user='lsj_staff')


@pytest.mark.parametrize(('finding', 'kind'), [('误报', None), ('训诫', '训诫'), ('警告', '警告')])
def test_alarm_verified(corrections: Corrections, finding: str, kind: str | None) -> None:
    c = corrections
    case = c.receive()
    _alarm(c, case)
    verify = c.task('verify', case)
    assert verify.due_rule['due'] == '2025-10-10T12:15:00+08:00' and c.queue('lsj_staff') == ['verify']
    c.complete('verify', {'finding': finding, 'notes': '定位漂移，电话核实在家' if kind is None else '擅自外出'},
               'lsj_staff', case)
    sanctions = c.instances(case, 'corrections_sanction')
    assert (runtime.task_data(c.session, c.task('investigate', case))['kind'] if sanctions else None) == kind


@pytest.mark.parametrize(('found', 'kind'), [(True, '警告'), (False, '提请撤销缓刑')])
def test_alarm_loss_of_contact_leads_to_search(corrections: Corrections, found: bool, kind: str) -> None:
    c = corrections
    case = c.receive()
    _alarm(c, case)
    c.complete('verify', {'finding': '失联', 'notes': '电话关机'}, 'lsj_staff', case)
    assert c.queue('lsj_officer') == ['search']
    data: dict[str, Any] = {'found': found, 'search_notes': '公安协助查找'}
    if found:
        data['found_on'] = '2025-10-22'  # twelve days out of contact: 警告
    c.complete('search', data, 'lsj_officer', case)
    first = c.open_tasks(case)[-1]
    assert runtime.task_data(c.session, first)['kind'] == kind


def test_periodic_reports_follow_the_management_level(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()  # 普管: monthly, first due 2025-10-26 (a Sunday)
    c.advance(days=30, minutes=1)
    regular = c.task('regular', case)
    assert regular.due_rule['due_on'] == '2025-10-30'  # 3 working days, counted from Monday
    c.complete('regular', {'reported': True, 'reported_on': '2025-10-27', 'report_content': '按时报告'},
               'lsj_staff', case)
    reports = c.instances(case, 'corrections_report')
    assert [r.status for r in reports] == ['completed', 'waiting']
    c.advance(days=31)
    c.complete('regular', {'reported': False, 'report_content': '未报告'}, 'lsj_staff', case)
    c.complete('missed', {'proposal': '训诫', 'notes': '经教育，承认未按时报告'}, 'lsj_staff', case)
    assert runtime.task_data(c.session, c.task('investigate', case))['kind'] == '训诫'
    assert len(c.instances(case, 'corrections_report')) == 3


def test_medical_parole_reports_and_checkups(corrections: Corrections) -> None:
    c = corrections
    case = c.receive(correction_type='暂予监外执行', temporary_release_reason='保外就医',
                     sentence='有期徒刑二年，暂予监外执行')
    assert len(c.instances(case, 'corrections_report')) == 3  # 定期报告, 身体状况报告, 病情复查
    c.advance(days=31)
    c.complete('body', {'reported': True, 'reported_on': '2025-10-29', 'report_content': '病情稳定'},
               'lsj_staff', case)
    c.advance(days=62)
    assert c.queue('lsj_officer').count('medical') == 1
    c.complete('medical', {'reported': False, 'report_content': '未提交复查'}, 'lsj_officer', case)
    c.complete('missed', {'proposal': '教育谈话', 'notes': '已教育，限期提交'}, 'lsj_staff', case)
    assert c.instances(case, 'corrections_sanction') == []


def test_report_task_withdrawn_and_chain_stopped_when_the_case_ends(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    c.advance(days=30, minutes=1)
    assert 'regular' in c.names(case)
    c.start('corrections_release', {'case_id': case.id, 'reason': '死亡', 'event_on': '2025-10-26'})
    c.complete('terminate', {'event_on': '2025-10-26', 'termination_notes': '家属报告'}, 'lsj_officer', case)
    c.complete('notify_termination', {'notified_on': '2025-10-27', 'notified_bodies': '法院、检察院、公安'},
               'lsj_officer', case)
    case = c.case(case)
    assert case.status == 'closed' and c.open_tasks(case) == []
    c.advance(days=40)
    assert all(i.status == 'completed' for i in c.instances(case, 'corrections_report'))


def _monitoring(c: Corrections, case: object) -> None:
    c.start('corrections_monitoring', {'case_id': case.id, 'grounds': '违反监督管理规定受到警告', 'months': 3,
                                       'start_on': '2025-10-01'})
    assert c.queue('lsj_chief') == ['approve']


def test_monitoring_refused(corrections: Corrections) -> None:
    c = corrections
    case = c.receive()
    _monitoring(c, case)
    c.complete('approve', {'approved': False, 'approved_months': 1, 'approval_opinion': '不符合条件'},
               'lsj_chief', case)
    assert 'monitoring' not in c.case(case).counters


@pytest.mark.parametrize('decision', ['期满解除', '提请延长', None])
def test_monitoring_review_before_expiry(corrections: Corrections, decision: str | None) -> None:
    c = corrections
    case = c.receive()
    _monitoring(c, case)
    c.complete('approve', {'approved': True, 'approved_months': 2, 'approval_opinion': '同意使用两个月'},
               'lsj_chief', case)
    period = c.case(case).counters['monitoring'][0]
    assert (period['from'], period['until']) == ('2025-10-01', '2025-11-30')
    c.advance(days=58, minutes=1)  # 2025-11-23 09:01: seven days before the end
    assert c.task('review', case).due_rule['due_on'] == '2025-12-01'  # 11-30 is a Sunday
    if decision is None:
        c.advance(days=8)  # nobody decided: the monitoring ends with the approval
    else:
        c.complete('review', {'review_decision': decision, 'assessment': '表现稳定', 'renewal_months': 3},
                   'lsj_officer', case)
    periods = c.case(case).counters['monitoring']
    assert periods[0]['ended_on'] is not None
    if decision == '提请延长':
        assert c.queue('lsj_chief') == ['approve']
        assert runtime.task_data(c.session, c.task('approve', case))['start_on'] == '2025-12-01'
