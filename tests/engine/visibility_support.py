"""A county with one user per case role and one case of each kind the visibility rules tell apart.

Cases (all started through the real engine): an adult's and a minor's corrections case at the township, a
dispute with each of two hospitals at the county (triaged red and accepted, so that every dispute role has a
task), and a case of the test-only ``demo_intake`` process, which no lifecycle names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from engine import runtime
from engine.access import HOSPITAL_PREFIX, load_scope
from engine.definitions import deploy
from engine.directory import add_membership, create_org_unit, create_user, get_group
from engine.models.cases import Case
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import PASSWORD
from workflows.shared.id_numbers import check_digit

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = ('bpmn/corrections/reception.bpmn', 'bpmn/disputes/triage.dmn', 'bpmn/disputes/subsidy.dmn',
            'bpmn/disputes/dispute_mediation.bpmn', 'tests/fixtures/bpmn/demo_intake.bpmn')
HOSPITAL_A = '桃江县人民医院'
HOSPITAL_B = '桃江县中医医院'
#: born 2010-03-12: 15 when the judgment took effect
MINOR_ID = '43092220100312001' + check_digit('43092220100312001')
ADULT_ID = '43092219850312001' + check_digit('43092219850312001')

# (username, groups, unit)
PEOPLE = [
    ('staff', ('township_staff',), 'township'),
    ('officer', ('county_officer',), 'county'),
    ('other_officer', ('county_officer',), 'other_county'),
    ('mediator', ('mediator',), 'county'),
    ('senior', ('senior_mediator', 'mediator'), 'county'),
    ('counsellor', ('counsellor',), 'county'),
    ('expert', ('expert',), 'county'),
    ('health', ('health_bureau',), 'county'),
    ('liaison_a', ('hospital_liaison', HOSPITAL_PREFIX + HOSPITAL_A), 'county'),
    ('liaison_b', ('hospital_liaison', HOSPITAL_PREFIX + HOSPITAL_B), 'county'),
    ('liaison_none', ('hospital_liaison',), 'county'),
    ('village', ('village_mediator',), 'township'),
    ('chief', ('supervisor',), 'county'),
    ('city_chief', ('supervisor',), 'city'),
    ('province_chief', ('supervisor',), 'province'),
    ('designer', ('designer',), 'province'),
]


@dataclass
class World:
    """The units, users and cases of the visibility tests."""

    units: dict[str, OrgUnit]
    users: dict[str, User] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)


def _units(session: Session) -> dict[str, OrgUnit]:
    province = create_org_unit(session, '430000', '湖南省司法厅', 'province', None)
    city = create_org_unit(session, '430900', '益阳市司法局', 'city', province)
    county = create_org_unit(session, '430922', '桃江县司法局', 'county', city)
    township = create_org_unit(session, '430922001', '桃花江镇司法所', 'township', county)
    other_county = create_org_unit(session, '430903', '赫山区司法局', 'county', city)
    return {'province': province, 'city': city, 'county': county, 'township': township,
            'other_county': other_county}


def _reception(id_number: str, name: str) -> dict[str, Any]:
    return {'person_name': name, 'id_number': id_number, 'correction_type': '缓刑', 'decision_body': '桃江县人民法院',
            'judgment_number': '（2025）湘0922刑初8号', 'crime': '盗窃罪', 'sentence': '有期徒刑六个月，缓刑一年',
            'judgment_effective_on': '2025-09-25', 'term_start': '2025-09-25', 'term_end': '2026-09-24',
            'documents_received_on': '2025-09-26', 'residence_address': '桃江县桃花江镇'}


def _dispute(hospital: str, name: str) -> dict[str, Any]:
    return {'applied_on': '2025-09-26', 'source': '诉源', 'application_form': '书面', 'applicant_side': '患方',
            'applicant_name': f'{name}之子', 'applicant_relation': '子女', 'applicant_phone': '13800000000',
            'person_name': name, 'hospital': hospital, 'department': '心内科',
            'dispute_summary': '患者术后死亡，家属要求赔偿。', 'claimed_amount': '380000.00', 'patient_died': True,
            'people_involved': 1, 'online_attention': False, 'prior_failed_talks': 3}


ACCEPT = {'consent_status': 'consented', 'court_accepted': False, 'health_bureau_accepted': False,
          'accepted_on': '2025-09-26', 'start_level': '县'}


def build_world(session: Session) -> World:
    """Create the units, people and cases (committed); the engine clock should be frozen first."""
    world = World(_units(session))
    for username, groups, unit in PEOPLE:
        user = create_user(session, username, username, PASSWORD, world.units[unit], actor=None)
        for group in groups:
            add_membership(session, user, get_group(session, group, group), world.units[unit], actor=None)
        world.users[username] = user
    for relative in DIAGRAMS:
        deploy(session, (ROOT / relative).read_bytes(), actor=None, filename=relative, accept_warnings=True)
    start = _starter(session, world)
    world.cases['adult'] = start('corrections_reception', _reception(ADULT_ID, '成年甲'), 'officer', 'township')
    world.cases['minor'] = start('corrections_reception', _reception(MINOR_ID, '少年乙'), 'officer', 'township')
    for key, hospital, name in (('dispute_a', HOSPITAL_A, '患者丙'), ('dispute_b', HOSPITAL_B, '患者丁')):
        case = start('dispute_mediation', _dispute(hospital, name), 'mediator', 'county')
        [accept] = open_tasks(session, case)
        runtime.complete_task(session, accept.id, ACCEPT, actor=world.users['mediator'],
                              scope=load_scope(session, world.users['mediator']))
        world.cases[key] = case
    world.cases['intake'] = start('demo_intake', {'person_name': '谢某某', 'id_number': '430922198001010010',
                                                  'received_on': '2025-09-26', 'summary': '邻里纠纷'},
                                  'staff', 'township')
    session.commit()
    assert world.cases['minor'].is_minor and not world.cases['adult'].is_minor
    return world


def _starter(session: Session, world: World) -> Any:
    def start(key: str, data: dict[str, Any], actor: str, unit: str) -> Case:
        case, _ = runtime.start_case(session, key, data, actor=world.users[actor], org_unit=world.units[unit])
        return case
    return start


def open_tasks(session: Session, case: Case) -> list[HumanTask]:
    """The case's open tasks, oldest first."""
    session.expire_all()
    return sorted((task for task in session.query(HumanTask).filter_by(case_id=case.id, status='open')),
                  key=lambda task: task.id)


def task_of(session: Session, case: Case, bpmn_id: str) -> HumanTask:
    """The case's one open task at ``bpmn_id``."""
    [task] = [task for task in open_tasks(session, case) if task.bpmn_id == bpmn_id]
    return task
