"""Audit retention: move the oldest audit events to a JSON-lines file and keep the chain verifiable.

An archive run takes the oldest live rows that all occurred before a cut-off day, writes them with every
chain field to a file (one JSON object per line), records a checkpoint (:class:`AuditArchive`: the id range,
the hash of the last archived row and the file's sha256), deletes the rows and records an
``audit.archived`` event, all in the caller's transaction. The live chain then verifies from the
checkpoint's hash (:func:`engine.audit.chain_start`), and :func:`verify_archives` checks archive files and
the live table as one chain.

The delete passes the append-only guard in one controlled way: only rows a checkpoint covers, and on
PostgreSQL only in a transaction that set ``fengqiao.audit_archive`` (``SET LOCAL``: it ends with the
transaction). Retention is at least :data:`MIN_RETENTION_MONTHS` months: newer events are never archived.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import audit
from engine.audit import ChainReport, chain_start, compute_hash, verify_chain
from engine.clock import LOCAL_ZONE, now
from engine.errors import ValidationFailed
from engine.i18n import _
from engine.models.audit import AuditEvent
from engine.models.audit_archive import AuditArchive
from engine.models.users import User

__all__ = ['MIN_RETENTION_MONTHS', 'ArchiveResult', 'archive_events', 'earliest_allowed_cutoff', 'verify_archives']

#: the shortest retention the law asks of a 等保 level 3 system's logs: never archive anything newer
MIN_RETENTION_MONTHS = 6
_FIELDS = ('id', 'occurred_dt', 'actor_id', 'actor_name', 'kind', 'case_id', 'instance_id', 'human_task_id',
           'org_path', 'before', 'after', 'note', 'prev_hash', 'hash')


@dataclass(frozen=True)
class ArchiveResult:
    """What an archive run did.

    :param checkpoint: the checkpoint recorded (None when no event was old enough)
    :param count: events written to the file and deleted
    """

    checkpoint: AuditArchive | None
    count: int


def earliest_allowed_cutoff(today: date, retention_months: int = MIN_RETENTION_MONTHS) -> date:
    """The latest cut-off day allowed: ``today`` minus ``retention_months`` (the day clamped to the month).

    :raises ValidationFailed: ``retention_months`` is below :data:`MIN_RETENTION_MONTHS`
    """
    if retention_months < MIN_RETENTION_MONTHS:
        raise ValidationFailed(_('审计日志至少保留 {n} 个月。').format(n=MIN_RETENTION_MONTHS))
    months = today.year * 12 + today.month - 1 - retention_months
    year, month = divmod(months, 12)
    for day in (today.day, 30, 29, 28):
        try:
            return date(year, month + 1, day)
        except ValueError:
            continue
    raise AssertionError('unreachable: every month has 28 days')


def _cutoff_moment(day: date) -> datetime:
    """Start of ``day`` in Beijing time, as UTC: the day a user names is a local day."""
    return datetime.combine(day, time(), LOCAL_ZONE).astimezone(UTC)


def _archivable_range(session: Session, cutoff: datetime) -> tuple[int, int, str]:
    """``(first id, last id, prev hash)`` of the oldest live rows that all occurred before ``cutoff``.

    Ids are given at commit and times at record, so they may disagree by a moment: the range stops before
    the first row at or after the cut-off, so that nothing newer than the cut-off is ever archived.
    """
    first_id, prev_hash = chain_start(session)
    first_newer = session.scalar(sa.select(sa.func.min(AuditEvent.id))
                                 .where(AuditEvent.id >= first_id, AuditEvent.occurred_dt >= cutoff))
    last_id = (first_newer - 1 if first_newer is not None
               else session.scalar(sa.select(sa.func.max(AuditEvent.id))) or 0)
    return first_id, last_id, prev_hash


def _line(row: dict[str, Any]) -> bytes:
    data = dict(row, occurred_dt=row['occurred_dt'].isoformat())
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(',', ':')) + '\n').encode('utf-8')


def _write_rows(session: Session, first_id: int, last_id: int, out: IO[bytes], batch: int) -> tuple[str, str, int]:
    """Write the rows to ``out``; return the last row's hash, the file's sha256 and the row count."""
    columns = [getattr(AuditEvent, name) for name in _FIELDS]
    digest, last_hash, count, after = hashlib.sha256(), '', 0, first_id - 1
    while after < last_id:
        rows = session.execute(sa.select(*columns).where(AuditEvent.id > after, AuditEvent.id <= last_id)
                               .order_by(AuditEvent.id).limit(batch)).all()
        if not rows:
            break
        for values in rows:
            row = dict(zip(_FIELDS, values, strict=True))
            line = _line(row)
            out.write(line)
            digest.update(line)
            last_hash, count, after = row['hash'], count + 1, row['id']
    return last_hash, digest.hexdigest(), count


def _allow_archive_delete(session: Session) -> None:
    """Open the append-only guard for this transaction only (PostgreSQL; see the audit_archive migration)."""
    if session.get_bind().dialect.name == 'postgresql':
        session.execute(sa.text("SET LOCAL fengqiao.audit_archive = 'on'"))


def archive_events(session: Session, before: date, out: IO[bytes], *, file_name: str,
                   retention_months: int = MIN_RETENTION_MONTHS, actor: User | None = None,
                   batch: int = 2000) -> ArchiveResult:
    """Write the oldest events that occurred before ``before`` to ``out``, checkpoint them and delete them.

    Never commits: the caller's transaction holds the checkpoint, the delete and the ``audit.archived`` event,
    so a failure leaves the table as it was (the caller discards the file then).

    :param before: the cut-off day (Beijing time); events on that day or later stay
    :param out: a binary stream the JSON lines are written to
    :param file_name: the file's name, kept in the checkpoint for the operator
    :param retention_months: how long events are kept at least (configurable upward from 6)
    :raises ValidationFailed: the cut-off is inside the retention period, or the chain is broken already
    """
    today = now().astimezone(LOCAL_ZONE).date()
    limit = earliest_allowed_cutoff(today, retention_months)
    if before > limit:
        raise ValidationFailed(_('审计日志至少保留 {n} 个月：截止日期不能晚于 {limit}。').format(
            n=retention_months, limit=limit.isoformat()), {'before': [_('截止日期在保留期内。')]})
    report = verify_chain(session, batch=batch)
    if not report.ok:
        # Archiving would carry the break into a file and delete the evidence from the table.
        raise ValidationFailed(_('审计链已断裂，不能归档：{message}').format(message=report.message))
    first_id, last_id, _prev = _archivable_range(session, _cutoff_moment(before))
    if last_id < first_id:
        return ArchiveResult(None, 0)
    last_hash, sha256, count = _write_rows(session, first_id, last_id, out, batch)
    checkpoint = AuditArchive(created_dt=now(), cutoff_dt=_cutoff_moment(before), first_event_id=first_id,
                              last_event_id=last_id, last_hash=last_hash, event_count=count, file_sha256=sha256,
                              file_name=file_name[:255])
    session.add(checkpoint)
    session.flush()  # the guard lets a row go only once a checkpoint covers it
    _allow_archive_delete(session)
    session.execute(sa.delete(AuditEvent).where(AuditEvent.id >= first_id, AuditEvent.id <= last_id),
                    execution_options={'synchronize_session': False})
    audit.record(session, 'audit.archived', actor=actor, after={
        'checkpoint': checkpoint.id, 'first_event_id': first_id, 'last_event_id': last_id, 'count': count,
        'cutoff': before.isoformat(), 'file_sha256': sha256, 'file_name': checkpoint.file_name})
    return ArchiveResult(checkpoint, count)


# -- verifying archive files ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _ArchiveFile:
    rows: list[dict[str, Any]]
    sha256: str


def _parse(content: bytes) -> _ArchiveFile | int:
    """The rows of an archive file, or the number of the first unreadable line."""
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        try:
            row = json.loads(line)
            row['occurred_dt'] = datetime.fromisoformat(row['occurred_dt'])
            if set(row) != set(_FIELDS) or not isinstance(row['id'], int):
                return number
        except (ValueError, TypeError, KeyError):
            return number
        rows.append(row)
    return _ArchiveFile(rows, hashlib.sha256(content).hexdigest()) if rows else 1


def _archive_problem(session: Session, contents: Sequence[bytes]) -> tuple[list[_ArchiveFile], ChainReport | None]:
    """Parse the files and match each to its checkpoint; a report naming the first bad file, if any."""
    files = []
    known = set(session.scalars(sa.select(AuditArchive.file_sha256)))
    for content in contents:
        parsed = _parse(content)
        if isinstance(parsed, int):
            return [], ChainReport(0, parsed, 'archive file is not readable', 'archive_unreadable')
        if parsed.sha256 not in known:
            first = parsed.rows[0]
            return [], ChainReport(0, first['id'], 'archive file matches no checkpoint', 'archive_unknown',
                                   first['kind'], first['occurred_dt'])
        files.append(parsed)
    return sorted(files, key=lambda f: f.rows[0]['id']), None


def _archive_start(session: Session, first_id: int) -> tuple[int, str]:
    """Where a chain beginning at ``first_id`` attaches: the checkpoint just before it, or the start."""
    if first_id == 1:
        return 1, ''
    found = session.scalar(sa.select(AuditArchive.last_hash).where(AuditArchive.last_event_id == first_id - 1))
    return (1, '') if found is None else (first_id, found)


def verify_archives(session: Session, contents: Sequence[bytes], *, batch: int = 2000) -> ChainReport:
    """Verify archive files and the live table as one chain.

    Each file must match a checkpoint's sha256 (so a file edited after archiving is named), the files'
    rows must chain on from row 1 or from an earlier checkpoint, and the live table must continue where
    the last file ends.

    :param contents: the archive files' bytes, in any order
    """
    files, problem = _archive_problem(session, contents)
    if problem is not None:
        return problem
    if not files:
        return verify_chain(session, batch=batch)
    expected_id, prev_hash = _archive_start(session, files[0].rows[0]['id'])
    checked = 0
    for row in (row for archive in files for row in archive.rows):
        code, reason = _row_break(row, expected_id, prev_hash)
        if code is not None:
            return ChainReport(checked, row['id'], reason, code, row['kind'], row['occurred_dt'])
        prev_hash, expected_id, checked = row['hash'], row['id'] + 1, checked + 1
    live = verify_chain(session, batch=batch, start=(expected_id, prev_hash))
    return dataclasses.replace(live, checked=live.checked + checked)


def _row_break(row: dict[str, Any], expected_id: int, prev_hash: str) -> tuple[str | None, str | None]:
    if row['id'] != expected_id:
        return 'missing', f'row {expected_id} is missing'
    if row['prev_hash'] != prev_hash:
        return 'prev_hash', 'prev_hash does not match the previous row'
    if compute_hash(prev_hash, row) != row['hash']:
        return 'hash', 'content does not match its hash'
    return None, None
