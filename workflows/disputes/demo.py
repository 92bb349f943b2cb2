"""Demo medical-dispute cases at 桃江县, one or more in every stage of the lifecycle.

Each story runs through the real engine (start, complete tasks), so what the demo shows is what the
diagram does. Dates count back from today (the engine clock), so the open cases are inside their legal
periods whenever the demo is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.access import HOSPITAL_PREFIX, load_scope
from engine.clock import get_clock
from engine.directory import add_membership, get_group
from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.runtime import complete_task, start_case
from workflows.disputes.settings import PROCESS_KEY
from workflows.shared.id_numbers import check_digit

COUNTY = '430922'
TOWNSHIP = '430922001'
#: the hospital whose 医患办 the demo's liaison (tj_hospital) is: they see the disputes with it only
LIAISON_HOSPITAL = '桃江县人民医院'

#: who completes each task in the demo, by candidate group
_GROUP_USERS = {'mediator': 'tj_mediator', 'senior_mediator': 'tj_senior', 'counsellor': 'tj_counsellor',
                'expert': 'tj_expert', 'health_bureau': 'tj_health', 'hospital_liaison': 'tj_hospital',
                'supervisor': 'tj_chief', 'village_mediator': 'tj_village', 'township_mediator': 'tj_township'}


def _id_number(first17: str) -> str:
    return first17 + check_digit(first17)


@dataclass
class _Demo:
    """Starts cases and completes their tasks as the user of each task's group."""

    session: Session
    units: Mapping[str, OrgUnit]
    users: Mapping[str, User]
    today: date

    def day(self, offset: int) -> str:
        """The ISO date ``offset`` days from today (negative: in the past)."""
        return (self.today + timedelta(days=offset)).isoformat()

    def start(self, **data: Any) -> Case:
        payload = {'source': '当事人申请', 'application_form': '书面', 'applicant_side': '患方',
                   'applicant_relation': '子女', 'patient_died': False, 'people_involved': 1,
                   'online_attention': False, 'prior_failed_talks': 0, **data}
        case, _ = start_case(self.session, PROCESS_KEY, payload, actor=self.users['tj_mediator'],
                             org_unit=self.units[COUNTY])
        return case

    def complete(self, case: Case, bpmn_id: str, data: Mapping[str, Any]) -> None:
        task = self.session.scalars(sa.select(HumanTask).where(
            HumanTask.case_id == case.id, HumanTask.bpmn_id == bpmn_id, HumanTask.status == 'open')).first()
        if task is None:
            raise LookupError(f'{case.number}: no open task {bpmn_id}')
        user = self.users[_GROUP_USERS[task.candidate_group or 'mediator']]
        complete_task(self.session, task.id, dict(data), actor=user, scope=load_scope(self.session, user))

    def accept(self, case: Case, accepted: int, **extra: Any) -> None:
        self.complete(case, 'accept_review', {'consent_status': 'consented', 'court_accepted': False,
                                              'health_bureau_accepted': False, 'accepted_on': self.day(accepted),
                                              'start_level': '县', **extra})

    def session_held(self, case: Case, bpmn_id: str, offset: int, outcome: str, summary: str) -> None:
        self.complete(case, bpmn_id, {'session_on': self.day(offset), 'session_place': '桃江县医调委调解室',
                                      'participants': '患方近亲属、医院医患办负责人、调解员',
                                      'session_summary': summary, 'session_outcome': outcome})

    def sign(self, case: Case, offset: int, due: int, *, patient: str, relative: str, hospital: str, claimed: str,
             agreed: str, insurer: str = '0.00', responsibility: str = '医方在诊疗过程中存在一定不足，承担相应责任。',
             facts: str = '患者就诊后出现不良后果，患方认为医方存在过错，双方发生争议。') -> None:
        self.complete(case, 'draft_agreement', {
            'parties': [
                {'role': '患方', 'name': relative, 'id_number': _id_number('43092219720315002'),
                 'representative': f'患者{patient}之近亲属', 'address': '湖南省桃江县桃花江镇', 'signed': True},
                {'role': '医方', 'name': hospital, 'credit_code': '12430922448000123K',
                 'representative': '委托代理人（医患办主任）', 'signed': True},
            ],
            'facts': facts, 'responsibility': responsibility, 'amount_claimed': claimed, 'amount_agreed': agreed,
            'insurer_share': insurer, 'performance_method': '一次性银行转账', 'performance_due_on': self.day(due),
            'signed_on': self.day(offset), 'mediator_name': '王红梅', 'mediator_signed': True, 'seal_affixed': True,
        })


