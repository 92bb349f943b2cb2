"""The same command sent twice — a double-click, a client's retry, two colleagues at once — has one effect.

PostgreSQL only. Concurrent sends run in two threads, each with its own client (its own request session
and connection), released together by a barrier; the first commit is then held until the second command
is seen waiting on its lock, so the two transactions provably overlap. Exactly one wins; the other gets
409 and changes nothing; the instance advances once and the audit chain verifies.

Starting a case is made safe to repeat by a key: the API's ``Idempotency-Key`` header, the start form's
hidden nonce. Two starts under one key at once open one case, and both callers get that case.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from engine.access import load_scope
from engine.audit import verify_chain
from engine.directory import issue_token
from engine.errors import Conflict
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.runtime import complete_task
from engine.tasks import claim_task
from tests.faults.conftest import REGISTER, START, OpenTask, holding_first_commit, snapshot
from tests.fixtures.web import csrf_token

pytestmark = pytest.mark.postgres

Send = Callable[[], TestResponse]


def bearer(session: Session, user: User) -> dict[str, str]:
    """Authorization headers for ``user`` (a token issued through the engine, committed)."""
    token = issue_token(session, user)
    session.commit()
    return {'Authorization': f'Bearer {token}'}


def at_once(*sends: Send) -> list[TestResponse]:
    """Run every send in its own thread, all released by one barrier; return the responses in order."""
    barrier = threading.Barrier(len(sends))
    results: list[TestResponse | BaseException | None] = [None] * len(sends)

    def run(index: int, send: Send) -> None:
        barrier.wait(timeout=10)
        try:
            results[index] = send()
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test's thread below)
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, send)) for i, send in enumerate(sends)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert all(isinstance(r, TestResponse) for r in results), 'a send did not finish'
    return [r for r in results if isinstance(r, TestResponse)]


def post_json(app: Flask, path: str, headers: dict[str, str], body: dict[str, Any]) -> Send:
    """A send of ``body`` to ``path`` through a client of its own."""
    client = app.test_client()
    return lambda: client.post(f'/api/v1{path}', headers=headers, json=body)


def one_winner(responses: list[TestResponse], success: int = 200) -> TestResponse:
    """Assert exactly one response is ``success`` and the other a 409 conflict; return the loser."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == sorted([success, 409]), [r.get_data(as_text=True)[:300] for r in responses]
    (loser,) = [r for r in responses if r.status_code == 409]
    body = loser.get_json()
    assert body['error'] == 'conflict' and body['message']
    return loser


def test_a_double_click_on_complete_through_the_api_completes_once(app: Flask, session: Session, db_engine: Engine,
                                                                   staff: dict[str, User],
                                                                   open_task: OpenTask) -> None:
    headers = bearer(session, staff['staff'])
    before = snapshot(db_engine, open_task)
    path = f'/tasks/{open_task.task_id}/complete'
    with holding_first_commit(db_engine) as hold:
        responses = at_once(post_json(app, path, headers, {'data': REGISTER}),
                            post_json(app, path, headers, {'data': REGISTER}))
    assert hold.saw_waiter, 'the second request never waited behind the first: no race happened'
    loser = one_winner(responses)
    assert loser.get_json()['message'] == '该任务已办理或已取消。'
    (winner,) = [r for r in responses if r.status_code == 200]
    assert [t['name'] for t in winner.get_json()['next_tasks']] == ['review']
    after = snapshot(db_engine, open_task)
    assert after.task_status == 'completed' and after.completed_by_id == staff['staff'].id
    assert after.open_tasks == ('review',)  # one set of next tasks
    assert after.revision == before.revision + 1  # the instance advanced once
    assert after.events.get('task.completed') == 1 and 'instance.fault' not in after.events
    assert after.chain_ok and after.chain_checked == sum(after.events.values())


def test_two_colleagues_completing_at_once_in_the_engine_one_wins(session: Session, db_engine: Engine,
                                                                  staff: dict[str, User],
                                                                  open_task: OpenTask) -> None:
    before = snapshot(db_engine, open_task)
    outcomes: dict[str, str] = {}

    def complete_as(username: str) -> Send:
        def send() -> Any:
            with Session(db_engine) as own:
                actor = own.scalars(sa.select(User).where(User.username == username)).one()
                try:
                    complete_task(own, open_task.task_id, REGISTER, actor=actor, scope=load_scope(own, actor))
                    own.commit()
                    outcomes[username] = 'completed'
                except Conflict as exc:
                    own.rollback()
                    outcomes[username] = exc.message
        return send

    with holding_first_commit(db_engine) as hold:
        threads = [threading.Thread(target=complete_as(name)) for name in ('staff', 'staff2')]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert hold.saw_waiter
    assert sorted(outcomes.values()) == ['completed', '该任务已办理或已取消。']
    winner = next(name for name, outcome in outcomes.items() if outcome == 'completed')
    after = snapshot(db_engine, open_task)
    assert after.completed_by_id == staff[winner].id and after.open_tasks == ('review',)
    assert after.revision == before.revision + 1
    assert after.events.get('task.completed') == 1 and after.chain_ok


