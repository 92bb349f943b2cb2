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
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from engine.clock import now
from engine.i18n import N_, _
from engine.models.audit import AuditChainHead, AuditEvent
from engine.models.audit_archive import AuditArchive
from engine.models.users import User

_PENDING_KEY = 'fengqiao_audit_pending'
_MARKS_KEY = 'fengqiao_audit_savepoints'
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


# The seal's statements are built once, on the tables, not the mapped classes: no session holds these rows, and
# the ORM's bulk statements would search the identity map for them; together they cost a third more.
_HEAD = cast(sa.Table, AuditChainHead.__table__)
_RESERVE_IDS = (sa.update(_HEAD).where(_HEAD.c.id == 1)
                .values(last_event_id=_HEAD.c.last_event_id + sa.bindparam('count'))
                .returning(_HEAD.c.last_event_id - sa.bindparam('count'), _HEAD.c.last_hash))
_NEW_HEAD = sa.update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=sa.bindparam('hash'))
_INSERT_EVENTS = sa.insert(cast(sa.Table, AuditEvent.__table__))


def seal_pending(session: Session) -> int:
    """Chain and insert every queued event; return how many were written."""
    pending: list[dict[str, Any]] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return 0
    # Reserving the ids with an UPDATE first takes the write lock on both backends (a row lock on
    # PostgreSQL, the database lock on SQLite) before the newest hash is read.
    last_id, last_hash = session.execute(_RESERVE_IDS, {'count': len(pending)}).one()
    rows = []
    for data in pending:
        last_id += 1
        data['id'], data['prev_hash'] = last_id, last_hash
        data['hash'] = last_hash = compute_hash(last_hash, data)
        rows.append(data)
    session.execute(_NEW_HEAD, {'hash': last_hash})
    session.execute(_INSERT_EVENTS, rows)
    return len(rows)


@event.listens_for(Session, 'before_commit')
def _seal_before_commit(session: Session) -> None:
    # Also fired when a savepoint is released: the queue waits for the real commit, so that the chain head
    # is locked only for that moment and a later rollback still drops everything.
    if not session.in_nested_transaction():
        seal_pending(session)


@event.listens_for(Session, 'after_transaction_create')
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint remembers how long the queue was when it began, so that rolling it back drops only
    # the events recorded inside it (a bulk action's refused task, a retry that failed again).
    if transaction.nested:
        marks: dict[SessionTransaction, int] = session.info.setdefault(_MARKS_KEY, {})
        marks[transaction] = len(session.info.get(_PENDING_KEY, ()))


@event.listens_for(Session, 'after_transaction_end')
def _forget_savepoints(session: Session, transaction: SessionTransaction) -> None:
    # A savepoint's mark is still needed after it ends: after_soft_rollback fires after this event.
    if transaction.parent is None:
        session.info.pop(_MARKS_KEY, None)


@event.listens_for(Session, 'after_soft_rollback')
def _drop_on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    # Fires on every rollback() call, even one with no database transaction to roll back.
    mark = session.info.get(_MARKS_KEY, {}).pop(previous_transaction, None)
    if previous_transaction.nested and mark is not None:
        del session.info.get(_PENDING_KEY, [])[mark:]
        return
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_MARKS_KEY, None)


#: what each kind of break means, in words a supervisor reads (``{id}``: the first row concerned)
BREAK_MESSAGES = {
    'missing': N_('第 {id} 条之前的记录缺失（编号不连续），可能有记录被删除。'),
    'prev_hash': N_('第 {id} 条记录与前一条记录的哈希链接不符，前面的记录可能被删除、替换或插入。'),
    'hash': N_('第 {id} 条记录的内容与其哈希值不符，内容可能被修改。'),
    'beyond_head': N_('第 {id} 条记录不在链头登记的范围内，可能是事后插入的。'),
    'head': N_('最新的第 {id} 条记录与链头登记的哈希值不符，可能被替换。'),
    'tail_missing': N_('第 {id} 至第 {last} 条记录缺失：链头登记了这些记录，表中却没有，最新的记录被删除。'),
    'archive_unknown': N_('从第 {id} 条起的归档文件与登记的归档检查点都不符，文件可能被修改或不属于本系统。'),
    'archive_unreadable': N_('归档文件第 {id} 行无法读取：不是有效的审计归档（JSON Lines）。'),
}


@dataclass(frozen=True)
class ChainReport:
    """Outcome of a chain check: how many rows verified, and the first bad row if any.

    :param checked: rows that verified before the first break (all of them when the chain is whole)
    :param first_broken_id: id of the first row that fails (for a removed tail: the first id missing)
    :param reason: the break in English, for logs
    :param code: the break's key in :data:`BREAK_MESSAGES`
    :param kind: the broken row's event kind (None when the row itself is gone)
    :param occurred_dt: the broken row's time (None when the row itself is gone)
    :param head_id: the newest id the chain head records
    """

    checked: int
    first_broken_id: int | None
    reason: str | None
    code: str | None = None
    kind: str | None = None
    occurred_dt: datetime | None = None
    head_id: int | None = None

    @property
    def ok(self) -> bool:
        """True when every row verified."""
        return self.first_broken_id is None

    @property
    def message(self) -> str | None:
        """The break in the reader's language (None when the chain is whole)."""
        if self.code is None:
            return None
        return _(BREAK_MESSAGES[self.code]).format(id=self.first_broken_id, last=self.head_id)


