"""Fixtures for the medical-dispute lifecycle: a Taojiang-like county with a user per role, the shipped
diagrams deployed, and a driver that starts cases, completes tasks and moves the clock through the real
engine, database and worker."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import HOSPITAL_PREFIX, group_queue_clause, load_scope
from engine.clock import LOCAL_ZONE, FrozenClock
from engine.directory import add_membership, create_org_unit, create_user, get_group
from engine.models.audit import AuditEvent
from engine.models.cases import Case, Document
from engine.models.instances import ProcessInstance
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import Worker
from tests.fixtures.directory import PASSWORD
from tests.fixtures.engine import ROOT
from workflows.shared.id_numbers import check_digit

DIAGRAMS = ('bpmn/disputes/triage.dmn', 'bpmn/disputes/subsidy.dmn', 'bpmn/disputes/dispute_mediation.bpmn')


def valid_id(first17: str) -> str:
    """A resident ID number with a correct check digit."""
    return first17 + check_digit(first17)


PATIENT_ID = valid_id('43092219580612003')
#: the hospital of every dispute these tests start (unless one overrides it)
HOSPITAL = '桃江县某医院'


@dataclass
class Taojiang:
    """桃江县 under 益阳市, two townships, and a neighbouring county."""

    province: OrgUnit
    city: OrgUnit
    county: OrgUnit
    township: OrgUnit
    other_township: OrgUnit
    other_county: OrgUnit
    users: dict[str, User] = field(default_factory=dict)


# (username, groups, unit attribute)
PEOPLE = [
    ('mediator', ('mediator',), 'county'),
    ('senior', ('senior_mediator', 'mediator'), 'county'),
    ('counsellor', ('counsellor',), 'county'),
    ('expert', ('expert',), 'county'),
    ('health', ('health_bureau',), 'county'),
    ('hospital', ('hospital_liaison',), 'county'),
    ('chief', ('supervisor',), 'county'),
    ('village', ('village_mediator',), 'township'),
    ('township', ('township_mediator',), 'township'),
    ('other_mediator', ('mediator',), 'other_county'),
]

#: who completes each task by default, by candidate group
GROUP_USER = {'mediator': 'mediator', 'senior_mediator': 'senior', 'counsellor': 'counsellor', 'expert': 'expert',
              'health_bureau': 'health', 'hospital_liaison': 'hospital', 'supervisor': 'chief',
              'village_mediator': 'village', 'township_mediator': 'township'}


@pytest.fixture
def taojiang(session: Session) -> Taojiang:
    province = create_org_unit(session, '430000', '湖南省司法厅', 'province', None)
    city = create_org_unit(session, '430900', '益阳市司法局', 'city', province)
    county = create_org_unit(session, '430922', '桃江县司法局', 'county', city)
    township = create_org_unit(session, '430922001', '桃花江镇司法所', 'township', county)
    other_township = create_org_unit(session, '430922002', '灰山港镇司法所', 'township', county)
    other_county = create_org_unit(session, '430903', '赫山区司法局', 'county', city)
    org = Taojiang(province, city, county, township, other_township, other_county)
    for username, groups, unit_name in PEOPLE:
        unit = getattr(org, unit_name)
        user = create_user(session, username, f'{username}（测试）', PASSWORD, unit, actor=None)
        for group in groups:
            add_membership(session, user, get_group(session, group, group), unit, actor=None)
        org.users[username] = user
    # The 医患办 sees the disputes with its own hospital only: tie it to the hospital of start_data().
    add_membership(session, org.users['hospital'], get_group(session, HOSPITAL_PREFIX + HOSPITAL, HOSPITAL),
                   county, actor=None)
    session.commit()
    return org


@pytest.fixture
def deployed(session: Session) -> None:
    """The shipped DMN tables and the lifecycle, deployed (DMN first: the process refers to them)."""
    from engine.definitions import deploy
    for relative in DIAGRAMS:
        deploy(session, (ROOT / relative).read_bytes(), actor=None, filename=relative, accept_warnings=True)
    session.commit()


def start_data(**overrides: Any) -> dict[str, Any]:
    """Start data of a simple (green) dispute; override what a test needs."""
    data: dict[str, Any] = {
        'applied_on': '2025-09-26', 'source': '当事人申请', 'application_form': '书面', 'applicant_side': '患方',
        'applicant_name': '王某某', 'applicant_relation': '子女', 'applicant_phone': '13800000000',
        'person_name': '王哲', 'id_number': PATIENT_ID, 'hospital': HOSPITAL, 'department': '心内科',
        'dispute_summary': '患方认为医院用药不当导致过敏反应，要求赔偿医疗费及误工费。',
        'claimed_amount': '30000.00', 'patient_died': False, 'people_involved': 1, 'online_attention': False,
        'prior_failed_talks': 0,
    }
    data.update(overrides)
    return data


ACCEPT = {'consent_status': 'consented', 'court_accepted': False, 'health_bureau_accepted': False,
          'accepted_on': '2025-09-26', 'start_level': '县'}


def session_data(outcome: str, on: str = '2025-09-29', **extra: Any) -> dict[str, Any]:
    data = {'session_on': on, 'session_place': '桃江县医调委调解室', 'participants': '患方家属、医院医患办、调解员',
            'session_summary': '双方陈述意见，调解员释法明理。', 'session_outcome': outcome}
    data.update(extra)
    return data


def agreement_data(signed_on: str = '2025-09-29', **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        'parties': [
            {'role': '患方', 'name': '王某某', 'id_number': valid_id('43092219850101002'),
             'representative': '患者之子', 'signed': True},
            {'role': '医方', 'name': '桃江县某医院', 'credit_code': '12430922MB1234567X',
             'representative': '委托代理人 李某', 'signed': True},
        ],
        'facts': '患者因眩晕入院，用药后出现过敏反应，双方对诊疗行为存在争议。',
        'responsibility': '医方在用药观察方面存在不足，承担相应责任。',
        'amount_claimed': '30000.00', 'amount_agreed': '18000.00', 'insurer_share': '10000.00',
        'performance_method': '一次性银行转账', 'performance_due_on': '2025-10-15', 'signed_on': signed_on,
        'mediator_name': '王红梅', 'mediator_signed': True, 'seal_affixed': True,
    }
    data.update(extra)
    return data


def bj(text: str) -> datetime:
    """A Beijing wall-clock time, ``'2025-10-16 09:00'``."""
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_ZONE)


class Driver:
    """Runs dispute cases through the real engine: start, complete tasks, move the clock, fire timers."""

    def __init__(self, session: Session, org: Taojiang, clock: FrozenClock, worker: Worker) -> None:
        self.session, self.org, self.clock, self.worker = session, org, clock, worker

    def user(self, name: str) -> User:
        return self.org.users[name]

    def start(self, actor: str = 'mediator', **overrides: Any) -> Case:
        case, _ = runtime.start_case(self.session, 'dispute_mediation', start_data(**overrides),
                                     actor=self.user(actor), org_unit=self.org.county)
        self.session.commit()
        return case

    def open_tasks(self, case: Case) -> list[HumanTask]:
        self.session.expire_all()
        return list(self.session.scalars(sa.select(HumanTask).where(
            HumanTask.case_id == case.id, HumanTask.status == 'open').order_by(HumanTask.id)))

    def open_ids(self, case: Case) -> list[str]:
        return [task.bpmn_id for task in self.open_tasks(case)]

    def task(self, case: Case, bpmn_id: str) -> HumanTask:
        matches = [task for task in self.open_tasks(case) if task.bpmn_id == bpmn_id]
        assert len(matches) == 1, f'{bpmn_id} not open exactly once: {self.open_ids(case)}'
        return matches[0]

    def complete(self, case: Case, bpmn_id: str, data: Mapping[str, Any], as_user: str | None = None) -> None:
        task = self.task(case, bpmn_id)
        user = self.user(as_user or GROUP_USER[task.candidate_group or ''])
        runtime.complete_task(self.session, task.id, dict(data), actor=user, scope=load_scope(self.session, user))
        self.session.commit()

    def accept(self, case: Case, **overrides: Any) -> None:
        self.complete(case, 'accept_review', {**ACCEPT, **overrides})

    def data(self, case: Case) -> dict[str, Any]:
        """The task data an open task of the lifecycle sees (the first one)."""
        return runtime.task_data(self.session, self.open_tasks(case)[0])

    def at(self, text: str) -> int:
        """Move the clock to Beijing time ``text`` and let the worker run what fell due; return jobs run."""
        self.clock.set(bj(text))
        total = 0
        while (count := self.worker.run_once()):
            total += count
        self.session.expire_all()
        return total

    def instance(self, case: Case) -> ProcessInstance:
        self.session.expire_all()
        return self.session.scalars(sa.select(ProcessInstance).where(
            ProcessInstance.case_id == case.id, ProcessInstance.is_lifecycle)).one()

    def fresh(self, case: Case) -> Case:
        self.session.expire_all()
        found = self.session.get(Case, case.id)
        assert found is not None
        return found

    def documents(self, case: Case) -> list[Document]:
        return list(self.session.scalars(sa.select(Document).where(Document.case_id == case.id)
                                         .order_by(Document.id)))

    def document_kinds(self, case: Case) -> list[str]:
        return [document.kind for document in self.documents(case)]

    def audit(self, case: Case, kind: str) -> list[AuditEvent]:
        return list(self.session.scalars(sa.select(AuditEvent).where(AuditEvent.case_id == case.id,
                                                                     AuditEvent.kind == kind)
                                         .order_by(AuditEvent.id)))

    def queue(self, username: str) -> list[HumanTask]:
        """The unclaimed tasks in ``username``'s group queues."""
        scope = load_scope(self.session, self.user(username))
        return list(self.session.scalars(sa.select(HumanTask).where(
            HumanTask.status == 'open', group_queue_clause(scope)).order_by(HumanTask.id)))


@pytest.fixture
def worker(session_factory: sessionmaker[Session], clock: FrozenClock) -> Worker:
    return Worker(session_factory, name='disputes-test', batch_size=50, clock=clock)


@pytest.fixture
def driver(session: Session, taojiang: Taojiang, deployed: None, clock: FrozenClock,
           worker: Worker) -> Iterator[Driver]:
    yield Driver(session, taojiang, clock, worker)
