"""Audit retention: archiving old events keeps the chain verifiable, refuses anything inside six months."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine import audit
from engine.archive import ArchiveResult, archive_events, earliest_allowed_cutoff, verify_archives
from engine.clock import FrozenClock
from engine.errors import ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.audit_archive import AuditArchive

#: the fixture clock's day; events recorded then are old enough to archive seven months later
RECORDED = date(2025, 9, 26)
LATER = timedelta(days=215)  # 2026-04-29: the latest allowed cut-off is 2025-10-29


def _append(session: Session, count: int, kind: str = 'test.event') -> None:
    for index in range(count):
        audit.record(session, kind, actor=None, after={'n': index, 'text': '调解'}, note=f'#{index}')
    session.commit()


def _archive(session: Session, before: date, **options: Any) -> tuple[ArchiveResult, bytes]:
    out = io.BytesIO()
    result = archive_events(session, before, out, file_name='audit-2025.jsonl', **options)
    session.commit()
    return result, out.getvalue()


def _ids(session: Session) -> list[int]:
    return list(session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)))


@pytest.fixture
def aged(session: Session, clock: FrozenClock) -> FrozenClock:
    """Five events on 2025-09-26, then three more seven months later; the clock stays at the later day."""
    _append(session, 5, 'test.old')
    clock.advance(LATER)
    _append(session, 3, 'test.new')
    return clock


def test_old_events_move_to_a_file_and_the_rest_still_verifies(session: Session, aged: FrozenClock) -> None:
    result, content = _archive(session, date(2025, 10, 1))
    assert result.count == 5 and result.checkpoint is not None
    lines = [json.loads(line) for line in content.decode('utf-8').splitlines()]
    assert [line['id'] for line in lines] == [1, 2, 3, 4, 5]
    assert set(lines[0]) >= {'id', 'occurred_dt', 'kind', 'before', 'after', 'prev_hash', 'hash'}
    assert lines[0]['prev_hash'] == '' and lines[0]['after'] == {'n': 0, 'text': '调解'}
    checkpoint = session.scalars(sa.select(AuditArchive)).one()
    assert (checkpoint.first_event_id, checkpoint.last_event_id, checkpoint.last_hash) == (1, 5, lines[-1]['hash'])
    assert _ids(session) == [6, 7, 8, 9]  # the three newer events and the archive run's own record
    archived = session.scalars(sa.select(AuditEvent).where(AuditEvent.id == 9)).one()
    assert archived.kind == 'audit.archived' and archived.after is not None
    assert archived.after['file_sha256'] == checkpoint.file_sha256 and archived.after['count'] == 5
    report = audit.verify_chain(session)
    assert report.ok and report.checked == 4


def test_the_chain_keeps_growing_and_verifying_after_an_archive(session: Session, aged: FrozenClock) -> None:
    _archive(session, date(2025, 10, 1))
    _append(session, 4)
    report = audit.verify_chain(session, batch=2)
    assert report.ok and report.checked == 8


def test_a_cutoff_inside_six_months_is_refused_and_nothing_changes(session: Session, aged: FrozenClock) -> None:
    out = io.BytesIO()
    with pytest.raises(ValidationFailed) as refused:
        archive_events(session, date(2025, 10, 30), out, file_name='x.jsonl')
    session.rollback()
    assert '6 个月' in refused.value.message and '2025-10-29' in refused.value.message
    assert out.getvalue() == b'' and _ids(session) == list(range(1, 9))
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditArchive)) == 0


def test_retention_is_configurable_upward_only(session: Session, aged: FrozenClock) -> None:
    with pytest.raises(ValidationFailed):
        archive_events(session, date(2025, 10, 1), io.BytesIO(), file_name='x', retention_months=12)
    with pytest.raises(ValidationFailed):
        archive_events(session, date(2025, 10, 1), io.BytesIO(), file_name='x', retention_months=3)
    session.rollback()
    assert earliest_allowed_cutoff(date(2026, 8, 31)) == date(2026, 2, 28)
    assert earliest_allowed_cutoff(date(2026, 3, 15), 14) == date(2025, 1, 15)


def test_nothing_old_enough_archives_nothing(session: Session, aged: FrozenClock) -> None:
    result, content = _archive(session, date(2025, 9, 1))
    assert (result.checkpoint, result.count, content) == (None, 0, b'')
    assert _ids(session) == list(range(1, 9))


def test_a_newer_row_stops_the_range_even_when_an_older_one_follows_it(session: Session, clock: FrozenClock) -> None:
    _append(session, 2)
    clock.advance(LATER)
    _append(session, 1)  # id 3, recent
    clock.set(datetime(2025, 9, 27, 1, 0, tzinfo=UTC))
    _append(session, 1)  # id 4, old by its time but after a recent row in the chain
    clock.set(datetime(2026, 5, 1, 1, 0, tzinfo=UTC))
    result, _ = _archive(session, date(2025, 10, 1))
    assert result.count == 2 and _ids(session)[:2] == [3, 4]
    assert audit.verify_chain(session).ok


def test_a_second_archive_continues_from_the_first(session: Session, clock: FrozenClock) -> None:
    _append(session, 3)
    clock.advance(timedelta(days=40))
    _append(session, 2)
    clock.advance(LATER)
    first, first_file = _archive(session, date(2025, 10, 1))
    second, second_file = _archive(session, date(2025, 11, 30))
    assert first.checkpoint is not None and second.checkpoint is not None
    assert (second.checkpoint.first_event_id, second.checkpoint.last_event_id) == (4, 5)  # not the recent run record
    assert audit.verify_chain(session).ok
    assert verify_archives(session, [second_file, first_file]).ok
    assert verify_archives(session, [second_file]).ok  # attaches to the first run's checkpoint
    whole = verify_archives(session, [first_file, second_file])
    assert whole.ok and whole.checked == 7


def test_archive_file_and_live_table_verify_as_one_chain(session: Session, aged: FrozenClock) -> None:
    _, content = _archive(session, date(2025, 10, 1))
    report = verify_archives(session, [content])
    assert report.ok and report.checked == 9


def test_an_edited_archive_file_is_named(session: Session, aged: FrozenClock) -> None:
    _, content = _archive(session, date(2025, 10, 1))
    edited = content.replace('调解'.encode(), '改过'.encode(), 1)
    report = verify_archives(session, [edited])
    assert (report.ok, report.code, report.first_broken_id) == (False, 'archive_unknown', 1)
    assert report.message is not None and '归档' in report.message
    garbage = verify_archives(session, [b'{"id": 1}\nnot json\n'])
    assert (garbage.code, garbage.first_broken_id) == ('archive_unreadable', 1)


def test_a_recomputed_forgery_inside_a_file_is_named(session: Session, aged: FrozenClock) -> None:
    """A file whose sha256 was also written to a forged checkpoint still breaks at the edited row."""
    _, content = _archive(session, date(2025, 10, 1))
    lines = content.decode('utf-8').splitlines()
    row = json.loads(lines[2])
    row['note'] = '改过'
    lines[2] = json.dumps(row, ensure_ascii=False)
    forged = ('\n'.join(lines) + '\n').encode('utf-8')
    session.add(AuditArchive(created_dt=aged.now(), cutoff_dt=aged.now(), first_event_id=100, last_event_id=100,
                             last_hash='f' * 64, event_count=5, file_sha256=hashlib.sha256(forged).hexdigest(),
                             file_name='forged'))
    session.commit()
    report = verify_archives(session, [forged])
    assert (report.code, report.first_broken_id, report.checked) == ('hash', 3, 2)


def test_live_rows_are_still_guarded_after_an_archive(session: Session, aged: FrozenClock) -> None:
    _archive(session, date(2025, 10, 1))
    with pytest.raises(DBAPIError):
        session.execute(sa.text('DELETE FROM audit_events WHERE id = 7'))
    session.rollback()
    with pytest.raises(DBAPIError):
        session.execute(sa.text("UPDATE audit_archives SET last_hash = 'x'"))
    session.rollback()
    with pytest.raises(DBAPIError):
        session.execute(sa.text('DELETE FROM audit_archives'))
    session.rollback()
    assert _ids(session) == [6, 7, 8, 9] and audit.verify_chain(session).ok


def test_a_row_deleted_after_an_archive_is_still_found(session: Session, aged: FrozenClock) -> None:
    _archive(session, date(2025, 10, 1))
    if session.bind.dialect.name == 'postgresql':
        session.execute(sa.text('SET session_replication_role = replica'))
    else:
        session.execute(sa.text('DROP TRIGGER audit_events_no_delete'))
    session.execute(sa.text('DELETE FROM audit_events WHERE id = 7'))
    session.commit()
    report = audit.verify_chain(session)
    assert (report.first_broken_id, report.code) == (8, 'missing')


def test_a_broken_chain_is_not_archived(session: Session, aged: FrozenClock) -> None:
    if session.bind.dialect.name == 'postgresql':
        session.execute(sa.text('SET session_replication_role = replica'))
    else:
        session.execute(sa.text('DROP TRIGGER audit_events_no_update'))
    session.execute(sa.text("UPDATE audit_events SET note = '改过' WHERE id = 2"))
    session.commit()
    if session.bind.dialect.name == 'postgresql':
        session.execute(sa.text('SET session_replication_role = DEFAULT'))
    with pytest.raises(ValidationFailed) as refused:
        archive_events(session, date(2025, 10, 1), io.BytesIO(), file_name='x')
    session.rollback()
    assert '断裂' in refused.value.message and len(_ids(session)) == 8


@pytest.mark.postgres
def test_on_postgresql_a_checkpoint_alone_does_not_open_the_guard(session: Session, aged: FrozenClock) -> None:
    session.add(AuditArchive(created_dt=aged.now(), cutoff_dt=aged.now(), first_event_id=1, last_event_id=5,
                             last_hash='0' * 64, event_count=5, file_sha256='0' * 64, file_name='x'))
    session.flush()
    with pytest.raises(DBAPIError):
        session.execute(sa.text('DELETE FROM audit_events WHERE id = 1'))
    session.rollback()
    assert _ids(session) == list(range(1, 9))


def test_migration_and_model_agree_on_the_archive_table(session: Session) -> None:
    import engine.models.all  # noqa: F401  (the complete metadata)
    from engine.db import Base

    context = MigrationContext.configure(session.connection(), opts={'compare_type': True})
    diffs = [diff for diff in compare_metadata(context, Base.metadata) if 'audit_archives' in repr(diff)]
    assert diffs == []
