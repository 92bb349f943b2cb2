"""The October 2025 scenario of the statistics and ranking tests, built through the real engine.

Tasks come from the demo diagram (登记案件情况 at the township → 审核登记情况) and the real 监管报警核查
diagram, started and completed at controlled Beijing times; only the due times of the demo tasks are set
on the rows (the scenario needs some early and some absent) and mediation cases are written as rows,
since the mediation lifecycle is not what these tests are about. The tests derive each expected figure
from this picture in their comments.

益阳市 (city)
├── 桃江县 (county): mediation cases closed in October: 调解成功 ×2, 调解不成 ×1, 不予受理 ×1 (plus one
│   │                 调解成功 closed in September and one case cancelled in October)
│   └── 桃花江镇 (township)
│       A  opened 10-08 09:00; 登记 due 10-10, done 10-09 09:00 (24 h, on time);
│          审核 due 10-12, done 10-14 09:00 (120 h, late) → case closed 10-14
│       B  opened 09-28 09:00; 登记 due 10-01 09:00, still open → open and overdue at the end of October
│       C  opened 10-20 09:00; 登记 without due time, done 11-03 → open (not overdue) at the end of October
└── 赫山区 (county)
    └── 龙光桥 (township), a corrections case R (opened 2025-01-01) with three alarm checks:
        D  opened 10-02 09:00; 登记 due 10-05, done 10-03 21:00 (36 h, on time); 审核 open, no due time
        alarm 09-29 10:15: 失联 (脱管, September), its 查找 task open and overdue
        alarm 10-12 10:15: checked 10-12 11:30 (1 h 0 min after start, due 12:15, on time): 失联 (脱管, October)
        alarm 10-20 14:00: checked 10-20 17:05 (3 h, due 16:00, late): 误报
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.clock import LOCAL_ZONE, FrozenClock
from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
ALARM = 'bpmn/corrections/alarm.bpmn'
REGISTER = {'visit_count': '1', 'risk_level': 'low', 'findings': '已走访核实'}
APPROVE = {'approved': 'true', 'review_opinion': '同意'}


def bj(text: str) -> datetime:
    """A Beijing wall-clock time, ``'2025-10-08 09:00'``."""
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_ZONE)


@dataclass
class Driver:
    """Starts demo cases and alarm checks and completes their tasks at given Beijing times."""

    session: Session
    clock: FrozenClock
    people: dict[str, User]

    def at(self, text: str) -> None:
        self.clock.set(bj(text))

    def start(self, unit: OrgUnit, when: str) -> HumanTask:
        """A demo case at ``unit``; returns its 登记案件情况 task."""
        self.at(when)
        data = {'person_name': '测试', 'received_on': '2025-10-01'}
        _, [task] = runtime.start_case(self.session, 'demo_intake', data, actor=None, org_unit=unit)
        self.session.commit()
        return task

    def due(self, task: HumanTask, when: str | None) -> None:
        task.due_dt = None if when is None else bj(when)
        self.session.commit()

    def complete(self, task: HumanTask, data: dict[str, str], user: str, when: str) -> list[HumanTask]:
        self.at(when)
        actor = self.people[user]
        _, tasks = runtime.complete_task(self.session, task.id, data, actor=actor,
                                         scope=load_scope(self.session, actor))
        self.session.commit()
        return tasks

    def alarm(self, case: Case, occurred: str, started: str) -> HumanTask:
        """A 监管报警核查 on ``case``; returns its 核查监控报警 task."""
        self.at(started)
        _, [task] = runtime.start_case(self.session, 'corrections_alarm',
                                       {'case_id': case.id, 'alarm_type': '越界', 'occurred_at': occurred},
                                       actor=None, org_unit=case.org_unit)
        self.session.commit()
        return task


def case_row(session: Session, unit: OrgUnit, kind: str, created: str, *, closed: str | None = None,
             outcome: str | None = None, cancelled: bool = False) -> Case:
    """A case written directly (the lifecycle that would close it is not under test)."""
    code = secrets.token_urlsafe(12)
    case = Case(number=code[:32], public_code=code, kind=kind, title='统计测试', org_unit_id=unit.id,
                org_path=unit.path, outcome=outcome, created_dt=bj(created), start_data={}, counters={})
    session.add(case)
    session.flush()
    if closed is not None:
        (case.cancel if cancelled else case.close)(bj(closed))
    session.commit()
    return case


@dataclass
class October:
    """What the scenario built, for assertions."""

    org: Org
    reception: Case


def build_october(session: Session, clock: FrozenClock, org: Org, people: dict[str, User],
                  deploy_file: Callable[[str], object]) -> October:
    """Build the scenario of the module docstring; the clock is left at 2025-11-05 09:00."""
    for path in (DEMO, ALARM):
        deploy_file(path)
    for unit in (org.province, org.city, org.county, org.township, org.other_county, org.other_township):
        unit.created_dt = bj('2025-01-01 00:00')
    session.commit()
    d = Driver(session, clock, people)
    _taojiang(session, d, org)
    reception = _heshan(session, d, org)
    d.at('2025-11-05 09:00')
    return October(org, reception)


def _taojiang(session: Session, d: Driver, org: Org) -> None:
    b = d.start(org.township, '2025-09-28 09:00')
    d.due(b, '2025-10-01 09:00')
    a = d.start(org.township, '2025-10-08 09:00')
    d.due(a, '2025-10-10 09:00')
    [review] = d.complete(a, REGISTER, 'staff', '2025-10-09 09:00')
    d.due(review, '2025-10-12 09:00')
    d.complete(review, APPROVE, 'officer', '2025-10-14 09:00')
    c = d.start(org.township, '2025-10-20 09:00')
    d.due(c, None)
    d.complete(c, REGISTER, 'staff', '2025-11-03 09:00')
    for closed, outcome in (('2025-10-05 10:00', '调解成功'), ('2025-10-25 10:00', '调解成功'),
                            ('2025-10-15 10:00', '调解不成'), ('2025-10-16 10:00', '不予受理'),
                            ('2025-09-30 10:00', '调解成功')):
        case_row(session, org.county, 'dispute_mediation', '2025-09-20 09:00', closed=closed, outcome=outcome)
    case_row(session, org.county, 'dispute_mediation', '2025-10-02 09:00', closed='2025-10-10 09:00', cancelled=True)


def _heshan(session: Session, d: Driver, org: Org) -> Case:
    reception = case_row(session, org.other_township, 'corrections_reception', '2025-01-01 09:00')
    first = d.alarm(reception, '2025-09-29T10:15:00', '2025-09-29 10:30')
    d.complete(first, {'finding': '失联', 'notes': '电话关机，无法联系'}, 'outsider', '2025-09-29 11:30')
    task = d.start(org.other_township, '2025-10-02 09:00')
    d.due(task, '2025-10-05 09:00')
    [review] = d.complete(task, REGISTER, 'outsider', '2025-10-03 21:00')
    d.due(review, None)
    second = d.alarm(reception, '2025-10-12T10:15:00', '2025-10-12 10:30')
    d.complete(second, {'finding': '失联', 'notes': '电话关机，无法联系'}, 'outsider', '2025-10-12 11:30')
    third = d.alarm(reception, '2025-10-20T14:00:00', '2025-10-20 14:05')
    d.complete(third, {'finding': '误报', 'notes': '定位漂移，电话核实在家'}, 'outsider', '2025-10-20 17:05')
    return reception


