"""The request's database session: opened lazily, closed at teardown; only BaseView commits."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from engine.db import create_db_engine, create_session_factory


def init_database(app: Flask) -> None:
    """Create the engine and session factory for ``app``'s DATABASE_URL."""
    engine = create_db_engine(app.config['DATABASE_URL'])
    app.extensions['fengqiao_db_engine'] = engine
    app.extensions['fengqiao_sessions'] = create_session_factory(engine)
    app.teardown_appcontext(_close_session)


def session_factory() -> sessionmaker[Session]:
    """The app's session factory (for CLI commands and background threads)."""
    factory: sessionmaker[Session] = current_app.extensions['fengqiao_sessions']
    return factory


def db() -> Session:
    """The session of the current request, opened on first use."""
    if 'db_session' not in g:
        g.db_session = session_factory()()
    session: Session = g.db_session
    return session


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop('db_session', None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()
