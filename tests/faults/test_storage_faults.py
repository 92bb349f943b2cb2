"""A database that cannot take writes: read-only, or out of disk space. Clear 503s, nothing half-written.

What is real and what is simulated:

* **PostgreSQL read-only** is real: ``ALTER DATABASE ... SET default_transaction_read_only = on``, as an
  operator does for maintenance (a hot standby answers writes the same way, SQLSTATE 25006).
* **PostgreSQL disk full** is simulated: filling a real disk needs a tablespace on a tiny filesystem, which
  needs root. A trigger raises the server's own error class instead, SQLSTATE 53100 ``disk_full`` with the
  message PostgreSQL writes, on the last insert of a completion (its audit events) or the first (the
  next task), so every other statement of the command has already run when it fails.
* **SQLite disk full** is real: ``PRAGMA max_page_count`` caps the database file at its current size on
  every connection of the app, and SQLite itself answers SQLITE_FULL ("database or disk is full").

In each case a write through the API answers 503 in the JSON error shape saying which fault it is, a
browser form answers the 503 error page, the database is exactly as before, and once the fault is gone
the same command succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from config import TestConfig as AppConfig
from engine import runtime
from engine.db import create_db_engine, create_session_factory
from engine.definitions import deploy
from engine.directory import add_membership, create_org_unit, create_user, get_group, issue_token
from engine.models.users import User
from tests.conftest import ROOT, migrate
from tests.faults.conftest import DEMO, REGISTER, START, OpenTask, Snapshot, snapshot
from tests.fixtures.directory import PASSWORD
from tests.fixtures.web import csrf_token, form_tokens
from web.app import create_app

MESSAGE_READ_ONLY = '数据库当前为只读状态，本次操作未能保存。请稍后重试或联系系统管理员。'
MESSAGE_DISK_FULL = '数据库存储空间已满，本次操作未能保存。请联系系统管理员。'
DISK_FULL_TRIGGER = """
CREATE FUNCTION fengqiao_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'could not extend file "base/16384/24601": No space left on device'
        USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
END $$;
CREATE TRIGGER fengqiao_test_disk_full BEFORE INSERT ON {table}
    FOR EACH ROW EXECUTE FUNCTION fengqiao_test_disk_full();
"""
DROP_DISK_FULL_TRIGGER = """
DROP TRIGGER IF EXISTS fengqiao_test_disk_full ON {table};
DROP FUNCTION IF EXISTS fengqiao_test_disk_full();
"""


def _complete_api(client: FlaskClient, task_id: int, token: str) -> tuple[int, dict[str, object]]:
    response = client.post(f'/api/v1/tasks/{task_id}/complete', json={'data': REGISTER},
                           headers={'Authorization': f'Bearer {token}'})
    return response.status_code, response.get_json()


def _assert_refused(status: int, body: dict[str, object], reason: str, message: str) -> None:
    assert status == 503, body
    assert body == {'error': 'service_unavailable', 'message': message, 'fields': {}, 'reason': reason}


def _assert_nothing_written(before: Snapshot, after: Snapshot) -> None:
    assert after == before  # task open, no next task, same revision, same audit events, chain intact
    assert after.task_status == 'open' and after.open_tasks == ('register',) and after.chain_ok


def _assert_completed_once(before: Snapshot, after: Snapshot) -> None:
    assert after.task_status == 'completed' and after.open_tasks == ('review',)
    assert after.revision == before.revision + 1 and after.chain_ok
    assert after.events.get('task.completed') == 1 and after.chain_checked == before.chain_checked + 2


def _refused_page(client: FlaskClient, task_id: int, tokens: dict[str, str]) -> str:
    """Submit the task's form in the browser: the 503 error page, as text."""
    response = client.post(f'/tasks/{task_id}', data={**{k: str(v) for k, v in REGISTER.items()}, **tokens})
    body = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers['Retry-After'] == '5', body[:2000]
    assert 'Traceback' not in body and 'sqlalchemy' not in body.lower()
    return body


def _reset_pool(app: Flask) -> None:
    """New connections for the app: database-level settings apply to connections opened after them."""
    engine: Engine = app.extensions['fengqiao_db_engine']
    engine.dispose()


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture
def admin_engine(db_engine: Engine) -> Iterator[Engine]:
    """Autocommit connections for ALTER DATABASE and DDL, read-write whatever the database's default."""
    engine = create_db_engine(db_engine.url.render_as_string(hide_password=False), isolation_level='AUTOCOMMIT',
                              connect_args={'options': '-c default_transaction_read_only=off'})
    yield engine
    engine.dispose()


@contextmanager
def read_only(admin_engine: Engine, app: Flask) -> Iterator[None]:
    """The database read-only for every new connection (the app's pool is renewed) until the block ends."""
    name = admin_engine.url.database
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    _reset_pool(app)
    try:
        yield
    finally:
        with admin_engine.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        _reset_pool(app)


@contextmanager
def disk_full_on(admin_engine: Engine, table: str) -> Iterator[None]:
    """Every insert into ``table`` fails as on a full disk (SQLSTATE 53100) until the block ends."""
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(DISK_FULL_TRIGGER.format(table=table))
    try:
        yield
    finally:
        with admin_engine.connect() as conn:
            conn.exec_driver_sql(DROP_DISK_FULL_TRIGGER.format(table=table))


@pytest.fixture
def browser(app: Flask, login: Callable[[str], FlaskClient], staff: dict[str, User]) -> FlaskClient:
    """Township staff logged in, as a browser."""
    return login('staff')


