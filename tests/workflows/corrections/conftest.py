"""Fixtures for the community-corrections diagrams: the 冷水江 and 浏阳 units, their staff, every diagram deployed.

``corrections`` drives cases through the real engine, database and worker on the frozen clock (2025-09-26
09:00 Beijing time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import group_queue_clause, load_scope
from engine.clock import FrozenClock
from engine.definitions import deploy
from engine.directory import create_org_unit
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import Worker

ROOT = Path(__file__).resolve().parents[3]
DIAGRAMS = sorted((ROOT / 'bpmn' / 'corrections').glob('*.bpmn'))

#: a valid ID number (GB 11643 check digit), male, born 1985-03-12
MALE_ID = '431381198503120015'
#: female, born 1990-07-01
FEMALE_ID = '431381199007010022'


def reception_data(**overrides: Any) -> dict[str, Any]:
    """Start data of a 缓刑 case whose judgment took effect on 2025-09-25."""
    data: dict[str, Any] = {
        'person_name': '李某', 'id_number': MALE_ID, 'correction_type': '缓刑', 'decision_body': '冷水江市人民法院',
        'judgment_number': '（2025）湘1381刑初88号', 'crime': '危险驾驶罪', 'sentence': '拘役四个月，缓刑六个月',
        'judgment_effective_on': '2025-09-25', 'term_start': '2025-09-25', 'term_end': '2026-09-24',
        'documents_received_on': '2025-09-26', 'residence_address': '冷水江市锡矿山街道'}
    data.update(overrides)
    return data


TEAM = {'members': [{'name': '刘晓燕', 'role': '司法所工作人员', 'gender': '女'},
                    {'name': '李父', 'role': '家庭成员或监护人', 'gender': '男'}],
        'plan_summary': '每月集中教育一次，每周电话报告，参加公益活动。', 'risk_assessment': '再犯风险低',
        'proposed_level': '普管'}


@dataclass
class Units:
    """The demo's Hunan units that the corrections stories need."""

    province: OrgUnit
    loudi: OrgUnit
    changsha: OrgUnit
    lengshuijiang: OrgUnit
    xikuangshan: OrgUnit
    liuyang: OrgUnit
    huaichuan: OrgUnit


