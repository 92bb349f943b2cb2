"""Append audit events to the hash chain, and verify the chain.

Events recorded during a command are buffered on the session and sealed just before commit: the chain
head row is locked only for that moment, so concurrent commands serialize on the audit append and on
nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from engine.clock import now
from engine.models.audit import AuditChainHead, AuditEvent
from engine.models.users import User

_PENDING_KEY = 'fengqiao_audit_pending'
SYSTEM_ACTOR = '系统'


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so what is hashed is exactly what the database returns later."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, Decimal)):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    if hasattr(value, 'isoformat'):
        return value.isoformat()
    raise TypeError(f'cannot record {type(value).__name__} in the audit log')


def record(session: Session, kind: str, *, actor: User | None, case_id: int | None = None,
           instance_id: int | None = None, task_id: int | None = None, org_path: str | None = None,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           note: str | None = None) -> None:
    """Queue an audit event; it is chained and inserted when the transaction commits.

    :param kind: dotted event kind, e.g. ``task.completed``
    :param actor: the user, or None for the system
    :param before: values before the change
    :param after: values after the change
    :param note: a reason or comment
    """
    # Start the transaction now, so that a rollback (which fires no event without one) drops the queue.
    session.connection()
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING_KEY, [])
    pending.append({
        'occurred_dt': now(), 'actor_id': actor.id if actor else None,
        'actor_name': actor.display_name if actor else SYSTEM_ACTOR, 'kind': kind, 'case_id': case_id,
        'instance_id': instance_id, 'human_task_id': task_id, 'org_path': org_path,
        'before': _jsonable(before), 'after': _jsonable(after), 'note': note,
    })


def _canonical(row: dict[str, Any]) -> str:
    content = {k: row[k] for k in ('id', 'actor_id', 'actor_name', 'kind', 'case_id', 'instance_id',
                                   'human_task_id', 'org_path', 'before', 'after', 'note')}
    content['occurred_dt'] = row['occurred_dt'].isoformat()
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(',', ':'))


def compute_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """Return the chain hash of ``row`` following ``prev_hash``."""
    return hashlib.sha256((prev_hash + _canonical(row)).encode('utf-8')).hexdigest()


def seal_pending(session: Session) -> int:
    """Chain and insert every queued event; return how many were written."""
    pending: list[dict[str, Any]] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return 0
    # Reserving the ids with an UPDATE first takes the write lock on both backends (a row lock on
    # PostgreSQL, the database lock on SQLite) before the newest hash is read.
    last_id, last_hash = session.execute(
        sa.update(AuditChainHead).where(AuditChainHead.id == 1)
        .values(last_event_id=AuditChainHead.last_event_id + len(pending))
        .returning(AuditChainHead.last_event_id - len(pending), AuditChainHead.last_hash)).one()
    rows = []
    for data in pending:
        last_id += 1
        data['id'], data['prev_hash'] = last_id, last_hash
        data['hash'] = last_hash = compute_hash(last_hash, data)
        rows.append(data)
    session.execute(sa.update(AuditChainHead).where(AuditChainHead.id == 1).values(last_hash=last_hash))
    session.execute(sa.insert(AuditEvent), rows)
    return len(rows)


@event.listens_for(Session, 'before_commit')
def _seal_before_commit(session: Session) -> None:
    seal_pending(session)


@event.listens_for(Session, 'after_soft_rollback')
def _drop_on_rollback(session: Session, previous_transaction: object) -> None:
    # Fires on every rollback() call, even one with no database transaction to roll back.
    session.info.pop(_PENDING_KEY, None)


@dataclass(frozen=True)
class ChainReport:
    """Outcome of a chain check: how many rows were read and the first bad one, if any."""

    checked: int
    first_broken_id: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        """True when every row verified."""
        return self.first_broken_id is None


def _iter_rows(session: Session, batch: int) -> Iterator[AuditEvent]:
    last_id = 0
    while True:
        rows = session.scalars(sa.select(AuditEvent).where(AuditEvent.id > last_id)
                               .order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id
        session.expunge_all()


def verify_chain(session: Session, *, batch: int = 2000) -> ChainReport:
    """Recompute every hash in id order and report the first row that does not match.

    :param batch: rows read per query
    """
    prev_hash, expected_id, checked = '', None, 0
    for row in _iter_rows(session, batch):
        data = {c: getattr(row, c) for c in ('id', 'occurred_dt', 'actor_id', 'actor_name', 'kind', 'case_id',
                                              'instance_id', 'human_task_id', 'org_path', 'before', 'after',
                                              'note')}
        if expected_id is not None and row.id != expected_id:
            return ChainReport(checked, row.id, f'row {expected_id} is missing')
        if row.prev_hash != prev_hash:
            return ChainReport(checked, row.id, 'prev_hash does not match the previous row')
        if compute_hash(prev_hash, data) != row.hash:
            return ChainReport(checked, row.id, 'content does not match its hash')
        prev_hash, expected_id, checked = row.hash, row.id + 1, checked + 1
    head = session.get(AuditChainHead, 1)
    if head is not None and head.last_hash != prev_hash:
        # Rows were removed from the end: the head still remembers the newest hash.
        return ChainReport(checked, head.last_event_id, 'the newest rows are missing')
    return ChainReport(checked, None, None)