# -- the stories --------------------------------------------------------------------------------------------

def _applied(demo: _Demo) -> Case:
    return demo.start(applied_on=demo.day(0), applicant_name='刘建国', person_name='刘美华',
                      id_number=_id_number('43092219660812004'), hospital='桃江县中医医院', department='骨伤科',
                      dispute_summary='患者腰椎手术后下肢麻木加重，患方认为手术操作不当，要求赔偿。',
                      claimed_amount='68000.00')


def _rejected(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-3), applicant_name='郭立新', person_name='郭立新',
                      applicant_relation='本人', hospital='灰山港镇中心卫生院',
                      dispute_summary='输液后出现皮疹，要求退还医疗费并赔偿误工费。', claimed_amount='5000.00')
    demo.accept(case, -2, court_accepted=True, review_note='经核实，患方已于上周向桃江县人民法院起诉并已立案。')
    return case


def _green(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-3), applicant_name='蔡志强', person_name='蔡秀英',
                      id_number=_id_number('43092219480601002'), hospital='桃花江镇卫生院',
                      dispute_summary='老人摔伤后拍片未发现骨折，三天后外院确诊股骨颈骨折，要求赔偿。',
                      claimed_amount='12000.00')
    demo.accept(case, -2)
    return case


def _yellow(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-2), applicant_name='黄文斌', person_name='黄桂香',
                      hospital='桃江县人民医院', department='产科', claimed_amount='150000.00', prior_failed_talks=2,
                      dispute_summary='产妇产后大出血切除子宫，家属认为处置延误，多次到医院协商未果。')
    demo.accept(case, -1)
    return case


def _red(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(0), applicant_name='王某某', person_name='王哲',
                      id_number=_id_number('43092219580612003'), hospital='桃江县人民医院', department='心内科',
                      source='诉源', patient_died=True, prior_failed_talks=3, online_attention=True,
                      people_involved=8, claimed_amount='800000.00',
                      dispute_summary='患者因眩晕入院，用药后出现过敏反应，次日再次用药时心脏骤停，经抢救无效死亡。'
                                      '家属认为医院诊断延误、用药不当。')
    demo.accept(case, 0)
    demo.complete(case, 'red_counselling', {'counselling_record': '对死者子女进行心理疏导，情绪逐步平复。',
                                            'emotional_state': '基本稳定', 'mass_incident_risk': True})
    return case


def _village(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-10), applicant_name='李长青', person_name='李长青',
                      applicant_relation='本人', hospital='桃花江镇卫生院', township_code=TOWNSHIP,
                      dispute_summary='拔牙后感染，患方要求医院承担后续治疗费用。', claimed_amount='8000.00')
    demo.accept(case, -9, start_level='村')
    demo.session_held(case, 'session_village', -8, 'continue', '村调委会上门了解情况，双方分歧较大。')
    demo.session_held(case, 'session_village', -4, 'continue', '医院同意承担部分费用，患方要求全额。')
    return case


