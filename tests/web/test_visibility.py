"""The visibility rules through the pages: case list, case page, to-do list (see tests/engine/test_visibility.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from tests.engine.visibility_support import World, build_world, task_of


@pytest.fixture
def world(session: Session, clock: FrozenClock) -> World:
    return build_world(session)


def test_case_page_of_a_minor_is_a_404_above_the_county(world: World,
                                                        client_for: Callable[[str], FlaskClient]) -> None:
    minor = world.cases['minor']
    assert client_for('city_chief').get(f'/cases/{minor.id}').status_code == 404
    assert client_for('province_chief').get(f'/cases/{minor.id}').status_code == 404
    assert client_for('officer').get(f'/cases/{minor.id}').status_code == 200
    assert client_for('staff').get(f'/cases/{minor.id}').status_code == 200


def test_case_list_of_the_health_bureau_holds_no_corrections_case(
        world: World, client_for: Callable[[str], FlaskClient]) -> None:
    body = client_for('health').get('/cases').get_data(as_text=True)
    assert world.cases['dispute_a'].number in body
    assert world.cases['adult'].number not in body and world.cases['minor'].number not in body
    officer = client_for('officer').get('/cases').get_data(as_text=True)
    assert world.cases['adult'].number in officer and world.cases['dispute_a'].number not in officer


def test_todo_list_shows_a_liaison_its_own_hospitals_task(session: Session, world: World,
                                                         client_for: Callable[[str], FlaskClient]) -> None:
    task_a = task_of(session, world.cases['dispute_a'], 'joint_hospital')
    task_b = task_of(session, world.cases['dispute_b'], 'joint_hospital')
    client = client_for('liaison_a')
    body = client.get('/tasks?view=all').get_data(as_text=True)
    assert f'/tasks/{task_a.id}"' in body and f'/tasks/{task_b.id}"' not in body
    assert client.get(f'/tasks/{task_b.id}').status_code == 404


def test_todo_list_of_a_city_supervisor_holds_no_minors_task(session: Session, world: World,
                                                            client_for: Callable[[str], FlaskClient]) -> None:
    minor = task_of(session, world.cases['minor'], 'receipt')
    adult = task_of(session, world.cases['adult'], 'receipt')
    body = client_for('city_chief').get('/tasks?view=all').get_data(as_text=True)
    assert f'/tasks/{adult.id}"' in body and f'/tasks/{minor.id}"' not in body
    assert client_for('city_chief').get(f'/tasks/{minor.id}').status_code == 404
