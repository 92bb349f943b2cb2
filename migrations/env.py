"""Alembic environment: the URL comes from the caller (init-db) or DATABASE_URL."""

from __future__ import annotations

from alembic import context

import engine.models.all  # noqa: F401  (every model registers its table)
from config import Config
from engine.db import Base, create_db_engine

target_metadata = Base.metadata


def _url() -> str:
    return context.config.get_main_option('sqlalchemy.url') or Config.DATABASE_URL


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = context.config.attributes.get('connection')
    if connectable is not None:
        _run(connectable)
        return
    db = create_db_engine(_url())
    with db.connect() as connection:
        _run(connection)
    db.dispose()


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
