"""``/healthz`` and ``/readyz``: what the proxy and orchestrator probe, unauthenticated and saying nothing more."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask
from flask.testing import FlaskClient

from config import TestConfig as AppConfig
from web.app import create_app
from web.core.health import migration_heads

ROOT = Path(__file__).resolve().parents[2]
#: nothing listens on port 1: the connection is refused at once
UNREACHABLE = 'postgresql+psycopg://fengqiao:secret-password@127.0.0.1:1/nowhere'


def test_healthz_answers_without_login_or_database() -> None:
    client = create_app(AppConfig(UNREACHABLE)).test_client()
    response = client.get('/healthz')
    assert response.status_code == 200 and response.get_json() == {'status': 'ok'}
    assert response.headers['Cache-Control'] == 'no-store' and 'Set-Cookie' not in response.headers


def test_readyz_is_200_on_a_migrated_database(client: FlaskClient) -> None:
    response = client.get('/readyz')
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {'status': 'ready', 'checks': {'database': 'ok', 'migrations': 'ok'}}
    assert 'Set-Cookie' not in response.headers


def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    client = create_app(AppConfig(UNREACHABLE)).test_client()
    response = client.get('/readyz')
    assert response.status_code == 503
    assert response.get_json() == {'status': 'unavailable', 'failed': ['database', 'migrations'],
                                   'checks': {'database': 'unreachable', 'migrations': 'unknown'}}
    body = response.get_data(as_text=True)
    assert '127.0.0.1' not in body and 'secret' not in body and 'Traceback' not in body


def test_readyz_is_503_when_migrations_are_behind(tmp_path: Path) -> None:
    # Its own database file whatever the backend under test: a shared database must stay at head.
    url = f'sqlite:///{tmp_path / "behind.db"}'
    cfg = AlembicConfig(str(ROOT / 'alembic.ini'))
    cfg.set_main_option('sqlalchemy.url', url)
    command.upgrade(cfg, 'head')
    command.downgrade(cfg, '-1')
    client = create_app(AppConfig(url)).test_client()
    response = client.get('/readyz')
    assert response.status_code == 503
    assert response.get_json()['checks'] == {'database': 'ok', 'migrations': 'behind'}
    command.upgrade(cfg, 'head')  # what init-db does on upgrade: ready again
    assert client.get('/readyz').status_code == 200


def test_probes_are_not_redirected_to_login_and_refuse_writes(app: Flask, client: FlaskClient) -> None:
    for path in ('/healthz', '/readyz'):
        assert client.get(path).status_code == 200
        assert client.post(path).status_code in (400, 405)  # no state to change; CSRF or method refuses it
    assert migration_heads() and len(migration_heads()) == 1


def test_readyz_is_503_on_a_database_never_initialised(tmp_path: Path) -> None:
    client = create_app(AppConfig(f'sqlite:///{tmp_path / "empty.db"}')).test_client()
    response = client.get('/readyz')
    assert response.status_code == 503 and response.get_json()['checks'] == {'database': 'ok',
                                                                              'migrations': 'behind'}