def _token(session: Session, user: User) -> str:
    token = issue_token(session, user)
    session.commit()
    return token


@pytest.mark.postgres
def test_read_only_database_refuses_writes_with_503_and_works_again_after(
        session: Session, db_engine: Engine, admin_engine: Engine, app: Flask, browser: FlaskClient,
        staff: dict[str, User], open_task: OpenTask) -> None:
    token = _token(session, staff['staff'])
    client = app.test_client()
    tokens = form_tokens(browser, f'/tasks/{open_task.task_id}')
    before = snapshot(db_engine, open_task)
    with read_only(admin_engine, app):
        status, body = _complete_api(client, open_task.task_id, token)
        _assert_refused(status, body, 'read_only', MESSAGE_READ_ONLY)
        assert MESSAGE_READ_ONLY in _refused_page(browser, open_task.task_id, tokens)
        assert client.get('/api/v1/tasks?view=group', headers={'Authorization': f'Bearer {token}'}).status_code == 200
    _assert_nothing_written(before, snapshot(db_engine, open_task))
    status, body = _complete_api(client, open_task.task_id, token)
    assert status == 200, body
    _assert_completed_once(before, snapshot(db_engine, open_task))


@pytest.mark.postgres
@pytest.mark.parametrize('table', ['audit_events', 'human_tasks'])
def test_disk_full_refuses_writes_with_503_and_leaves_nothing_half_written(
        session: Session, db_engine: Engine, admin_engine: Engine, app: Flask, browser: FlaskClient,
        staff: dict[str, User], open_task: OpenTask, table: str) -> None:
    token = _token(session, staff['staff'])
    client = app.test_client()
    tokens = form_tokens(browser, f'/tasks/{open_task.task_id}')
    before = snapshot(db_engine, open_task)
    with disk_full_on(admin_engine, table):
        status, body = _complete_api(client, open_task.task_id, token)
        _assert_refused(status, body, 'disk_full', MESSAGE_DISK_FULL)
        assert MESSAGE_DISK_FULL in _refused_page(browser, open_task.task_id, tokens)
    _assert_nothing_written(before, snapshot(db_engine, open_task))
    status, body = _complete_api(client, open_task.task_id, token)
    assert status == 200, body
    _assert_completed_once(before, snapshot(db_engine, open_task))


# -- SQLite (its own database file whatever the backend under test) ------------------------------------


@pytest.fixture
def sqlite_case(tmp_path: Path) -> Iterator[tuple[str, OpenTask]]:
    """A migrated SQLite file holding the demo case at its first task, and its township staff ``staff``."""
    url = f'sqlite:///{tmp_path / "full.db"}'
    migrate(url)
    engine = create_db_engine(url)
    with create_session_factory(engine)() as s:
        province = create_org_unit(s, '430000', '湖南省司法厅', 'province', None)
        township = create_org_unit(s, '430922101', '桃花江镇司法所', 'township', province)
        user = create_user(s, 'staff', '刘晓燕', PASSWORD, township, actor=None)
        add_membership(s, user, get_group(s, 'township_staff', 'township_staff'), township, actor=None)
        deploy(s, (ROOT / DEMO).read_bytes(), actor=None, filename=DEMO, accept_warnings=True)
        case, (task,) = runtime.start_case(s, 'demo_intake', START, actor=user, org_unit=township)
        s.commit()
        target = OpenTask(case.id, task.instance_id, task.id)
    engine.dispose()
    yield url, target


@contextmanager
def file_size_capped(engine: Engine) -> Iterator[int]:
    """Cap the database at its current size on every connection ``engine`` opens, until the block ends."""
    with engine.connect() as conn:
        pages = int(conn.exec_driver_sql('PRAGMA page_count').scalar() or 0)

    def cap(dbapi_connection: Any, record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f'PRAGMA max_page_count = {pages}')
        cursor.close()

    event.listen(engine, 'connect', cap)
    engine.dispose()
    try:
        yield pages
    finally:  # space freed
        event.remove(engine, 'connect', cap)
        engine.dispose()


def test_sqlite_disk_full_refuses_writes_with_503_and_leaves_nothing_half_written(
        sqlite_case: tuple[str, OpenTask]) -> None:
    url, target = sqlite_case
    app = create_app(AppConfig(url))
    app_engine: Engine = app.extensions['fengqiao_db_engine']
    check = create_db_engine(url)
    with create_session_factory(check)() as s:
        user = s.scalars(sa.select(User).where(User.username == 'staff')).one()
        token = _token(s, user)
    browser = app.test_client()
    assert browser.post('/login', data={'username': 'staff', 'password': PASSWORD,
                                        'csrf_token': csrf_token(browser)}).status_code == 302
    tokens = form_tokens(browser, f'/tasks/{target.task_id}')
    client = app.test_client()
    before = snapshot(check, target)
    try:
        with file_size_capped(app_engine) as pages:
            status, body = _complete_api(client, target.task_id, token)
            _assert_refused(status, body, 'disk_full', MESSAGE_DISK_FULL)
            assert MESSAGE_DISK_FULL in _refused_page(browser, target.task_id, tokens)
            _assert_nothing_written(before, snapshot(check, target))
            with app_engine.connect() as conn:
                assert conn.exec_driver_sql('PRAGMA integrity_check').scalar() == 'ok'
                assert conn.exec_driver_sql('PRAGMA page_count').scalar() == pages
        status, body = _complete_api(client, target.task_id, token)
        assert status == 200, body
        _assert_completed_once(before, snapshot(check, target))
    finally:
        check.dispose()
