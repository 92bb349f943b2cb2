"""Demo corrections cases in every stage, from the 冷水江 and 浏阳 stories (shared/domain/seeds)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.access import load_scope
from engine.directory import add_membership, create_user, get_group
from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.runtime import complete_task, start_case
from workflows.corrections.operations import today
from workflows.shared.id_numbers import check_digit

#: extra demo accounts the corrections stories need (city-level approvals); password as the other demo users
EXTRA_USERS = (('ld_chief', '谢建平（娄底市司法局社区矫正科）', '431300', 'supervisor'),)
TEAM = {'members': [{'name': '刘晓燕', 'role': '司法所工作人员', 'gender': '女'},
                    {'name': '王建国', 'role': '社会工作者', 'gender': '男'},
                    {'name': '家属', 'role': '家庭成员或监护人', 'gender': '男'}],
        'plan_summary': '每月集中教育学习一次，每周电话报告一次，每月参加公益活动不少于八小时。',
        'risk_assessment': '再犯罪风险低，家庭支持良好', 'proposed_level': '普管'}


def _id_number(region: str, born: date, sequence: int) -> str:
    first17 = f'{region}{born:%Y%m%d}{sequence:03d}'
    return first17 + check_digit(first17)


class _Demo:
    """Starts cases and completes their tasks as the demo users."""

    def __init__(self, session: Session, units: Mapping[str, OrgUnit], users: Mapping[str, User]) -> None:
        self.session, self.units, self.users = session, units, users

    def start(self, key: str, data: Mapping[str, Any], user: str, unit: str) -> Case:
        case, _ = start_case(self.session, key, data, actor=self.users[user], org_unit=self.units[unit])
        return case

    def request(self, key: str, case: Case, data: Mapping[str, Any], user: str) -> None:
        start_case(self.session, key, {'case_id': case.id, **data}, actor=self.users[user], org_unit=case.org_unit)

    def complete(self, case: Case, bpmn_id: str, data: Mapping[str, Any], user: str) -> None:
        task = self.session.scalars(sa.select(HumanTask).where(
            HumanTask.case_id == case.id, HumanTask.bpmn_id == bpmn_id, HumanTask.status == 'open')
            .order_by(HumanTask.id)).first()
        if task is None:
            raise LookupError(f'{case.number}: no open task {bpmn_id}')
        actor = self.users[user]
        complete_task(self.session, task.id, data, actor=actor, scope=load_scope(self.session, actor))


def _reception(person: str, id_number: str, correction_type: str, effective: date, months: int,
               **extra: Any) -> dict[str, Any]:
    """Start data; ``months`` of 30 days, or a negative number of days left counted from today (a term about
    to end)."""
    return {'person_name': person, 'id_number': id_number, 'correction_type': correction_type,
            'decision_body': '冷水江市人民法院',
            'judgment_number': f'（{effective.year}）湘1381刑初{int(id_number[-4:-1]) + 30}号',
            'crime': extra.pop('crime', '危险驾驶罪'), 'judgment_effective_on': effective.isoformat(),
            'term_start': effective.isoformat(),
            'term_end': (effective + timedelta(days=months * 30) if months > 0 else today() - timedelta(days=months)
                         ).isoformat(),
            'documents_received_on': (effective + timedelta(days=1)).isoformat(), **extra}


def _supervise(demo: _Demo, case: Case, reported: date, level: str = '普管') -> None:
    demo.complete(case, 'receipt', {'documents_received_on': reported.isoformat(), 'documents_complete': True,
                                    'receipt_sent_on': reported.isoformat()}, 'lsj_officer')
    demo.complete(case, 'report', {'reported_on': reported.isoformat(), 'reception_method': '自行报到',
                                   'township_code': '431381001', 'residence_address': '锡矿山街道七里江社区'},
                  'lsj_officer')
    demo.complete(case, 'declare', {'declared_on': reported.isoformat(), 'venue': '锡矿山街道司法所',
                                    'attendees': '刘晓燕、王建国、社区网格员'}, 'lsj_staff')
    demo.complete(case, 'team', TEAM, 'lsj_staff')
    demo.complete(case, 'approve_level', {'management_level': level, 'level_reason': '入矫评估风险低'}, 'lsj_officer')


def load_demo_cases(session: Session, units: Mapping[str, OrgUnit], users: Mapping[str, User]) -> int:
    """Create corrections cases in every stage (assessment, reception, supervision with each kind of request,
    a blocked release, a released case); return how many cases were opened."""
    users = dict(users)
    for username, name, code, group in EXTRA_USERS:
        if username not in users and code in units:
            user = create_user(session, username, name, 'demo1234', units[code], actor=None, enforce_policy=False)
            add_membership(session, user, get_group(session, group, group), units[code], actor=None)
            users[username] = user
    demo = _Demo(session, units, users)
    now = today()
    before = session.scalar(sa.select(sa.func.count()).select_from(Case)) or 0
    _assessments(demo, now)
    _reception_stages(demo, now)
    return (session.scalar(sa.select(sa.func.count()).select_from(Case)) or 0) - before


def _assessments(demo: _Demo, now: date) -> None:
    base = {'defendant_type': '被告人', 'proposed_correction_type': '缓刑', 'residence_address': '冷水江市锡矿山街道',
            'commissioning_body': '冷水江市人民法院', 'expedited': False}
    pending = demo.start('corrections_assessment', {
        **base, 'person_name': '谢某某', 'id_number': _id_number('431381', date(1988, 4, 2), 11), 'charge': '盗窃罪',
        'commission_number': f'冷法委评〔{now.year}〕31号', 'commission_received_on': now.isoformat()},
        'lsj_officer', '431381')
    demo.complete(pending, 'register', {'procuratorate_notified_on': now.isoformat(), 'township_code': '431381001',
                                        'materials_complete': True}, 'lsj_officer')
    done = demo.start('corrections_assessment', {
        **base, 'person_name': '彭某', 'id_number': _id_number('431381', date(1979, 11, 20), 31),
        'charge': '交通肇事罪',
        'commission_number': f'冷法委评〔{now.year}〕27号', 'expedited': True,
        'commission_received_on': (now - timedelta(days=1)).isoformat()}, 'lsj_officer', '431381')
    demo.complete(done, 'register', {'procuratorate_notified_on': now.isoformat(), 'township_code': '431381001',
                                     'materials_complete': True}, 'lsj_officer')
    demo.complete(done, 'investigate', {'residence_verified': '属实', 'family_situation': '已婚，与妻儿同住',
                                        'conduct': '一贯表现良好，事故后积极赔偿', 'community_opinion': '同意接收',
                                        'victim_opinion': '已谅解', 'risk_level': '低', 'findings': '具备社区矫正条件'},
                  'lsj_staff')
    demo.complete(done, 'review', {'opinion': '适宜', 'opinion_reasons': '认罪悔罪，社会危险性低，家庭监管条件好',
                                   'review_members': '曾志强、彭建华', 'reviewed_on': now.isoformat()}, 'lsj_officer')
    demo.complete(done, 'deliver', {'delivered_on': now.isoformat(), 'delivery_method': '直接送达',
                                    'procuratorate_copied': True}, 'lsj_officer')


def _reception_stages(demo: _Demo, now: date) -> None:
    # Just received: documents and reporting both open.
    demo.start('corrections_reception', _reception('周某', _id_number('431381', date(1995, 6, 8), 51), '管制',
                                                   now - timedelta(days=2), 6), 'lsj_officer', '431381')
    # The 冷水江 → 浏阳 story: 李某 asks to move; the 征求意见函 waits in 浏阳's queue.
    li = demo.start('corrections_reception', _reception('李某', _id_number('431381', date(1990, 3, 15), 71), '缓刑',
                                                        now - timedelta(days=5), 12), 'lsj_officer', '431381')
    _supervise(demo, li, now - timedelta(days=3))
    demo.request('corrections_residence_change', li, {
        'applied_on': now.isoformat(), 'target_org_unit': '430181', 'new_address': '浏阳市淮川街道白沙路 12 号',
        'reason': '已与浏阳某企业签订劳动合同', 'proof': '劳动合同、租房合同'}, 'lsj_staff')
    demo.complete(li, 'township_sign', {'township_opinion': '经核实，就业属实，同意报送',
                                        'forwarded_on': now.isoformat()},
                  'lsj_staff')
    demo.complete(li, 'county_review', {'consult': '征求意见', 'review_opinion': '拟同意变更执行地',
                                        'decided_on': now.isoformat(), 'letter_sent_on': now.isoformat()},
                  'lsj_officer')
    # In supervision with a leave under way and an alarm to verify.
    wang = demo.start('corrections_reception', _reception('王某', _id_number('431381', date(1985, 1, 9), 93), '假释',
                                                          now - timedelta(days=5), 18, crime='诈骗罪'),
                      'lsj_officer', '431381')
    _supervise(demo, wang, now - timedelta(days=3))
    demo.request('corrections_leave', wang, {'leave_from': now.isoformat(),
                                             'leave_to': (now + timedelta(days=4)).isoformat(),
                                             'destination': '长沙市湘雅医院', 'reason': '陪同母亲就医',
                                             'applied_on': now.isoformat()}, 'lsj_staff')
    demo.complete(wang, 'township_approve', {'approved': True, 'approval_opinion': '事由属实，同意外出'}, 'lsj_staff')
    demo.request('corrections_alarm', wang, {'alarm_type': '越界', 'occurred_at': f'{now.isoformat()}T08:40:00',
                                             'location': '冷水江市与新化县交界'}, 'lsj_staff')
    # Up the sanction ladder: a 训诫, then a revocation proposal awaiting the court.
    chen = demo.start('corrections_reception', _reception('陈某', _id_number('431381', date(1992, 8, 30), 115), '缓刑',
                                                          now - timedelta(days=5), 12, crime='故意伤害罪'),
                      'lsj_officer', '431381')
    _supervise(demo, chen, now - timedelta(days=3), level='严管')
    demo.request('corrections_sanction', chen, {'kind': '训诫', 'facts': '未按规定每周电话报告'}, 'lsj_staff')
    demo.complete(chen, 'investigate', {'investigation': '连续两周未电话报告，本人承认',
                                        'township_opinion': '建议给予'},
                  'lsj_staff')
    demo.complete(chen, 'decide', {'approved': True, 'decided_on': now.isoformat(), 'decision_reason': '违反报告规定'},
                  'lsj_officer')
    demo.request('corrections_sanction', chen, {'kind': '提请撤销缓刑', 'facts': '未经批准离开冷水江市超过一个月'},
                 'lsj_staff')
    demo.complete(chen, 'gather', {'investigation': '经查未经批准外出三十五日', 'evidence_list': '定位轨迹、询问笔录'},
                  'lsj_officer')
    demo.complete(chen, 'deliberate', {'approved': True, 'decided_on': now.isoformat(),
                                       'proposal_to': '冷水江市人民法院',
                                       'decision_reason': '经集体研究'}, 'lsj_officer')
    demo.complete(chen, 'send_proposal', {'sent_on': now.isoformat(), 'procuratorate_copied': True}, 'lsj_officer')
    # 暂予监外执行 (保外就医): monthly health reports and checkups every three months.
    demo.start('corrections_reception', _reception(
        '刘某', _id_number('431381', date(1970, 2, 14), 137), '暂予监外执行', now - timedelta(days=5), 12,
        temporary_release_reason='保外就医', crime='受贿罪', sentence='有期徒刑三年'), 'lsj_officer', '431381')
    # Near the end of the term: the 期满鉴定 is under way.
    zhao = demo.start('corrections_reception', _reception('赵某', _id_number('431381', date(1987, 12, 1), 159), '缓刑',
                                                          now - timedelta(days=5), -20), 'lsj_officer', '431381')
    _supervise(demo, zhao, now - timedelta(days=3))