def test_two_claims_at_once_one_wins(app: Flask, session: Session, db_engine: Engine, staff: dict[str, User],
                                     open_task: OpenTask) -> None:
    first, second = bearer(session, staff['staff']), bearer(session, staff['staff2'])
    before = snapshot(db_engine, open_task)
    path = f'/tasks/{open_task.task_id}/claim'
    with holding_first_commit(db_engine) as hold:
        responses = at_once(post_json(app, path, first, {}), post_json(app, path, second, {}))
    assert hold.saw_waiter
    loser = one_winner(responses)
    assert loser.get_json()['message'] == '该任务已被他人认领或已办理。'
    (winner,) = [r for r in responses if r.status_code == 200]
    after = snapshot(db_engine, open_task)
    with Session(db_engine) as s:
        assignee = s.scalar(sa.select(HumanTask.assignee_id).where(HumanTask.id == open_task.task_id))
    assert assignee == winner.get_json()['assignee']
    assert after.task_status == 'open' and after.open_tasks == ('register',)
    assert after.revision == before.revision  # a claim does not touch the workflow
    assert after.events.get('task.claimed') == 1 and after.chain_ok


def test_the_same_claim_twice_in_the_engine_is_refused_the_second_time(session: Session, db_engine: Engine,
                                                                        staff: dict[str, User],
                                                                        open_task: OpenTask) -> None:
    actor = staff['staff']
    claim_task(session, open_task.task_id, actor=actor, scope=load_scope(session, actor))
    session.commit()
    with pytest.raises(Conflict):
        claim_task(session, open_task.task_id, actor=actor, scope=load_scope(session, actor))
    session.rollback()
    after = snapshot(db_engine, open_task)
    assert after.events.get('task.claimed') == 1 and after.chain_ok


def test_a_task_form_posted_again_is_refused_clearly_and_changes_nothing(app: Flask, db_engine: Engine,
                                                                         staff: dict[str, User],
                                                                         open_task: OpenTask) -> None:
    browser = app.test_client()
    login = browser.post('/login', data={'username': 'staff', 'password': 'Passw0rd!',
                                         'csrf_token': csrf_token(browser)})
    assert login.status_code == 302
    form = {**{k: str(v) for k, v in REGISTER.items()}, 'csrf_token': csrf_token(browser, '/tasks')}
    first = browser.post(f'/tasks/{open_task.task_id}', data=form)
    assert first.status_code == 302
    done = snapshot(db_engine, open_task)
    # The browser's back button and a second click: the same form, the same CSRF token, sent again.
    again = browser.post(f'/tasks/{open_task.task_id}', data=form)
    assert again.status_code == 409
    text = again.get_data(as_text=True)
    assert '该任务已办理或已取消。' in text and 'Traceback' not in text
    assert snapshot(db_engine, open_task) == done
    assert done.open_tasks == ('review',) and done.events.get('task.completed') == 1 and done.chain_ok


def test_a_claim_button_clicked_twice_flashes_the_refusal_and_changes_nothing(app: Flask, db_engine: Engine,
                                                                              staff: dict[str, User],
                                                                              open_task: OpenTask) -> None:
    browser = app.test_client()
    login = browser.post('/login', data={'username': 'staff', 'password': 'Passw0rd!',
                                         'csrf_token': csrf_token(browser)})
    assert login.status_code == 302
    form = {'csrf_token': csrf_token(browser, '/tasks'), 'return_to': '/tasks'}
    assert browser.post(f'/tasks/{open_task.task_id}/claim', data=form).status_code == 302
    claimed = snapshot(db_engine, open_task)
    again = browser.post(f'/tasks/{open_task.task_id}/claim', data=form)
    assert again.status_code == 302
    assert '该任务已被他人认领或已办理。' in browser.get('/tasks').get_data(as_text=True)
    assert snapshot(db_engine, open_task) == claimed and claimed.events.get('task.claimed') == 1


def test_a_start_sent_twice_at_once_under_one_key_opens_one_case(app: Flask, session: Session, db_engine: Engine,
                                                                staff: dict[str, User],
                                                                open_task: OpenTask) -> None:
    headers = {**bearer(session, staff['staff']), 'Idempotency-Key': 'b6f1c0de-start-twice'}
    body = {'process_key': 'demo_intake', 'data': {**START, 'person_name': '重复立案'}}
    with holding_first_commit(db_engine) as hold:
        responses = at_once(post_json(app, '/cases', headers, body), post_json(app, '/cases', headers, body))
    assert hold.saw_waiter, 'the second start never waited behind the first: no race happened'
    assert [r.status_code for r in responses] == [201, 201], [r.get_data(as_text=True)[:300] for r in responses]
    first, second = (r.get_json() for r in responses)
    assert first == second  # the twin is answered with the first start's case and tasks
    assert sorted(r.headers.get('Idempotent-Replayed', '') for r in responses) == ['', 'true']
    with Session(db_engine) as fresh:
        cases = fresh.scalars(sa.select(Case).where(Case.person_name == '重复立案')).all()
        started = fresh.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                               .where(AuditEvent.kind == 'case.started', AuditEvent.case_id == cases[0].id))
        assert len(cases) == 1 and started == 1
        assert verify_chain(fresh).ok
