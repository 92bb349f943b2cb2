"""Instance search: supervisors find every instance below their units, never one outside; every filter narrows;
keyset paging walks the whole result once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.clock import LOCAL_ZONE, FrozenClock
from engine.definitions import deploy
from engine.errors import AccessDenied, ValidationFailed
from engine.models.cases import Case
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.search import InstanceFilter, count_instances, search_instances
from tests.fixtures.directory import Org

DEMO = Path(__file__).resolve().parents[1] / 'fixtures' / 'bpmn' / 'demo_intake.bpmn'


@pytest.fixture
def cases(session: Session, org: Org, people: dict[str, User], clock: FrozenClock) -> dict[str, Case]:
    """Four demo cases: three at the county's township (one on version 2, started three days later), one elsewhere."""
    deploy(session, DEMO.read_bytes(), actor=None, accept_warnings=True)
    staff, outsider = people['staff'], people['outsider']
    made = {}
    for key, name, id_number in (('first', '谢某某', '431381198503120015'), ('second', '谢小明', None)):
        data = {'person_name': name, 'received_on': '2025-09-26', **({'id_number': id_number} if id_number else {})}
        made[key], _ = runtime.start_case(session, 'demo_intake', data, actor=staff, org_unit=org.township)
    made['elsewhere'], _ = runtime.start_case(session, 'demo_intake', {'person_name': '黄某', 'received_on':
                                                                       '2025-09-26'}, actor=outsider,
                                              org_unit=org.other_township)
    session.commit()
    clock.advance(timedelta(days=3))
    v2 = DEMO.read_text(encoding='utf-8').replace('案件登记与审核（演示）', '案件登记与审核（演示二版）')
    deploy(session, v2, actor=None, accept_warnings=True)
    made['later'], _ = runtime.start_case(session, 'demo_intake', {'person_name': '周某', 'received_on': '2025-09-29'},
                                          actor=staff, org_unit=org.township)
    session.commit()
    return made


def _found(session: Session, user: User, **criteria: str) -> set[int]:
    page = search_instances(session, load_scope(session, user), InstanceFilter.from_dict(criteria), limit=200)
    return {hit.case.id for hit in page.hits}


def test_supervisors_see_their_subtree_only(session: Session, org: Org, people: dict[str, User],
                                            cases: dict[str, Case], create_member: Callable[..., User]) -> None:
    ids = {key: case.id for key, case in cases.items()}
    province = create_member('province_chief', 'supervisor', org.province)
    other = create_member('other_chief', 'supervisor', org.other_county)
    assert _found(session, people['chief']) == {ids['first'], ids['second'], ids['later']}
    assert _found(session, province) == set(ids.values())
    assert _found(session, other) == {ids['elsewhere']}
    with pytest.raises(AccessDenied):
        search_instances(session, load_scope(session, people['staff']), InstanceFilter())
    # A filter cannot widen the scope: the other county is out of reach by its own code too.
    with pytest.raises(ValidationFailed) as refused:
        _found(session, people['chief'], org_unit=org.other_county.code)
    assert refused.value.fields == {'org_unit': ['该机构不在您的辖区内。']}
    assert _found(session, people['chief'], org_unit=org.township.code) == {ids['first'], ids['second'], ids['later']}


