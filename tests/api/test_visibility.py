"""The visibility rules through the REST API: case list, case detail, to-do list (tests/engine/test_visibility.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from tests.api.conftest import Api
from tests.engine.visibility_support import World, build_world, task_of


@pytest.fixture
def world(session: Session, clock: FrozenClock) -> World:
    return build_world(session)


def case_numbers(api: Api) -> set[str]:
    response = api.get('/cases?limit=100')
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item['number'] for item in response.get_json()['items']}


def test_health_bureau_lists_disputes_only(world: World, as_user: Callable[[str | None], Api]) -> None:
    numbers = case_numbers(as_user('health'))
    assert {world.cases['dispute_a'].number, world.cases['dispute_b'].number} <= numbers
    assert world.cases['adult'].number not in numbers
    assert as_user('health').get(f'/cases/{world.cases["adult"].id}').status_code == 404
    assert as_user('officer').get(f'/cases/{world.cases["adult"].id}').status_code == 200


def test_minor_case_invisible_to_city_and_province(world: World, as_user: Callable[[str | None], Api]) -> None:
    minor = world.cases['minor']
    for username in ('city_chief', 'province_chief'):
        assert minor.number not in case_numbers(as_user(username))
        assert as_user(username).get(f'/cases/{minor.id}').status_code == 404
    assert minor.number in case_numbers(as_user('chief'))
    assert as_user('chief').get(f'/cases/{minor.id}').status_code == 200


def test_hospital_liaison_lists_its_hospitals_task_and_case_only(
        session: Session, world: World, as_user: Callable[[str | None], Api]) -> None:
    task_a = task_of(session, world.cases['dispute_a'], 'joint_hospital')
    task_b = task_of(session, world.cases['dispute_b'], 'joint_hospital')
    liaison_a = as_user('liaison_a')
    listed = {item['id'] for item in liaison_a.get('/tasks?view=all').get_json()['items']}
    assert task_a.id in listed and task_b.id not in listed
    assert liaison_a.post(f'/tasks/{task_b.id}/claim').status_code == 404
    assert liaison_a.get(f'/cases/{world.cases["dispute_b"].id}').status_code == 404
    assert liaison_a.get(f'/cases/{world.cases["dispute_a"].id}').status_code == 200
