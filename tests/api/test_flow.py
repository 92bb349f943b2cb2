"""The demo lifecycle end to end through the API: token, start, to-do views, claim, complete, close."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.models.cases import Case
from engine.models.users import User
from tests.api.conftest import REGISTER, REVIEW_OK, START, Api, start_demo_case
from tests.fixtures.directory import Org

TASK_KEYS = {'id', 'name', 'title', 'case_id', 'case_number', 'candidate_group', 'assignee', 'due_at', 'status',
             'created_at', 'process_key', 'org_unit', 'priority', 'risk_colour', 'owner', 'delegation_state',
             'is_escalated', 'completed_at'}


def test_happy_path_from_start_to_closed_case(as_user: Callable[[str | None], Api], people: dict[str, User],
                                              demo: object, session: Session) -> None:
    staff, officer = as_user('staff'), as_user('officer')
    case = start_demo_case(staff)
    assert case['number'].startswith('YS-') and len(case['public_code']) >= 16
    assert case['status'] == 'open' and case['kind'] == 'demo_intake'
    assert case['org_unit'] == {'code': '430922101', 'name': '桃花江镇司法所'}
    assert case['id_number'] == '430922********0010'  # masked outside the single-case view
    [register] = case['tasks']
    assert set(register) == TASK_KEYS
    assert register['name'] == 'register' and register['candidate_group'] == 'township_staff'
    assert register['case_number'] == case['number'] and register['assignee'] is None

    group = staff.get('/tasks?view=group').get_json()
    assert [t['id'] for t in group['items']] == [register['id']] and group['next'] is None
    assert staff.get('/tasks?view=mine').get_json()['items'] == []

    claimed = staff.post(f'/tasks/{register["id"]}/claim')
    assert claimed.status_code == 200 and claimed.get_json()['assignee'] == people['staff'].id
    assert [t['id'] for t in staff.get('/tasks').get_json()['items']] == [register['id']]  # mine by default
    assert staff.get('/tasks?view=group').get_json()['items'] == []

    done = staff.post(f'/tasks/{register["id"]}/complete', {'data': REGISTER})
    assert done.status_code == 200, done.get_json()
    body = done.get_json()
    assert body['status'] == 'completed' and set(body) == TASK_KEYS | {'next_tasks'}
    [review] = body['next_tasks']
    assert review['name'] == 'review' and review['candidate_group'] == 'county_officer'

    assert [t['id'] for t in officer.get('/tasks?view=group').get_json()['items']] == [review['id']]
    final = officer.post(f'/tasks/{review["id"]}/complete', {'data': REVIEW_OK})
    assert final.status_code == 200 and final.get_json()['next_tasks'] == []

    detail = staff.get(f'/cases/{case["id"]}').get_json()
    assert detail['status'] == 'closed' and detail['closed_at'] and detail['tasks'] == []
    assert detail['instances'][0]['status'] == 'completed'
    assert session.get(Case, case['id']).status == 'closed'


def test_rejected_review_sends_the_case_back(as_user: Callable[[str | None], Api], people: dict[str, User],
                                              demo: object) -> None:
    staff, officer = as_user('staff'), as_user('officer')
    case = start_demo_case(staff)
    review = staff.post(f'/tasks/{case["tasks"][0]["id"]}/complete', {'data': REGISTER}).get_json()['next_tasks'][0]
    back = officer.post(f'/tasks/{review["id"]}/complete', {'data': {'approved': False, 'review_opinion': '补充材料'}})
    assert [t['name'] for t in back.get_json()['next_tasks']] == ['register']


def test_case_detail_masks_the_id_number_unless_revealed_and_shows_instances_and_open_tasks(
        as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> None:
    staff = as_user('staff')
    case = start_demo_case(staff)
    detail = staff.get(f'/cases/{case["id"]}').get_json()
    assert detail['id_number'] == '430922********0010'  # the full number only with ?reveal=1 (audited)
    assert staff.get(f'/cases/{case["id"]}?reveal=1').get_json()['id_number'] == START['id_number']
    assert detail['person_name'] == '谢某某' and detail['start_event_on'] == '2025-09-26'
    [instance] = detail['instances']
    assert instance['key'] == 'demo_intake' and instance['version'] == 1 and instance['is_lifecycle'] is True
    assert [t['name'] for t in detail['tasks']] == ['register']


def test_case_list_masks_id_numbers_and_filters(as_user: Callable[[str | None], Api], people: dict[str, User],
                                                demo: object) -> None:
    staff = as_user('staff')
    first = start_demo_case(staff)
    second = start_demo_case(staff, {**START, 'person_name': '王小明', 'id_number': '430903199002020021'})
    listing = staff.get('/cases').get_json()
    assert [c['id'] for c in listing['items']] == [second['id'], first['id']]
    assert all('*' in c['id_number'] for c in listing['items'])
    assert 'tasks' not in listing['items'][0] and 'instances' not in listing['items'][0]

    def ids(query: str) -> list[int]:
        response = staff.get(f'/cases?{query}')
        assert response.status_code == 200, response.get_json()
        return [c['id'] for c in response.get_json()['items']]

    assert ids('q=王') == [second['id']]
    assert ids('q=430903199002020021') == [second['id']]
    assert ids('q=4309031990') == []  # an ID number matches only in full
    assert ids(f'q={first["number"]}') == [first['id']]
    assert ids('q=%25') == []  # a LIKE wildcard is matched literally
    assert ids('kind=demo_intake&status=open') == [second['id'], first['id']]
    assert ids('status=closed') == [] and ids('kind=other') == []


def test_supervisor_sees_cases_of_the_county_but_not_the_other(
        as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> None:
    case = start_demo_case(as_user('staff'))
    outsider_case = start_demo_case(as_user('outsider'))
    chief = as_user('chief')
    assert [c['id'] for c in chief.get('/cases').get_json()['items']] == [case['id']]
    assert chief.get(f'/cases/{outsider_case["id"]}').status_code == 404


def test_start_at_an_explicit_org_unit(as_user: Callable[[str | None], Api], people: dict[str, User],
                                       demo: object, org: Org) -> None:
    case = start_demo_case(as_user('chief'), org_unit=org.township.code)
    assert case['org_unit']['code'] == org.township.code
    assert case['tasks'][0]['candidate_group'] == 'township_staff'


def test_task_detail_lists_form_fields_and_current_data(as_user: Callable[[str | None], Api],
                                                        people: dict[str, User], demo: object) -> None:
    staff, officer = as_user('staff'), as_user('officer')
    case = start_demo_case(staff)
    register = staff.get(f'/tasks/{case["tasks"][0]["id"]}').get_json()
    assert register['name'] == 'register' and register['form']['key'] is None
    fields = {f['id']: f for f in register['form']['fields']}
    assert list(fields) == ['visit_count', 'risk_level', 'findings']
    assert fields['visit_count']['type'] == 'long' and fields['visit_count']['required'] is True
    assert fields['visit_count']['constraints']['minimum'] == 0
    assert fields['visit_count']['constraints']['maximum'] == 50
    assert [o['id'] for o in fields['risk_level']['options']] == ['low', 'medium', 'high']
    assert fields['findings']['constraints']['min_length'] == 4
    assert register['data'] == {'visit_count': None, 'risk_level': None, 'findings': None}

    review_id = staff.post(f'/tasks/{register["id"]}/complete', {'data': REGISTER}).get_json()['next_tasks'][0]['id']
    review = officer.get(f'/tasks/{review_id}').get_json()
    assert [f['id'] for f in review['form']['fields']] == ['approved', 'review_opinion']
    assert review['data'] == {'approved': None, 'review_opinion': None}
    # The start data is there too, but only the form's fields are shown.
    assert 'person_name' not in review['data']


def test_history_lists_the_case_events_oldest_first(as_user: Callable[[str | None], Api],
                                                    people: dict[str, User], demo: object) -> None:
    staff = as_user('staff')
    case = start_demo_case(staff)
    task_id = case['tasks'][0]['id']
    staff.post(f'/tasks/{task_id}/claim')
    staff.post(f'/tasks/{task_id}/complete', {'data': REGISTER})
    events = staff.get(f'/cases/{case["id"]}/history').get_json()['items']
    kinds = [e['kind'] for e in events]
    assert kinds[:2] == ['case.started', 'instance.started']
    assert kinds.index('task.claimed') < kinds.index('task.completed')
    assert [e['id'] for e in events] == sorted(e['id'] for e in events)
    completed = next(e for e in events if e['kind'] == 'task.completed')
    assert completed['actor'] == 'staff' and completed['actor_id'] == people['staff'].id
    assert completed['after'] == {'visit_count': 2, 'risk_level': 'high', 'findings': '走访属实'}
    assert set(completed) == {'id', 'at', 'actor', 'actor_id', 'kind', 'before', 'after', 'note'}


def test_assign_and_unclaim(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object,
                            session: Session) -> None:
    case = start_demo_case(as_user('staff'))
    task_id = case['tasks'][0]['id']
    chief, staff2 = as_user('chief'), as_user('staff2')
    assigned = chief.post(f'/tasks/{task_id}/assign', {'assignee': people['staff2'].id})
    assert assigned.status_code == 200 and assigned.get_json()['assignee'] == people['staff2'].id
    assert [t['id'] for t in staff2.get('/tasks?view=mine').get_json()['items']] == [task_id]
    back = staff2.post(f'/tasks/{task_id}/unclaim')
    assert back.status_code == 200 and back.get_json()['assignee'] is None
    count = session.scalar(sa.select(sa.func.count()).select_from(Case))
    assert count == 1


def test_a_start_retried_under_its_idempotency_key_opens_one_case(as_user: Callable[[str | None], Api],
                                                                  people: dict[str, User], demo: object,
                                                                  session: Session) -> None:
    staff = as_user('staff')
    body = {'process_key': 'demo_intake', 'data': START}
    first = staff.post('/cases', body, headers={'Idempotency-Key': 'retry-7f3a'})
    again = staff.post('/cases', body, headers={'Idempotency-Key': 'retry-7f3a'})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers['Idempotent-Replayed'] == 'true'
    assert 'Idempotent-Replayed' not in first.headers
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 1
    # the same key for another person's case is refused, not answered with the first case
    other = staff.post('/cases', {**body, 'data': {**START, 'person_name': '钱某某'}},
                       headers={'Idempotency-Key': 'retry-7f3a'})
    assert other.status_code == 409 and other.get_json()['error'] == 'conflict'
    # a new key is a new start
    assert staff.post('/cases', body, headers={'Idempotency-Key': 'retry-8b4c'}).status_code == 201
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 2


def test_a_malformed_idempotency_key_is_a_400_that_starts_nothing(as_user: Callable[[str | None], Api],
                                                                  people: dict[str, User], demo: object,
                                                                  session: Session) -> None:
    response = as_user('staff').post('/cases', {'process_key': 'demo_intake', 'data': START},
                                     headers={'Idempotency-Key': 'x' * 129})
    assert response.status_code == 400 and 'Idempotency-Key' in response.get_json()['fields']
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0
