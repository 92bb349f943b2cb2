"""Health checks for the reverse proxy and the orchestrator: ``/healthz`` (alive) and ``/readyz`` (ready).

Both are unauthenticated and say nothing about the data: ``/healthz`` answers without touching the database
(a process that answers is alive: restart it only when this fails); ``/readyz`` answers 200 only when the
database is reachable within a short timeout and its schema is at the newest migration (send traffic only
when this passes), else 503 with the failed checks named. Errors are logged, never returned: a connection
error can name the database host.

The worker records no heartbeat, so readiness does not look at it: a web process can serve while the
worker restarts, and a stalled worker shows as dead or overdue jobs at ``/supervision/incidents``.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, current_app, jsonify
from sqlalchemy.engine import Engine

from engine.db import create_db_engine
from web.core.logging import init_logging

ROOT = Path(__file__).resolve().parents[2]
#: seconds a readiness probe waits for the database before it reports it unreachable
DB_TIMEOUT_SECONDS = 2
_ENGINE_KEY = 'fengqiao_readiness_engine'
log = logging.getLogger(__name__)

bp = Blueprint('health', __name__)


def init_health(app: Flask) -> None:
    """Serve the health checks and log each request (what the proxy and orchestrator read of the app)."""
    app.register_blueprint(bp)
    init_logging(app)


@cache
def migration_heads() -> frozenset[str]:
    """The newest Alembic revisions in this code (read once per process: the code does not change)."""
    return frozenset(ScriptDirectory.from_config(AlembicConfig(str(ROOT / 'alembic.ini'))).get_heads())


def _readiness_engine() -> Engine:
    """An engine that gives up quickly: a probe must answer before the orchestrator's own timeout."""
    engine: Engine | None = current_app.extensions.get(_ENGINE_KEY)
    if engine is None:
        url = current_app.config['DATABASE_URL']
        if url.startswith('sqlite'):
            engine = current_app.extensions['fengqiao_db_engine']
        else:
            engine = create_db_engine(url, pool_size=1, max_overflow=0, pool_timeout=DB_TIMEOUT_SECONDS,
                                      connect_args={'connect_timeout': DB_TIMEOUT_SECONDS,
                                                    'options': f'-c statement_timeout={DB_TIMEOUT_SECONDS * 1000}'})
        current_app.extensions[_ENGINE_KEY] = engine
    return engine


def _check_database() -> dict[str, str]:
    """``{'database': ..., 'migrations': ...}``: each ``ok`` or what is wrong, in a word."""
    try:
        with _readiness_engine().connect() as conn:
            conn.execute(sa.text('SELECT 1'))
            migrations = _migration_state(conn)
    except Exception:
        log.warning('readiness: database unreachable', exc_info=True)
        return {'database': 'unreachable', 'migrations': 'unknown'}
    return {'database': 'ok', 'migrations': migrations}


def _migration_state(conn: sa.Connection) -> str:
    """``ok`` when the database's Alembic revisions are this code's heads, else ``behind``.

    Read straight from ``alembic_version`` (Alembic's MigrationContext would log two lines per probe).
    """
    try:
        with conn.begin_nested():
            current = frozenset(conn.scalars(sa.text('SELECT version_num FROM alembic_version')))
    except sa.exc.DBAPIError:  # no alembic_version: init-db never ran
        return 'behind'
    return 'ok' if current == migration_heads() else 'behind'


def _no_store(response: Response) -> Response:
    response.headers['Cache-Control'] = 'no-store'
    return response


@bp.route('/healthz')
def healthz() -> Any:
    """The process is alive and answering (no database access)."""
    return _no_store(jsonify(status='ok'))


@bp.route('/readyz')
def readyz() -> Any:
    """The database answers and its schema is current: 200, else 503 naming the failed checks."""
    checks = _check_database()
    failed = sorted(name for name, state in checks.items() if state != 'ok')
    if not failed:
        return _no_store(jsonify(status='ready', checks=checks))
    response = _no_store(jsonify(status='unavailable', checks=checks, failed=failed))
    response.status_code = 503
    return response