@dataclass
class Corrections:
    """Drives corrections cases: start, look at queues, complete tasks, move the clock and run the worker."""

    session: Session
    clock: FrozenClock
    worker: Worker
    units: Units
    users: dict[str, User] = field(default_factory=dict)

    def start(self, key: str, data: Mapping[str, Any], *, user: str = 'lsj_officer',
              unit: OrgUnit | None = None) -> Case:
        actor = self.users[user]
        case, _ = runtime.start_case(self.session, key, data, actor=actor, org_unit=unit or self.units.lengshuijiang,
                                     scope=load_scope(self.session, actor))
        self.session.commit()
        return case

    def open_tasks(self, case: Case | None = None) -> list[HumanTask]:
        self.session.expire_all()
        query = sa.select(HumanTask).where(HumanTask.status == 'open').order_by(HumanTask.id)
        if case is not None:
            query = query.where(HumanTask.case_id == case.id)
        return list(self.session.scalars(query))

    def names(self, case: Case | None = None) -> list[str]:
        return [task.bpmn_id for task in self.open_tasks(case)]

    def task(self, bpmn_id: str, case: Case | None = None) -> HumanTask:
        matches = [t for t in self.open_tasks(case) if t.bpmn_id == bpmn_id]
        assert len(matches) == 1, f'{bpmn_id}: {self.names(case)}'
        return matches[0]

    def complete(self, bpmn_id: str, data: Mapping[str, Any], user: str, case: Case | None = None) -> HumanTask:
        task = self.task(bpmn_id, case)
        actor = self.users[user]
        runtime.complete_task(self.session, task.id, data, actor=actor, scope=load_scope(self.session, actor))
        self.session.commit()
        return task

    def queue(self, user: str) -> list[str]:
        """The bpmn ids in ``user``'s group queue (unassigned open tasks of their groups at their units)."""
        self.session.expire_all()
        scope = load_scope(self.session, self.users[user])
        return [t.bpmn_id for t in self.session.scalars(sa.select(HumanTask).where(
            HumanTask.status == 'open', group_queue_clause(scope)).order_by(HumanTask.id))]

    def advance(self, **delta: float) -> None:
        """Move the clock and let the worker fire whatever fell due."""
        self.clock.advance(timedelta(**delta))
        self.session.commit()
        while self.worker.run_once():
            pass
        self.session.expire_all()

    def case(self, case: Case) -> Case:
        self.session.expire_all()
        fresh = self.session.get(Case, case.id)
        assert fresh is not None
        return fresh

    def instances(self, case: Case, key: str | None = None) -> list[ProcessInstance]:
        self.session.expire_all()
        rows = self.session.scalars(sa.select(ProcessInstance).where(ProcessInstance.case_id == case.id)
                                    .order_by(ProcessInstance.id)).all()
        return [i for i in rows if key is None or i.definition.key == key]

    def data(self, bpmn_id: str, case: Case | None = None) -> dict[str, Any]:
        return runtime.task_data(self.session, self.task(bpmn_id, case))

    def receive(self, **overrides: Any) -> Case:
        """A 缓刑 case received by 冷水江 and brought to supervision: reported, declared, team, 普管."""
        case = self.start('corrections_reception', reception_data(**overrides))
        self.complete('receipt', {'documents_received_on': '2025-09-26', 'documents_complete': True,
                                  'receipt_sent_on': '2025-09-27'}, 'lsj_officer', case)
        self.complete('report', {'reported_on': '2025-09-28', 'reception_method': '自行报到',
                                 'township_code': '431381001', 'residence_address': '锡矿山街道七里江社区'},
                      'lsj_officer', case)
        self.complete('declare', {'declared_on': '2025-09-29', 'venue': '锡矿山司法所',
                                  'attendees': '刘晓燕、社区网格员'}, 'lsj_staff', case)
        self.complete('team', TEAM, 'lsj_staff', case)
        self.complete('approve_level', {'management_level': '普管', 'level_reason': '初次入矫，风险低'},
                      'lsj_officer', case)
        return self.case(case)


def build_units(session: Session) -> Units:
    province = create_org_unit(session, '430000', '湖南省司法厅', 'province', None)
    loudi = create_org_unit(session, '431300', '娄底市司法局', 'city', province)
    changsha = create_org_unit(session, '430100', '长沙市司法局', 'city', province)
    lengshuijiang = create_org_unit(session, '431381', '冷水江市司法局', 'county', loudi)
    xikuangshan = create_org_unit(session, '431381001', '锡矿山街道司法所', 'township', lengshuijiang)
    liuyang = create_org_unit(session, '430181', '浏阳市司法局', 'county', changsha)
    huaichuan = create_org_unit(session, '430181001', '淮川街道司法所', 'township', liuyang)
    return Units(province, loudi, changsha, lengshuijiang, xikuangshan, liuyang, huaichuan)


@pytest.fixture
def corrections(session: Session, session_factory: sessionmaker[Session], clock: FrozenClock,
                create_member: Callable[..., User]) -> Corrections:
    units = build_units(session)
    session.commit()
    members = {'lsj_staff': ('township_staff', units.xikuangshan),
               'lsj_officer': ('county_officer', units.lengshuijiang),
               'lsj_chief': ('supervisor', units.lengshuijiang), 'ld_chief': ('supervisor', units.loudi),
               'hn_chief': ('supervisor', units.province), 'ly_officer': ('county_officer', units.liuyang),
               'ly_staff': ('township_staff', units.huaichuan), 'cs_chief': ('supervisor', units.changsha)}
    users = {name: create_member(name, group, unit) for name, (group, unit) in members.items()}
    for path in DIAGRAMS:
        deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
    session.commit()
    worker = Worker(session_factory, name='corrections-test', batch_size=100, clock=clock)
    return Corrections(session, clock, worker, units, users)