def _township(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-20), applicant_name='周德明', person_name='周德明',
                      applicant_relation='本人', hospital='桃花江镇卫生院', township_code=TOWNSHIP,
                      dispute_summary='注射后臀部硬结化脓，患方认为注射操作不规范。', claimed_amount='15000.00')
    demo.accept(case, -19, start_level='村')
    for offset, outcome in ((-18, 'continue'), (-15, 'continue'), (-12, 'continue'), (-9, 'escalate')):
        demo.session_held(case, 'session_village', offset, outcome, '村级调解，双方意见未能统一。')
    demo.session_held(case, 'session_township', -5, 'continue', '乡镇调委会组织复诊，医院提出补偿方案。')
    return case


def _appraisal(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-15), applicant_name='邓小红', person_name='邓国华',
                      hospital='桃江县人民医院', department='普外科', claimed_amount='260000.00',
                      dispute_summary='胆囊切除术后胆漏，二次手术，患方认为手术损伤胆管。')
    demo.accept(case, -14)
    demo.complete(case, 'backlog_plan', {'lead_mediator': '胡国平', 'backlog_plan_text': '由资深调解员包案，'
                                         '先行委托鉴定明确责任。', 'start_level': '县'})
    demo.session_held(case, 'session_county', -10, 'appraisal', '双方同意共同委托益阳市医学会进行医疗损害鉴定。')
    return case


def _extended(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-25), applicant_name='谢海军', person_name='谢春兰',
                      hospital='桃江县中医医院', claimed_amount='45000.00',
                      dispute_summary='针灸治疗后气胸住院，要求赔偿医疗费、护理费。')
    demo.accept(case, -24)
    demo.session_held(case, 'session_county', -20, 'continue', '初次调解，双方陈述意见。')
    demo.session_held(case, 'session_county', -12, 'expert', '对针刺深度是否规范存在争议，需咨询专家。')
    demo.complete(case, 'expert_consult', {'expert_name': '汤医生', 'expert_field': '针灸科',
                                           'consulted_on': demo.day(-10), 'recusal_confirmed': True,
                                           'expert_opinion': '进针深度偏深，与气胸存在关联。'})
    demo.session_held(case, 'session_county', -5, 'extend', '患方需待出院后核算费用，双方同意延长调解期限。')
    clock_due = date.fromisoformat(demo.day(40))
    demo.complete(case, 'extension', {'extension_agreed': True, 'agreed_due_on': clock_due.isoformat(),
                                      'extension_reason': '患方尚在住院治疗，待出院结算后继续协商',
                                      'patient_consents': True, 'hospital_consents': True})
    return case


def _agreed(demo: _Demo, offset: int, due: int, **start: Any) -> Case:
    case = demo.start(applied_on=demo.day(offset - 6), claimed_amount='30000.00', **start)
    demo.accept(case, offset - 5)
    demo.session_held(case, 'session_county', offset, 'agreement', '经释法说理，双方就赔偿金额达成一致。')
    demo.sign(case, offset, due, patient=start['person_name'], relative=start['applicant_name'],
              hospital=start['hospital'], claimed='30000.00', agreed='18000.00', insurer='10000.00')
    return case


def _confirmation(demo: _Demo) -> Case:
    return _agreed(demo, -3, 20, applicant_name='孙丽', person_name='孙德贵', hospital='桃江县人民医院',
                   dispute_summary='术后切口感染延长住院，要求赔偿。')


def _court(demo: _Demo) -> Case:
    case = _agreed(demo, -6, 25, applicant_name='彭涛', person_name='彭玉梅', hospital='桃江县人民医院',
                   dispute_summary='分娩时新生儿锁骨骨折，要求赔偿。')
    demo.complete(case, 'confirmation', {'confirmation_decision': 'applied', 'confirmation_applied_on': demo.day(-2),
                                         'court_name': '桃江县人民法院'})
    return case


def _followup(demo: _Demo) -> Case:
    case = _agreed(demo, -12, -2, applicant_name='曾凡', person_name='曾庆云', hospital='灰山港镇中心卫生院',
                   dispute_summary='误诊阑尾炎为肠胃炎，延误手术。')
    demo.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    return case