_CHAIN_COLUMNS = ('id', 'occurred_dt', 'actor_id', 'actor_name', 'kind', 'case_id', 'instance_id', 'human_task_id',
                  'org_path', 'before', 'after', 'note', 'prev_hash', 'hash')


def _iter_rows(session: Session, batch: int, after_id: int = 0) -> Iterator[dict[str, Any]]:
    """Every row past ``after_id`` as a plain dict, in id order: columns, not entities, so nothing fills the
    identity map."""
    columns = [getattr(AuditEvent, name) for name in _CHAIN_COLUMNS]
    last_id = after_id
    while True:
        rows = session.execute(sa.select(*columns).where(AuditEvent.id > last_id)
                               .order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            yield dict(zip(_CHAIN_COLUMNS, row, strict=True))
        last_id = rows[-1][0]


def _broken(checked: int, row: dict[str, Any], code: str, reason: str, head_id: int | None) -> ChainReport:
    return ChainReport(checked, row['id'], reason, code, row['kind'], row['occurred_dt'], head_id)


def chain_start(session: Session) -> tuple[int, str]:
    """Where the live chain begins: the first id expected and the ``prev_hash`` it must carry.

    From row 1 with an empty hash, unless the oldest rows were archived (:mod:`engine.archive`): then from
    the row after the archive checkpoint that ends just before the oldest remaining row, with that
    checkpoint's hash. Rows missing with no such checkpoint are reported by the verifier as missing.
    """
    first = session.scalar(sa.select(sa.func.min(AuditEvent.id)))
    if first == 1:
        return 1, ''
    checkpoints = sa.select(AuditArchive.last_event_id, AuditArchive.last_hash)
    if first is None:  # everything archived (or nothing written yet): resume after the newest checkpoint
        newest = session.execute(checkpoints.order_by(AuditArchive.last_event_id.desc()).limit(1)).one_or_none()
    else:
        newest = session.execute(checkpoints.where(AuditArchive.last_event_id == first - 1)).one_or_none()
    return (1, '') if newest is None else (newest[0] + 1, newest[1])


def verify_chain(session: Session, *, batch: int = 2000, start: tuple[int, str] | None = None) -> ChainReport:
    """Recompute every hash in id order and report the first row that does not match.

    Finds an edited row (its hash), a removed row (a gap in the ids, or the next row's link), a row
    inserted or replaced with a recomputed hash (the next row's link, or the chain head), and a removed
    tail (the chain head). Someone able to rewrite every later row *and* the chain head is beyond what an
    unkeyed chain can show. Archived rows are skipped: the chain resumes from their checkpoint's hash.

    :param batch: rows read per query
    :param start: ``(first id, prev_hash)`` to begin at, e.g. after the rows of an archive file already
        verified; default: :func:`chain_start`
    """
    head = session.execute(sa.select(AuditChainHead.last_event_id, AuditChainHead.last_hash)
                           .where(AuditChainHead.id == 1)).one_or_none()
    head_id = head[0] if head is not None else None
    expected_id, prev_hash = start if start is not None else chain_start(session)
    checked = 0
    for row in _iter_rows(session, batch, expected_id - 1):
        if row['id'] != expected_id:
            return _broken(checked, row, 'missing', f'row {expected_id} is missing', head_id)
        if row['prev_hash'] != prev_hash:
            return _broken(checked, row, 'prev_hash', 'prev_hash does not match the previous row', head_id)
        if compute_hash(prev_hash, row) != row['hash']:
            return _broken(checked, row, 'hash', 'content does not match its hash', head_id)
        if head_id is not None and row['id'] > head_id:
            return _broken(checked, row, 'beyond_head', 'row is beyond the chain head', head_id)
        if head is not None and row['id'] == head_id and row['hash'] != head[1]:
            return _broken(checked, row, 'head', 'the newest row does not match the chain head', head_id)
        prev_hash, expected_id, checked = row['hash'], row['id'] + 1, checked + 1
    if head_id is not None and head_id >= expected_id:
        # Rows were removed from the end: the head still remembers the newest id and hash.
        return ChainReport(checked, expected_id, 'the newest rows are missing', 'tail_missing', head_id=head_id)
    if head is not None and head_id == expected_id - 1 and checked == 0 and head[1] != prev_hash:
        # Every row archived: the newest checkpoint must end where the head does.
        return ChainReport(checked, head_id, 'the chain head does not match the archive checkpoint', 'head',
                           head_id=head_id)
    return ChainReport(checked, None, None, head_id=head_id)
