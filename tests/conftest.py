"""Test configuration: one migrated database per run, reset for every test.

``FENGQIAO_TEST_DATABASE`` selects the backend: unset for SQLite (a migrated template file copied per
test), or a PostgreSQL URL (migrated once, every table truncated per test).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.db import Base, create_db_engine, create_session_factory

pytest_plugins = ['tests.fixtures.directory', 'tests.fixtures.engine', 'tests.fixtures.web']

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get('FENGQIAO_TEST_DATABASE', '')


def _alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig(str(ROOT / 'alembic.ini'))
    cfg.set_main_option('sqlalchemy.url', url)
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema through the real migrations."""
    command.upgrade(_alembic_config(url), 'head')


def rerun_migration(session: Session, revision: str) -> None:
    """Commit, then take the session's database back to just before ``revision`` and up to head again, so that
    the migration runs over the rows the test made (its backfill, say)."""
    cfg = _alembic_config(session.get_bind().url.render_as_string(hide_password=False))
    session.commit()
    session.close()
    command.downgrade(cfg, f'{revision}-1')
    command.upgrade(cfg, 'head')


@contextmanager
def executed_statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The SQL sent to the session's database inside the block, as (statement, parameters) for the driver."""
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    engine = session.get_bind()
    sa.event.listen(engine, 'before_cursor_execute', keep)
    try:
        yield statements
    finally:
        sa.event.remove(engine, 'before_cursor_execute', keep)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # PostgreSQL-only tests run in the PostgreSQL pass of the suite (see Makefile), not in the SQLite pass.
    if POSTGRES_URL:
        return
    selected = [item for item in items if 'postgres' not in item.keywords]
    deselected = [item for item in items if 'postgres' in item.keywords]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope='session')
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database: a template file (SQLite) or the PostgreSQL test database."""
    if POSTGRES_URL:
        db = create_db_engine(POSTGRES_URL)
        with db.begin() as conn:
            conn.execute(sa.text('DROP SCHEMA public CASCADE'))
            conn.execute(sa.text('CREATE SCHEMA public'))
        db.dispose()
        migrate(POSTGRES_URL)
        return POSTGRES_URL
    path = tmp_path_factory.mktemp('template') / 'template.db'
    migrate(f'sqlite:///{path}')
    return str(path)


def _truncate_all(db: Engine) -> None:
    tables = ', '.join(t.name for t in Base.metadata.sorted_tables)
    with db.begin() as conn:
        conn.execute(sa.text(f'TRUNCATE {tables} RESTART IDENTITY CASCADE'))
        conn.execute(sa.text("INSERT INTO audit_chain_head (id, last_event_id, last_hash) VALUES (1, 0, '')"))


@pytest.fixture
def db_url(template_db: str, tmp_path: Path) -> str:
    """URL of a fresh, migrated, empty database for this test."""
    if POSTGRES_URL:
        return POSTGRES_URL
    path = tmp_path / 'test.db'
    shutil.copyfile(template_db, path)
    return f'sqlite:///{path}'


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    db = create_db_engine(db_url)
    if POSTGRES_URL:
        _truncate_all(db)
    yield db
    db.dispose()


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(db_engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for arranging and asserting; tests commit through it like a request would."""
    with session_factory() as s:
        yield s


@pytest.fixture(autouse=True, scope='session')
def _domain_registered() -> None:
    """Register the domain's case profiles (the app does it at start) and cheap password hashing."""
    import workflows
    from engine.directory import configure_hashing
    from engine.profiles import CaseProfile, register_profile
    from workflows.shared.id_numbers import id_number_field_problems
    workflows.register()
    # The small two-lane diagram most engine, API and web tests drive (tests/fixtures/bpmn/demo_intake.bpmn).
    register_profile('demo_intake', CaseProfile(prefix='YS', start_field='received_on',
                                                validate=id_number_field_problems))
    # Still argon2id, with parameters cheap enough for thousands of test logins.
    configure_hashing(time_cost=1, memory_cost=1024)
