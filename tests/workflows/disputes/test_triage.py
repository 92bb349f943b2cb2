"""三色 triage: every row of the editable decision tables, and the three branches of the lifecycle."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.definitions import deploy
from engine.models.notifications import Notification
from tests.fixtures.engine import ROOT
from tests.workflows.disputes.conftest import Driver, Taojiang, session_data

PROBES = 'tests/workflows/disputes/bpmn'


def _decide(session: Session, org: Taojiang, decision: str, data: dict[str, Any]) -> dict[str, Any]:
    """Run the shipped decision table ``decision`` through the engine on ``data``; return the task data."""
    deploy(session, (ROOT / f'{PROBES}/probe_{decision}.bpmn').read_bytes(), actor=None, accept_warnings=True)
    _, tasks = runtime.start_case(session, f'probe_{decision}', data, actor=None, org_unit=org.county)
    session.commit()
    return runtime.task_data(session, tasks[0])


TRIAGE_BASE = {'patient_died': False, 'claimed_amount': '30000.00', 'people_involved': 1, 'online_attention': False,
               'prior_failed_talks': 0, 'source': '当事人申请'}


@pytest.mark.parametrize(('inputs', 'colour', 'reason'), [
    ({'patient_died': True}, 'red', '患者死亡'),
    ({'people_involved': 10}, 'red', '10 人以上'),
    ({'claimed_amount': '1000000.00'}, 'red', '100 万元以上'),
    ({'online_attention': True, 'prior_failed_talks': 3}, 'red', '网络舆情关注，且医患多次协商未果'),
    ({'source': '网源', 'prior_failed_talks': 3}, 'red', '网络舆情关注，且医患多次协商未果'),
    ({'claimed_amount': '100000.00'}, 'yellow', '10 万元以上'),
    ({'people_involved': 5}, 'yellow', '5 人以上'),
    ({'online_attention': True}, 'yellow', '网络舆情'),
    ({'prior_failed_talks': 2}, 'yellow', '积案'),
    ({'claimed_amount': '99999.99', 'people_involved': 4, 'prior_failed_talks': 1}, 'green', '即接即办'),
    ({'prior_failed_talks': None}, 'green', '即接即办'),
], ids=['died', 'crowd', 'huge', 'online-stuck', 'web-source-stuck', 'large', 'group', 'online', 'stuck',
        'simple', 'talks-unknown'])
def test_triage_table_rows(session: Session, taojiang: Taojiang, deployed: None, inputs: dict[str, Any],
                           colour: str, reason: str) -> None:
    result = _decide(session, taojiang, 'triage', {**TRIAGE_BASE, **inputs})
    assert result['risk_colour'] == colour
    assert reason in result['triage_reason']


SUBSIDY_BASE = {'risk_colour': 'green', 'patient_died': False, 'claimed_amount': '30000.00', 'session_total': 1,
                'appraisal_count': 0}


@pytest.mark.parametrize(('inputs', 'tier'), [
    ({'risk_colour': 'red'}, '重大'),
    ({'patient_died': True}, '重大'),
    ({'claimed_amount': '500000.00'}, '重大'),
    ({'risk_colour': 'yellow'}, '疑难'),
    ({'appraisal_count': 1}, '疑难'),
    ({'session_total': 4}, '疑难'),
    ({'claimed_amount': '100000.00'}, '疑难'),
    ({'session_total': 3, 'claimed_amount': '99999.99'}, '一般'),
    ({'session_total': 0}, '一般'),
], ids=['red', 'died', 'huge', 'yellow', 'appraised', 'many-sessions', 'large', 'plain', 'settled-at-once'])
def test_subsidy_table_rows(session: Session, taojiang: Taojiang, deployed: None, inputs: dict[str, Any],
                            tier: str) -> None:
    assert _decide(session, taojiang, 'subsidy', {**SUBSIDY_BASE, **inputs})['subsidy_tier'] == tier


def test_green_goes_straight_to_one_mediator(driver: Driver) -> None:
    case = driver.start()
    driver.accept(case)
    assert driver.open_ids(case) == ['session_county']
    assert driver.fresh(case).risk_colour == 'green'
    [event] = driver.audit(case, 'dispute.triaged')
    assert event.after['risk_colour'] == 'green' and event.after['inputs']['claimed_amount'] == '30000.00'


def test_yellow_backlog_plan_chooses_the_tier(driver: Driver) -> None:
    case = driver.start(claimed_amount='150000.00', township_code='430922001')
    driver.accept(case)
    assert driver.open_ids(case) == ['backlog_plan']
    assert driver.task(case, 'backlog_plan').candidate_group == 'senior_mediator'
    driver.complete(case, 'backlog_plan', {'lead_mediator': '胡国平', 'backlog_plan_text': '先由乡镇调委会复诊。',
                                           'start_level': '乡镇'})
    task = driver.task(case, 'session_township')
    assert task.org_unit_id == driver.org.township.id and task.candidate_group == 'township_mediator'
    assert driver.fresh(case).mediation_level == '乡镇'


RED = {'patient_died': True, 'prior_failed_talks': 3, 'source': '诉源', 'claimed_amount': '380000.00'}
RED_TASKS = {'red_lead': 'senior', 'red_counselling': 'counsellor', 'joint_committee': 'mediator',
             'joint_health': 'health', 'joint_hospital': 'hospital'}
RED_DATA = {
    'red_counselling': {'counselling_record': '家属情绪逐步平复。', 'emotional_state': '基本稳定'},
    'joint_committee': {'committee_opinion': '用药符合说明书，但观察记录不完整。'},
    'joint_health': {'health_opinion': '依据《医疗纠纷预防和处理条例》提供监管意见。'},
    'joint_hospital': {'hospital_statement': '说明抢救经过。', 'hospital_offer': '200000.00'},
}


def test_red_opens_five_parallel_tasks_in_each_bodys_queue(driver: Driver, session: Session) -> None:
    case = driver.start(**RED)
    driver.accept(case)
    assert sorted(driver.open_ids(case)) == sorted(RED_TASKS)
    for bpmn_id, username in RED_TASKS.items():
        assert bpmn_id in [task.bpmn_id for task in driver.queue(username)]
    # Same day: due at the end of the day of acceptance.
    assert {str(task.due_dt) for task in driver.open_tasks(case)} == {'2025-09-26 15:59:59+00:00'}
    notified = session.scalars(sa.select(Notification).where(Notification.kind == 'red_alert')).all()
    assert [n.user_id for n in notified] == [driver.user('chief').id]


@pytest.mark.parametrize(('outcome', 'next_task'), [('settled', 'draft_agreement'),
                                                    ('not_settled', 'session_county')])
def test_red_joint_session_outcome(driver: Driver, outcome: str, next_task: str) -> None:
    case = driver.start(**RED)
    driver.accept(case, start_level='村', confirmed_township_code='430922001')
    for bpmn_id, data in RED_DATA.items():
        driver.complete(case, bpmn_id, data)
    assert driver.open_ids(case) == ['red_lead']
    driver.complete(case, 'red_lead', {'joint_outcome': outcome, 'lead_record': '联合调解三小时。'})
    assert driver.open_ids(case) == [next_task]
    # A red case is mediated at the county whatever tier was chosen at acceptance.
    if next_task == 'session_county':
        assert driver.fresh(case).mediation_level == '县'
        driver.complete(case, 'session_county', session_data('agreement', on='2025-09-26'))
        assert driver.open_ids(case) == ['draft_agreement']
