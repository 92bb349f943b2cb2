"""The same event posted twice at once by a machine client (a retry after a timeout that crossed the first)
has one effect: one alarm check, one dispute case, one ``inbound_events`` row, both callers answered alike.

PostgreSQL only, as in test_double_submit: two threads, each with its own client, released by a barrier; the
first commit is held until the twin is seen waiting on the key's unique index, so the two provably overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.audit import verify_chain
from engine.clock import FrozenClock
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.events import InboundEvent
from engine.models.instances import ProcessInstance
from engine.models.users import User
from tests.engine.events_support import EventWorld, alarm, build_world, referral
from tests.faults.conftest import holding_first_commit
from tests.faults.test_double_submit import at_once, post_json
from tests.fixtures.directory import Org

pytestmark = pytest.mark.postgres


@pytest.fixture
def world(session: Session, org: Org, create_member: Callable[..., User], clock: FrozenClock) -> EventWorld:
    return build_world(session, org, create_member)


@pytest.mark.parametrize(('kind', 'payload', 'effect'), [('alarm', alarm(), 'corrections_alarm'),
                                                         ('referral', referral(), 'dispute_mediation')])
def test_an_event_sent_twice_at_once_has_one_effect(app: Flask, db_engine: Engine, world: EventWorld, kind: str,
                                                    payload: dict[str, Any], effect: str) -> None:
    headers = {'Authorization': f'Bearer {world.tokens["tj"]}', 'Idempotency-Key': f'twin-{kind}'}
    body = {'kind': kind, 'payload': payload}
    with holding_first_commit(db_engine) as hold:
        responses = at_once(post_json(app, '/events', headers, body), post_json(app, '/events', headers, body))
    assert hold.saw_waiter, 'the twin never waited behind the first: no race happened'
    assert [r.status_code for r in responses] == [201, 201], [r.get_data(as_text=True)[:300] for r in responses]
    first, second = (r.get_json() for r in responses)
    assert first == second
    assert sorted(r.headers.get('Idempotent-Replayed', '') for r in responses) == ['', 'true']
    with Session(db_engine) as fresh:
        assert fresh.scalar(sa.select(sa.func.count()).select_from(InboundEvent)) == 1
        instances = fresh.scalars(sa.select(ProcessInstance).where(ProcessInstance.id > 0)).all()
        assert len([i for i in instances if i.definition.key == effect]) == 1
        assert fresh.scalar(sa.select(sa.func.count()).select_from(Case)) == (1 if kind == 'alarm' else 2)
        assert fresh.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                            .where(AuditEvent.kind.like('event.%'))) == 1
        assert verify_chain(fresh).ok
