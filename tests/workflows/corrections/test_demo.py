"""The corrections demo cases load through the real engine, in every stage."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.definitions import deploy
from engine.models.cases import Case
from engine.models.tasks import HumanTask
from tests.workflows.corrections.conftest import DIAGRAMS
from workflows.corrections.demo import load_demo_cases
from workflows.demo import _units, _users


def test_demo_cases_cover_every_stage(session: Session, clock: object) -> None:
    units = _units(session, lambda message: None)
    users = _users(session, units, lambda message: None)
    for path in DIAGRAMS:
        deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
    assert load_demo_cases(session, units, users) == 8
    session.commit()
    outcomes = {c.person_name: (c.status, c.outcome) for c in session.scalars(sa.select(Case))}
    assert outcomes['彭某'] == ('closed', '适宜')
    open_tasks = {t.bpmn_id for t in session.scalars(sa.select(HumanTask).where(HumanTask.status == 'open'))}
    assert {'investigate', 'receipt', 'report', 'reply', 'away', 'verify', 'ruling', 'appraisal'} <= open_tasks
    reply = session.scalars(sa.select(HumanTask).where(HumanTask.bpmn_id == 'reply')).one()
    assert reply.org_path == units['430181'].path