def test_each_filter_narrows(session: Session, people: dict[str, User], cases: dict[str, Case],
                             clock: FrozenClock) -> None:
    chief, ids = people['chief'], {key: case.id for key, case in cases.items()}
    session.execute(sa.update(Case).where(Case.id == ids['second']).values(risk_colour='red'))
    first_instance = cases['first'].instances[0]
    runtime.record_fault(session, first_instance.id, '流程执行出错：测试')
    session.commit()
    assert _found(session, chief, process='demo_intake') == {ids['first'], ids['second'], ids['later']}
    assert _found(session, chief, process='no_such_process') == set()
    assert _found(session, chief, version='2') == {ids['later']}
    assert _found(session, chief, version='1') == {ids['first'], ids['second']}
    assert _found(session, chief, stage='register') == {ids['first'], ids['second'], ids['later']}
    assert _found(session, chief, stage='review') == set()
    assert _found(session, chief, status='error') == {ids['first']}
    assert _found(session, chief, status='running') == {ids['second'], ids['later']}
    assert _found(session, chief, has_error='1') == {ids['first']}
    assert _found(session, chief, has_error='0') == {ids['second'], ids['later']}
    assert _found(session, chief, risk_colour='red') == {ids['second']}
    assert _found(session, chief, text='谢') == {ids['first'], ids['second']}
    assert _found(session, chief, text='431381198503120015') == {ids['first']}
    assert _found(session, chief, text=cases['later'].number[:-1]) >= {ids['later']}
    assert _found(session, chief, text=cases['later'].number) == {ids['later']}
    day_one = date(2025, 9, 26)
    assert _found(session, chief, started_from=str(day_one), started_to=str(day_one)) == {ids['first'], ids['second']}
    assert _found(session, chief, started_from=str(clock.now().date())) == {ids['later']}
    # The register task is due 365 days after it arrived: 2026-09-28 (moved off a Saturday), and 2026-09-29.
    dues = {task.case_id: task.due_dt.astimezone(LOCAL_ZONE).date() for task in session.scalars(
        sa.select(HumanTask).where(HumanTask.status == 'open'))}
    first_due, later_due = dues[ids['first']], dues[ids['later']]
    assert later_due > first_due and dues[ids['second']] == first_due
    assert _found(session, chief, due_from=str(later_due)) == {ids['later']}
    assert _found(session, chief, due_to=str(first_due)) == {ids['first'], ids['second']}
    assert _found(session, chief, due_from=str(first_due - timedelta(days=30)),
                  due_to=str(first_due - timedelta(days=1))) == set()


@pytest.mark.parametrize('criteria, field', [
    ({'status': 'broken'}, 'status'), ({'version': 'v2'}, 'version'), ({'version': '0'}, 'version'),
    ({'has_error': 'maybe'}, 'has_error'), ({'risk_colour': 'blue'}, 'risk_colour'),
    ({'started_from': '2025-13-01'}, 'started_from'), ({'due_from': '2025-10-02', 'due_to': '2025-10-01'}, 'due_to'),
    ({'text': 'x' * 65}, 'text'),
])
def test_bad_filters_name_their_field(criteria: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        InstanceFilter.from_dict(criteria)
    assert set(refused.value.fields) == {field}


def test_filter_round_trips_through_text() -> None:
    raw = {'process': 'demo_intake', 'version': '3', 'status': 'error', 'has_error': '1', 'started_from': '2025-09-01',
           'text': '谢'}
    assert InstanceFilter.from_dict(InstanceFilter.from_dict(raw).to_dict()) == InstanceFilter.from_dict(raw)
    assert InstanceFilter.from_dict(raw).to_dict() == raw


def test_keyset_paging_walks_every_hit_once(session: Session, people: dict[str, User], cases: dict[str, Case]) -> None:
    scope = load_scope(session, people['chief'])
    seen, cursor = [], None
    while True:
        page = search_instances(session, scope, InstanceFilter(), before=cursor, limit=2)
        seen += [hit.instance.id for hit in page.hits]
        assert all(hit.open_tasks and hit.open_tasks[0].bpmn_id == 'register' for hit in page.hits)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 3
    assert count_instances(session, scope, InstanceFilter()) == 3
    assert count_instances(session, scope, InstanceFilter(), cap=1) == 2  # "1+": stops counting past the cap


def test_dates_are_local_days(session: Session, people: dict[str, User], cases: dict[str, Case]) -> None:
    # 2025-09-26 09:00 Beijing time is 01:00 UTC: the local day, not the UTC one, decides.
    found = _found(session, people['chief'], started_to=str(date(2025, 9, 26)))
    assert found == {cases['first'].id, cases['second'].id}
