"""Backup and restore as docs/production.md prescribes: ``pg_dump -Fc`` then ``pg_restore`` into a fresh database.

PostgreSQL only (the PostgreSQL pass: ``FENGQIAO_TEST_DATABASE``). The restored database must hold the same
rows, its audit chain must verify (also after an archive run), its append-only guards must still hold, and
the app must run on it.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from config import TestConfig as AppConfig
from engine import runtime
from engine.access import load_scope
from engine.archive import archive_events
from engine.audit import verify_chain
from engine.clock import FrozenClock
from engine.db import Base, create_db_engine, create_session_factory
from engine.models.audit import AuditEvent
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.tasks import claim_task
from tests.fixtures.directory import Org
from web.app import create_app

pytestmark = pytest.mark.postgres

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试案件',
         'id_number': '431381198503120015'}
REGISTER = {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实，情况清楚'}


def _tool(name: str) -> str:
    path = shutil.which(name) or (f'/usr/bin/{name}' if Path(f'/usr/bin/{name}').exists() else None)
    if path is None:
        pytest.fail(f'{name} is not installed: install the PostgreSQL client tools (apt-get install postgresql-client)')
    return path


def _libpq_args(url: URL) -> list[str]:
    return ['-h', url.host or '127.0.0.1', '-p', str(url.port or 5432), '-U', url.username or 'postgres']


def _env(url: URL) -> dict[str, str]:
    return {**os.environ, **({'PGPASSWORD': url.password} if url.password else {})}


@pytest.fixture
def restore_url(db_url: str) -> Iterator[str]:
    """A fresh, empty database next to the test database (``<name>_restore``), dropped afterwards."""
    source = make_url(db_url)
    target = source.set(database=f'{source.database}_restore')
    admin = create_db_engine(source.set(database='postgres').render_as_string(hide_password=False),
                             isolation_level='AUTOCOMMIT')
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    yield target.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def _dump_and_restore(source_url: str, target_url: str, folder: Path) -> Path:
    """``pg_dump -Fc`` the source, ``pg_restore`` it into the target: the commands of docs/production.md."""
    source, target = make_url(source_url), make_url(target_url)
    dump = folder / 'fengqiao.dump'
    subprocess.run([_tool('pg_dump'), '-Fc', *_libpq_args(source), '-d', str(source.database), '-f', str(dump)],
                   env=_env(source), check=True, capture_output=True)
    subprocess.run([_tool('pg_restore'), '--no-owner', '--exit-on-error', *_libpq_args(target),
                    '-d', str(target.database), str(dump)], env=_env(target), check=True, capture_output=True)
    return dump


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {table.name: conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0
                for table in Base.metadata.sorted_tables}


@pytest.fixture
def busy_database(session: Session, org: Org, create_member: Callable[..., User],
                  deploy_file: Callable[[str], object], clock: FrozenClock) -> User:
    """Cases started, a task claimed and one completed, through the engine: rows in most tables, audit events."""
    import engine.models.all  # noqa: F401  (every table in the metadata, for the row counts)
    staff = create_member('staff', 'township_staff', org.township, display_name='刘晓燕')
    deploy_file(DEMO)
    for number in range(3):
        runtime.start_case(session, 'demo_intake', {**START, 'summary': f'案件 {number}'}, actor=staff,
                           org_unit=org.township)
        session.commit()
    scope = load_scope(session, staff)
    first, second = session.scalars(sa.select(HumanTask).order_by(HumanTask.id).limit(2)).all()
    claim_task(session, first.id, actor=staff, scope=scope)
    session.commit()
    runtime.complete_task(session, second.id, REGISTER, actor=staff, scope=scope)
    session.commit()
    return staff


def test_dump_and_restore_keep_every_row_and_a_verifiable_chain(session: Session, db_engine: Engine,
                                                                busy_database: User, restore_url: str,
                                                                tmp_path: Path) -> None:
    before = _counts(db_engine)
    assert before['cases'] == 3 and before['human_tasks'] >= 3 and before['audit_events'] >= 5
    dump = _dump_and_restore(str(db_engine.url.render_as_string(hide_password=False)), restore_url, tmp_path)
    assert dump.stat().st_size > 0
    restored = create_db_engine(restore_url)
    try:
        assert _counts(restored) == before
        with create_session_factory(restored)() as copy:
            report = verify_chain(copy)
            assert report.ok and report.checked == before['audit_events']
            with pytest.raises(DBAPIError):  # the append-only guard came back with the schema
                copy.execute(sa.text('DELETE FROM audit_events WHERE id = 1'))
            copy.rollback()
    finally:
        restored.dispose()
    app = create_app(AppConfig(restore_url))
    result = app.test_cli_runner().invoke(args=['audit', 'verify'])
    assert result.exit_code == 0 and f'共校验 {before["audit_events"]} 条记录' in result.output
    assert app.test_client().get('/readyz').status_code == 200


def test_a_restore_after_an_archive_still_verifies_from_the_checkpoint(session: Session, db_engine: Engine,
                                                                       busy_database: User, clock: FrozenClock,
                                                                       restore_url: str, tmp_path: Path) -> None:
    archived = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    clock.advance(timedelta(days=220))
    out = io.BytesIO()
    result = archive_events(session, date(2025, 10, 1), out, file_name='audit-2025.jsonl')
    session.commit()
    assert result.count == archived
    archive_file = tmp_path / 'audit-2025.jsonl'
    archive_file.write_bytes(out.getvalue())
    _dump_and_restore(str(db_engine.url.render_as_string(hide_password=False)), restore_url, tmp_path)
    runner = create_app(AppConfig(restore_url)).test_cli_runner()
    live = runner.invoke(args=['audit', 'verify'])
    assert live.exit_code == 0 and '共校验 1 条记录' in live.output  # the archive run's own record
    whole = runner.invoke(args=['audit', 'verify', '--archive', str(archive_file)])
    assert whole.exit_code == 0 and f'共校验 {archived + 1} 条记录' in whole.output
