"""``flask --app wsgi audit archive`` and ``audit verify --archive``: retention as the operator runs it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import FrozenClock
from engine.models.audit import AuditEvent
from engine.models.audit_archive import AuditArchive


@pytest.fixture
def aged(session: Session, clock: FrozenClock) -> FrozenClock:
    """Four events on 2025-09-26, two more seven months later; the clock stays at the later day."""
    for index in range(4):
        audit.record(session, 'test.old', actor=None, after={'n': index})
    session.commit()
    clock.advance(timedelta(days=215))
    for index in range(2):
        audit.record(session, 'test.new', actor=None, after={'n': index})
    session.commit()
    return clock


def _count(session: Session) -> int:
    session.expire_all()
    return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) or 0


def test_archive_then_verify_with_and_without_the_file(app: Flask, session: Session, aged: FrozenClock,
                                                       tmp_path: Path) -> None:
    out = tmp_path / 'audit-2025.jsonl'
    runner = app.test_cli_runner()
    result = runner.invoke(args=['audit', 'archive', '--before', '2025-10-01', '--out', str(out)])
    assert result.exit_code == 0, result.output
    assert '已归档 4 条审计记录（第 1 至第 4 条）' in result.output and out.exists()
    assert len(out.read_text(encoding='utf-8').splitlines()) == 4 and _count(session) == 3
    verify = runner.invoke(args=['audit', 'verify'])
    assert verify.exit_code == 0 and '共校验 3 条记录' in verify.output
    whole = runner.invoke(args=['audit', 'verify', '--archive', str(out)])
    assert whole.exit_code == 0 and '共校验 7 条记录' in whole.output
    out.write_text(out.read_text(encoding='utf-8').replace('"n":1', '"n":9'), encoding='utf-8')
    edited = runner.invoke(args=['audit', 'verify', '--archive', str(out)])
    assert edited.exit_code == 1 and '归档文件' in edited.output


def test_a_cutoff_inside_the_retention_period_is_refused(app: Flask, session: Session, aged: FrozenClock,
                                                         tmp_path: Path) -> None:
    out = tmp_path / 'too-new.jsonl'
    runner = app.test_cli_runner()
    result = runner.invoke(args=['audit', 'archive', '--before', '2026-01-01', '--out', str(out)])
    assert result.exit_code == 1 and '至少保留 6 个月' in result.output
    longer = runner.invoke(args=['audit', 'archive', '--before', '2025-10-01', '--out', str(out)],
                           env={'FENGQIAO_AUDIT_RETENTION_MONTHS': '12'})
    assert longer.exit_code == 1 and '至少保留 12 个月' in longer.output
    shorter = runner.invoke(args=['audit', 'archive', '--before', '2025-10-01', '--out', str(out),
                                  '--retention-months', '3'])
    assert shorter.exit_code == 2
    assert not out.exists() and _count(session) == 6
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditArchive)) == 0


def test_an_existing_file_is_never_overwritten(app: Flask, session: Session, aged: FrozenClock,
                                               tmp_path: Path) -> None:
    out = tmp_path / 'kept.jsonl'
    out.write_text('earlier archive', encoding='utf-8')
    result = app.test_cli_runner().invoke(args=['audit', 'archive', '--before', '2025-10-01', '--out', str(out)])
    assert result.exit_code == 1 and '已存在' in result.output
    assert out.read_text(encoding='utf-8') == 'earlier archive' and _count(session) == 6
