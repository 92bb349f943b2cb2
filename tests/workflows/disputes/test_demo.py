"""The demo loader puts a dispute case in every stage, through the real engine."""

from __future__ import annotations

import sqlalchemy as sa

from engine.models.cases import Case
from tests.workflows.disputes.conftest import Driver
from workflows.disputes.demo import load_demo_cases

USERS = {'tj_mediator': 'mediator', 'tj_senior': 'senior', 'tj_counsellor': 'counsellor', 'tj_expert': 'expert',
         'tj_health': 'health', 'tj_hospital': 'hospital', 'tj_chief': 'chief', 'tj_village': 'village',
         'tj_township': 'township'}


def test_demo_cases_cover_every_stage(driver: Driver) -> None:
    units = {'430922': driver.org.county, '430922001': driver.org.township}
    users = {demo: driver.user(name) for demo, name in USERS.items()}
    assert load_demo_cases(driver.session, units, users) == 16
    driver.session.commit()
    cases = driver.session.scalars(sa.select(Case).order_by(Case.id)).all()
    stages = [(case.status, sorted(driver.open_ids(case))) for case in cases]
    assert stages == [
        ('open', ['accept_review']),
        ('closed', []),
        ('open', ['session_county']),
        ('open', ['backlog_plan']),
        ('open', ['joint_committee', 'joint_health', 'joint_hospital', 'red_lead']),
        ('open', ['session_village']),
        ('open', ['session_township']),
        ('open', ['appraisal']),
        ('open', ['session_county']),
        ('open', ['confirmation']),
        ('open', ['court_ruling']),
        ('open', ['followup']),
        ('open', ['health_rectification']),
        ('open', ['close_review']),
        ('closed', []),
        ('closed', []),
    ]
    assert [case.outcome for case in cases if case.status == 'closed'] == ['不予受理', '调解成功', '终止']
    assert {case.risk_colour for case in cases} == {None, 'green', 'yellow', 'red'}
