"""The audit chain: every append is chained; any edit, removal or truncation is found by the verifier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import audit, runtime
from engine.access import load_scope
from engine.models.audit import AuditEvent
from engine.models.users import User
from engine.tasks import bulk_claim, claim_task
from tests.fixtures.directory import Org


def _append(session: Session, count: int, kind: str = 'test.event') -> None:
    for index in range(count):
        audit.record(session, kind, actor=None, after={'n': index, 'text': '调解'}, note=f'#{index}')
    session.commit()


def _disable_guards(session: Session) -> None:
    """Bypass the append-only triggers, as an attacker with database superuser access could."""
    if session.bind.dialect.name == 'postgresql':
        # Only for this session: the shared test database keeps its triggers for the next test.
        session.execute(sa.text('SET session_replication_role = replica'))
    else:
        session.execute(sa.text('DROP TRIGGER audit_events_no_update'))
        session.execute(sa.text('DROP TRIGGER audit_events_no_delete'))
        session.commit()


def test_appended_events_form_a_verifiable_chain(session: Session) -> None:
    _append(session, 5)
    _append(session, 3)
    rows = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [r.id for r in rows] == list(range(1, 9))
    assert rows[0].prev_hash == '' and all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    report = audit.verify_chain(session, batch=3)
    assert report.ok and report.checked == 8


def test_rolled_back_events_are_not_written(session: Session) -> None:
    audit.record(session, 'test.event', actor=None)
    session.rollback()
    _append(session, 1)
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1


@pytest.mark.parametrize('column, value', [('note', "'改过'"), ('actor_name', "'someone'"),
                                           ('after', "'{\"n\": 99}'")])
def test_tampered_row_is_named(session: Session, column: str, value: str) -> None:
    _append(session, 6)
    _disable_guards(session)
    session.execute(sa.text(f'UPDATE audit_events SET {column} = {value} WHERE id = 4'))
    session.commit()
    session.close()
    report = audit.verify_chain(session)
    assert not report.ok and report.first_broken_id == 4


def test_deleted_row_is_found(session: Session) -> None:
    _append(session, 6)
    _disable_guards(session)
    session.execute(sa.text('DELETE FROM audit_events WHERE id = 3'))
    session.commit()
    report = audit.verify_chain(session)
    assert report.first_broken_id == 4 and 'missing' in report.reason


def test_truncated_tail_is_found(session: Session) -> None:
    _append(session, 6)
    _disable_guards(session)
    session.execute(sa.text('DELETE FROM audit_events WHERE id > 4'))
    session.commit()
    report = audit.verify_chain(session)
    assert report.first_broken_id == 5 and 'newest' in report.reason and report.head_id == 6
    assert report.kind is None and report.message is not None and '第 5 至第 6 条' in report.message


def test_concurrent_appenders_keep_one_chain(session_factory: sessionmaker[Session]) -> None:
    errors: list[BaseException] = []

    def worker(tag: str) -> None:
        try:
            for _ in range(10):
                with session_factory() as s:
                    _append(s, 2, kind=f'test.{tag}')
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(str(i),)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session_factory() as s:
        report = audit.verify_chain(s)
        assert report.ok and report.checked == 60


def test_tampered_row_is_reported_with_its_kind_and_time(session: Session) -> None:
    _append(session, 3, kind='task.completed')
    original = session.scalars(sa.select(AuditEvent).where(AuditEvent.id == 2)).one()
    when = original.occurred_dt
    _disable_guards(session)
    session.execute(sa.text("UPDATE audit_events SET note = '改过' WHERE id = 2"))
    session.commit()
    session.expire_all()
    report = audit.verify_chain(session)
    assert (report.first_broken_id, report.kind, report.occurred_dt, report.code) == (2, 'task.completed', when, 'hash')
    assert report.checked == 1 and report.message == '第 2 条记录的内容与其哈希值不符，内容可能被修改。'


def _forge(session: Session, row_id: int, prev_hash: str) -> None:
    """Insert a row the way an attacker who knows the hashing would: a valid hash over its content."""
    row = {'id': row_id, 'occurred_dt': datetime(2025, 10, 1, 1, 0, tzinfo=UTC), 'actor_id': None,
           'actor_name': '伪造者', 'kind': 'task.completed', 'case_id': None, 'instance_id': None,
           'human_task_id': None, 'org_path': None, 'before': None, 'after': {'n': 1}, 'note': None}
    session.execute(sa.insert(AuditEvent).values(**row, prev_hash=prev_hash, hash=audit.compute_hash(prev_hash, row)))
    session.commit()


def test_row_inserted_after_the_newest_is_named(session: Session) -> None:
    _append(session, 5)
    newest = session.scalars(sa.select(AuditEvent).where(AuditEvent.id == 5)).one()
    _forge(session, 6, newest.hash)
    report = audit.verify_chain(session)
    assert (report.first_broken_id, report.code, report.kind) == (6, 'beyond_head', 'task.completed')
    assert report.checked == 5


def test_row_inserted_with_a_gap_is_named(session: Session) -> None:
    _append(session, 5)
    _forge(session, 40, 'f' * 64)
    report = audit.verify_chain(session)
    assert (report.first_broken_id, report.code) == (40, 'missing')


def test_newest_row_replaced_with_a_recomputed_hash_is_named(session: Session) -> None:
    _append(session, 4)
    third = session.scalars(sa.select(AuditEvent).where(AuditEvent.id == 3)).one()
    _disable_guards(session)
    session.execute(sa.text('DELETE FROM audit_events WHERE id = 4'))
    session.commit()
    _forge(session, 4, third.hash)
    report = audit.verify_chain(session)
    assert (report.first_broken_id, report.code) == (4, 'head')


def test_a_rolled_back_savepoint_drops_only_its_own_events(session: Session) -> None:
    audit.record(session, 'test.kept', actor=None)
    with pytest.raises(RuntimeError), session.begin_nested():
        audit.record(session, 'test.dropped', actor=None)
        raise RuntimeError('refused')
    with session.begin_nested():
        audit.record(session, 'test.kept_too', actor=None)
    session.commit()
    assert session.scalars(sa.select(AuditEvent.kind).order_by(AuditEvent.id)).all() == ['test.kept', 'test.kept_too']
    audit.record(session, 'test.dropped_with_all', actor=None)
    with session.begin_nested():
        audit.record(session, 'test.dropped_too', actor=None)
    session.rollback()
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 2


def test_a_bulk_action_with_one_refusal_keeps_the_others_records(
        session: Session, org: Org, people: dict[str, User], deploy_file: Callable[[str], object]) -> None:
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    tasks = [runtime.start_case(session, 'demo_intake', {'person_name': f'谢某{i}', 'received_on': '2025-09-26'},
                                actor=people['staff'], org_unit=org.township)[1][0] for i in range(3)]
    session.commit()
    claim_task(session, tasks[1].id, actor=people['staff2'], scope=load_scope(session, people['staff2']))
    session.commit()
    staff = people['staff']
    results = bulk_claim(session, [t.id for t in tasks], actor=staff, scope=load_scope(session, staff))
    session.commit()
    assert [r.ok for r in results] == [True, False, True]
    claimed = session.scalars(sa.select(AuditEvent.human_task_id).where(AuditEvent.kind == 'task.claimed',
                                                                        AuditEvent.actor_id == people['staff'].id))
    assert sorted(claimed) == [tasks[0].id, tasks[2].id]
    assert audit.verify_chain(session).ok
