"""``GET /api/v1/cases`` filters: number, name, id_number, kind, status, org_unit, opened_from/opened_to."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.models.cases import Case
from engine.models.users import User
from tests.api.conftest import START, Api, assert_error, start_demo_case
from tests.fixtures.directory import Org

WANG_ID = '430903199002020021'


@pytest.fixture
def cases(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object,
          session: Session) -> dict[str, dict[str, Any]]:
    """谢 at the township on 2025-09-26, 王 there on 09-29 at 07:30 (then closed), 谢某 at the other county on
    09-30, Beijing time; the opening times are set afterwards, so no clock moves under the bearer tokens."""
    xie = start_demo_case(as_user('staff'))
    wang = start_demo_case(as_user('staff'), {**START, 'person_name': '王小明', 'id_number': WANG_ID})
    other = start_demo_case(as_user('outsider'), {**START, 'person_name': '谢某'})
    opened = {xie['id']: datetime(2025, 9, 26, 1, 0, tzinfo=UTC),
              wang['id']: datetime(2025, 9, 28, 23, 30, tzinfo=UTC),  # 2025-09-29 07:30 in Beijing
              other['id']: datetime(2025, 9, 30, 1, 0, tzinfo=UTC)}
    for case_id, when in opened.items():
        case = session.get(Case, case_id)
        assert case is not None
        case.created_dt = when
    closing = session.get(Case, wang['id'])
    assert closing is not None
    closing.close(datetime(2025, 9, 30, tzinfo=UTC))
    session.commit()
    return {'xie': xie, 'wang': wang, 'other': other}


def ids(api: Api, query: str) -> list[int]:
    response = api.get(f'/cases?{query}')
    assert response.status_code == 200, response.get_json()
    return [case['id'] for case in response.get_json()['items']]


def test_number_whole_or_its_beginning(as_user: Callable[[str | None], Api], cases: dict[str, dict[str, Any]]) -> None:
    staff, xie, wang = as_user('staff'), cases['xie'], cases['wang']
    assert ids(staff, f'number={xie["number"]}') == [xie['id']]
    assert ids(staff, f'number={xie["number"][:3].lower()}') == [wang['id'], xie['id']]
    assert ids(staff, 'number=%25') == []  # no wildcard


def test_name_prefix(as_user: Callable[[str | None], Api], cases: dict[str, dict[str, Any]]) -> None:
    assert ids(as_user('staff'), 'name=谢') == [cases['xie']['id']]
    assert ids(as_user('staff'), 'name=某') == []


def test_id_number_matches_only_in_full(as_user: Callable[[str | None], Api], cases: dict[str, dict[str, Any]]) -> None:
    staff = as_user('staff')
    assert ids(staff, f'id_number={WANG_ID}') == [cases['wang']['id']]
    assert ids(staff, f'id_number={WANG_ID[:10]}') == []
    [listed] = staff.get(f'/cases?id_number={WANG_ID}').get_json()['items']
    assert listed['id_number'] == '430903********0021'  # still masked in the list


def test_kind_and_status(as_user: Callable[[str | None], Api], cases: dict[str, dict[str, Any]]) -> None:
    staff = as_user('staff')
    assert ids(staff, 'kind=demo_intake&status=closed') == [cases['wang']['id']]
    assert ids(staff, 'kind=demo_intake&status=open') == [cases['xie']['id']]


def test_org_unit_covers_its_subtree(as_user: Callable[[str | None], Api], cases: dict[str, dict[str, Any]],
                                     org: Org) -> None:
    chief = as_user('chief')  # the county's supervisor
    assert ids(chief, f'org_unit={org.county.code}') == [cases['wang']['id'], cases['xie']['id']]
    assert ids(chief, f'org_unit={org.township.code}&name=王') == [cases['wang']['id']]


def test_org_unit_outside_the_subtree_is_a_400(as_user: Callable[[str | None], Api],
                                               cases: dict[str, dict[str, Any]], org: Org) -> None:
    for code in (org.other_township.code, 'no-such-unit'):
        body = assert_error(as_user('staff').get(f'/cases?org_unit={code}'), 400, 'invalid')
        assert list(body['fields']) == ['org_unit']


def test_opened_date_range_in_beijing_days(as_user: Callable[[str | None], Api],
                                           cases: dict[str, dict[str, Any]], org: Org,
                                           create_member: Callable[..., User]) -> None:
    create_member('city_chief', 'supervisor', org.city)
    chief = as_user('city_chief')
    xie, wang, other = cases['xie']['id'], cases['wang']['id'], cases['other']['id']
    assert ids(chief, 'opened_from=2025-09-26&opened_to=2025-09-26') == [xie]
    assert ids(chief, 'opened_from=2025-09-27') == [other, wang]
    assert ids(chief, 'opened_to=2025-09-29') == [wang, xie]
    assert ids(chief, 'opened_to=2025-09-28') == [xie]  # 王 was opened on the 28th in UTC, the 29th in Beijing
    assert ids(chief, 'opened_from=2025-09-29&opened_to=2025-09-29') == [wang]
    assert ids(chief, 'opened_from=&opened_to=') == [other, wang, xie]  # empty filters filter nothing


@pytest.mark.parametrize(('query', 'field'), [
    ('opened_from=2025-02-30', 'opened_from'),
    ('opened_to=yesterday', 'opened_to'),
    ('opened_from=2025-09-30&opened_to=2025-09-01', 'opened_to'),
    ('status=archived', 'status'),
    ('number=' + 'X' * 40, 'number'),
])
def test_invalid_filters_are_400_with_the_field(as_user: Callable[[str | None], Api],
                                                cases: dict[str, dict[str, Any]], query: str, field: str) -> None:
    body = assert_error(as_user('staff').get(f'/cases?{query}'), 400, 'invalid')
    assert field in body['fields']


def test_filters_combine_with_keyset_paging(as_user: Callable[[str | None], Api], cases: dict[str, dict[str, Any]],
                                            org: Org) -> None:
    chief = as_user('chief')
    first = chief.get('/cases?name=&kind=demo_intake&limit=1').get_json()
    assert [c['id'] for c in first['items']] == [cases['wang']['id']] and first['next']
    second = chief.get(f'/cases?kind=demo_intake&limit=1&cursor={first["next"]}').get_json()
    assert [c['id'] for c in second['items']] == [cases['xie']['id']] and second['next'] is None


def test_the_openapi_document_describes_the_filters(client: FlaskClient) -> None:
    operation = client.get('/api/v1/openapi.json').get_json()['paths']['/api/v1/cases']['get']
    parameters = {p['name']: p for p in operation['parameters'] if p['in'] == 'query'}
    assert {'kind', 'status', 'q', 'number', 'name', 'id_number', 'org_unit', 'opened_from', 'opened_to',
            'cursor', 'limit'} <= set(parameters)
    assert parameters['opened_from']['schema']['format'] == 'date'
    assert all(parameters[name].get('description') for name in ('number', 'name', 'id_number', 'org_unit',
                                                                 'opened_from', 'opened_to'))