def _performed(demo: _Demo, case: Case, offset: int, status: str = 'performed') -> None:
    demo.complete(case, 'followup', {'visit_on': demo.day(offset), 'visit_method': '电话回访',
                                     'performance_status': status, 'paid_amount': '18000.00',
                                     'satisfaction': '满意', 'visit_note': '赔偿款已到账，患方表示满意。'})


def _rectification(demo: _Demo) -> Case:
    case = _agreed(demo, -20, -10, applicant_name='罗斌', person_name='罗建华', hospital='桃江县人民医院',
                   dispute_summary='CT 报告漏报肺部结节，延误治疗。')
    demo.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    _performed(demo, case, -8)
    demo.complete(case, 'analyse_causes', {'hospital_problems': True,
                                           'problems_found': '影像科报告审核制度落实不到位，存在漏报。',
                                           'rectification_suggestions': '落实影像报告双人审核，定期开展质控抽查。'})
    return case


def _review(demo: _Demo) -> Case:
    case = _agreed(demo, -25, -15, applicant_name='汤卫国', person_name='汤秋菊', hospital='桃花江镇卫生院',
                   dispute_summary='输液外渗致手背皮肤坏死。')
    demo.complete(case, 'confirmation', {'confirmation_decision': 'waived'})
    _performed(demo, case, -14)
    demo.complete(case, 'analyse_causes', {'hospital_problems': False})
    return case


def _closed(demo: _Demo) -> Case:
    case = _review(demo)
    demo.complete(case, 'close_review', {'review_opinion': '卷宗齐全，同意结案。',
                                         'archive_number': '桃医调〔2025〕8号'})
    return case


def _terminated(demo: _Demo) -> Case:
    case = demo.start(applied_on=demo.day(-18), applicant_name='熊志远', person_name='熊志远',
                      applicant_relation='本人', hospital='桃江县中医医院', claimed_amount='20000.00',
                      dispute_summary='推拿后颈部疼痛加重。')
    demo.accept(case, -17)
    demo.session_held(case, 'session_county', -14, 'terminate', '患方表示将直接向法院起诉，撤回调解申请。')
    demo.complete(case, 'termination_notice', {'route_litigation': True, 'delivery_method': '直接送达',
                                               'notice_delivered_on': demo.day(-14)})
    demo.complete(case, 'analyse_causes', {'hospital_problems': False})
    demo.complete(case, 'close_review', {'review_opinion': '当事人撤回申请，同意结案。'})
    return case


STORIES: tuple[Callable[[_Demo], Case], ...] = (
    _applied, _rejected, _green, _yellow, _red, _village, _township, _appraisal, _extended, _confirmation, _court,
    _followup, _rectification, _review, _closed, _terminated,
)


def _tie_liaison(session: Session, units: Mapping[str, OrgUnit], users: Mapping[str, User]) -> None:
    """Tie the demo's 医患办 to their hospital (a ``hospital:<name>`` group, see engine.access)."""
    group = get_group(session, HOSPITAL_PREFIX + LIAISON_HOSPITAL, LIAISON_HOSPITAL)
    add_membership(session, users['tj_hospital'], group, units[COUNTY], actor=None)


def load_demo_cases(session: Session, units: Mapping[str, OrgUnit], users: Mapping[str, User]) -> int:
    """Create the demo dispute cases (the diagrams must be deployed); flushes, never commits.

    :param units: org units by code (``430922`` 桃江县 and ``430922001`` 桃花江镇 are used)
    :param users: users by username (``tj_mediator``, ``tj_senior`` ... ``tj_village``, ``tj_township``)
    :return: how many cases were created
    """
    _tie_liaison(session, units, users)
    demo = _Demo(session, units, users, get_clock().today())
    for story in STORIES:
        story(demo)
    session.flush()
    return len(STORIES)
