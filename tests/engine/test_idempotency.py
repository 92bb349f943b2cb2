"""Idempotency keys: a claim, the answer to a repeat, a key reused for another request, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import idempotency
from engine.clock import FrozenClock
from engine.errors import Conflict, ValidationFailed
from engine.models.idempotency import IdempotencyKey
from engine.models.users import User


@pytest.fixture
def user(people: dict[str, User]) -> User:
    return people['staff']


def test_a_first_claim_is_unanswered_and_a_repeat_gets_the_settled_outcome(session: Session, user: User) -> None:
    digest = idempotency.fingerprint({'a': 1, 'b': [1, 2]})
    first = idempotency.claim(session, user.id, 'api.start_case', 'key-1', digest)
    assert not idempotency.answered(first)
    idempotency.settle(first, 201, {'id': 7})
    session.commit()
    repeat = idempotency.claim(session, user.id, 'api.start_case', 'key-1', idempotency.fingerprint({'b': [1, 2],
                                                                                                     'a': 1}))
    assert idempotency.answered(repeat) and (repeat.status, repeat.response) == (201, {'id': 7})
    assert session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 1


def test_a_key_reused_for_a_different_request_is_refused(session: Session, user: User) -> None:
    claimed = idempotency.claim(session, user.id, 'api.start_case', 'key-1', idempotency.fingerprint({'a': 1}))
    idempotency.settle(claimed, 201, {'id': 7})
    session.commit()
    with pytest.raises(Conflict, match='另一请求'):
        idempotency.claim(session, user.id, 'api.start_case', 'key-1', idempotency.fingerprint({'a': 2}))


def test_keys_of_other_callers_and_other_commands_never_meet(session: Session, people: dict[str, User]) -> None:
    digest = idempotency.fingerprint({})
    claimed = idempotency.claim(session, people['staff'].id, 'api.start_case', 'same', digest)
    idempotency.settle(claimed, 201, {'id': 1})
    session.commit()
    assert not idempotency.answered(idempotency.claim(session, people['staff2'].id, 'api.start_case', 'same',
                                                      digest))
    assert not idempotency.answered(idempotency.claim(session, people['staff'].id, 'web.start_case', 'same',
                                                      digest))


def test_a_rolled_back_command_leaves_no_key_so_it_may_be_sent_again(session: Session, user: User) -> None:
    digest = idempotency.fingerprint({'a': 1})
    idempotency.claim(session, user.id, 'api.start_case', 'key-1', digest)
    session.rollback()
    assert not idempotency.answered(idempotency.claim(session, user.id, 'api.start_case', 'key-1', digest))


def test_a_key_older_than_the_retention_is_forgotten(session: Session, user: User, clock: FrozenClock) -> None:
    digest = idempotency.fingerprint({'a': 1})
    claimed = idempotency.claim(session, user.id, 'api.start_case', 'key-1', digest)
    idempotency.settle(claimed, 201, {'id': 7})
    session.commit()
    clock.advance(idempotency.RETENTION + timedelta(minutes=1))
    again = idempotency.claim(session, user.id, 'api.start_case', 'key-1', idempotency.fingerprint({'a': 2}))
    assert not idempotency.answered(again)
    assert session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 1


@pytest.mark.parametrize('key', ['', ' ', 'x' * 129, '中文键', 'tab\tkey'])
def test_a_malformed_key_is_refused(key: str) -> None:
    with pytest.raises(ValidationFailed):
        idempotency.check_key(key)
