"""Keyset paging: every item exactly once, in order, however the pages fall."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.api.conftest import Api, start_demo_case

CASES = 7


def _walk(api: Api, path: str, limit: int) -> list[list[dict[str, Any]]]:
    """Every page of ``path``, following ``next`` until it is null."""
    pages, cursor = [], None
    while True:
        separator = '&' if '?' in path else '?'
        url = f'{path}{separator}limit={limit}' + (f'&cursor={cursor}' if cursor else '')
        response = api.get(url)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert set(body) == {'items', 'next'}
        pages.append(body['items'])
        cursor = body['next']
        if cursor is None:
            return pages
        assert len(pages) <= 50, 'paging does not end'


@pytest.fixture
def started(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> list[dict[str, Any]]:
    staff = as_user('staff')
    return [start_demo_case(staff) for _ in range(CASES)]


@pytest.fixture
def dated(started: list[dict[str, Any]], session: Session) -> list[int]:
    """Give some tasks due dates (out of id order); return the ids in the order the list must show."""
    ids = [case['tasks'][0]['id'] for case in started]
    base = datetime(2025, 10, 1, tzinfo=UTC)
    dues = {ids[5]: base, ids[1]: base + timedelta(days=1), ids[3]: base + timedelta(days=1)}
    for task_id, due in dues.items():
        session.execute(sa.update(HumanTask).where(HumanTask.id == task_id).values(due_dt=due))
    session.commit()
    undated = [i for i in ids if i not in dues]
    return [ids[5], ids[1], ids[3], *undated]


@pytest.mark.parametrize('limit', [1, 2, 3, CASES - 1, CASES, CASES + 1])
def test_task_pages_have_no_duplicates_and_no_gaps(as_user: Callable[[str | None], Api], dated: list[int],
                                                   limit: int) -> None:
    pages = _walk(as_user('staff'), '/tasks?view=group', limit)
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit
    assert [t['id'] for page in pages for t in page] == dated


def test_task_paging_through_the_supervisor_view(as_user: Callable[[str | None], Api], dated: list[int]) -> None:
    pages = _walk(as_user('chief'), '/tasks?view=all', 2)
    assert [t['id'] for page in pages for t in page] == dated


def test_case_pages_newest_first(as_user: Callable[[str | None], Api], started: list[dict[str, Any]]) -> None:
    pages = _walk(as_user('staff'), '/cases?status=open', 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [c['id'] for page in pages for c in page] == sorted((c['id'] for c in started), reverse=True)


def test_history_pages_oldest_first(as_user: Callable[[str | None], Api], started: list[dict[str, Any]]) -> None:
    staff = as_user('staff')
    case_id = started[0]['id']
    everything = staff.get(f'/cases/{case_id}/history?limit=200').get_json()['items']
    assert len(everything) >= 3
    pages = _walk(staff, f'/cases/{case_id}/history', 2)
    assert [e['id'] for page in pages for e in page] == [e['id'] for e in everything]
    assert all(e['id'] < f['id'] for e, f in zip(everything, everything[1:], strict=False))


@pytest.mark.parametrize('cursor', ['2147483648', '10324284097', '9' * 18, '1' * 5000, '-1', '1e3', '１２'])
def test_a_cursor_that_is_no_id_we_could_serve_is_refused(as_user: Callable[[str | None], Api],
                                                         started: list[dict[str, Any]], cursor: str) -> None:
    # Beyond the id column's range PostgreSQL failed the comparison itself (a 500).
    response = as_user('staff').get(f'/cases?cursor={cursor}')
    assert response.status_code == 400
    assert response.get_json()['fields'] == {'cursor': ['无法识别的分页游标。']}


def test_the_largest_id_is_a_cursor(as_user: Callable[[str | None], Api], started: list[dict[str, Any]]) -> None:
    body = as_user('staff').get('/cases?cursor=2147483647&limit=200').get_json()
    assert sorted(c['id'] for c in body['items']) == sorted(c['id'] for c in started)
