"""What the incoming-event tests share: the shipped corrections and dispute diagrams deployed, an open
corrections case in 桃江县, and machine clients of 桃江县 and of 赫山区 (the neighbouring county)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.definitions import deploy
from engine.events import create_client
from engine.models.cases import Case
from engine.models.events import MachineClient
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from workflows.shared.id_numbers import check_digit

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = [*sorted((ROOT / 'bpmn' / 'corrections').glob('*.bpmn')),
            ROOT / 'bpmn/disputes/triage.dmn', ROOT / 'bpmn/disputes/subsidy.dmn',
            ROOT / 'bpmn/disputes/dispute_mediation.bpmn']
#: the offender of the open corrections case (valid check digit)
OFFENDER_ID = '431381198503120015'
#: somebody no case knows
STRANGER_ID = '430922199001010015'
PATIENT_ID = '43092219580612003' + check_digit('43092219580612003')
HOSPITAL = '桃江县人民医院'


def reception_data(**overrides: Any) -> dict[str, Any]:
    """Start data of a 缓刑 case whose judgment took effect on 2025-09-25."""
    data: dict[str, Any] = {
        'person_name': '李某', 'id_number': OFFENDER_ID, 'correction_type': '缓刑', 'decision_body': '桃江县人民法院',
        'judgment_number': '（2025）湘0922刑初88号', 'crime': '危险驾驶罪', 'sentence': '拘役四个月，缓刑六个月',
        'judgment_effective_on': '2025-09-25', 'term_start': '2025-09-25', 'term_end': '2026-09-24',
        'documents_received_on': '2025-09-26', 'residence_address': '桃江县桃花江镇'}
    data.update(overrides)
    return data


def alarm(**overrides: Any) -> dict[str, Any]:
    """An alarm payload for the offender: 越界 at 10:15 on 2025-10-10, Beijing time."""
    return {'id_number': OFFENDER_ID, 'alarm_type': '越界', 'occurred_at': '2025-10-10T10:15:00+08:00',
            'location': '桃江县与安化县交界', **overrides}


def referral(**overrides: Any) -> dict[str, Any]:
    """A 警源 referral of a dispute with 桃江县人民医院."""
    return {'source': '警源', 'reference': '桃公移〔2025〕7号', 'applied_on': '2025-09-26', 'applicant_name': '王某',
            'applicant_relation': '子女', 'person_name': '王某某', 'id_number': PATIENT_ID, 'hospital': HOSPITAL,
            'dispute_summary': '患者术后死亡，家属在医院聚集，派出所移交调解。', 'claimed_amount': '300000.00',
            'patient_died': True, 'people_involved': 6, **overrides}


@dataclass
class EventWorld:
    """The deployed diagrams, the open corrections case and the clients."""

    case: Case
    client: MachineClient
    other_client: MachineClient
    tokens: dict[str, str]
    officer: User


def build_world(session: Session, org: Org, create_member: Callable[..., User]) -> EventWorld:
    """Deploy the diagrams, open the offender's case at 桃江县 and create both counties' clients (committed)."""
    for path in DIAGRAMS:
        deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
    session.commit()
    officer = create_member('events_officer', 'county_officer', org.county)
    case, _ = runtime.start_case(session, 'corrections_reception', reception_data(), actor=officer,
                                 org_unit=org.county, scope=load_scope(session, officer))
    client, token = create_client(session, '桃江县电子定位平台', org.county, ['alarm', 'referral'], actor=None)
    other, other_token = create_client(session, '赫山区电子定位平台', org.other_county, ['alarm', 'referral'],
                                       actor=None)
    session.commit()
    return EventWorld(case, client, other, {'tj': token, 'hs': other_token}, officer)


def open_tasks(session: Session, case_id: int, bpmn_id: str) -> list[HumanTask]:
    """The open tasks ``bpmn_id`` of a case."""
    session.expire_all()
    return list(session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case_id, HumanTask.bpmn_id == bpmn_id,
                                                           HumanTask.status == 'open')))


def dispute_cases(session: Session) -> list[Case]:
    """Every dispute case, oldest first."""
    session.expire_all()
    return list(session.scalars(sa.select(Case).where(Case.kind == 'dispute_mediation').order_by(Case.id)))
