"""Declarative base, column types and session factory shared by every model."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    'ix': 'ix_%(table_name)s_%(column_0_N_name)s',
    'uq': 'uq_%(table_name)s_%(column_0_N_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and always returned timezone-aware.

    SQLite keeps no zone; PostgreSQL's ``timestamptz`` would. Storing naive UTC on both keeps
    comparisons and indexes identical across the two databases.
    """

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError('naive datetime given to a UTC column')
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def prefix_text(length: int) -> sa.types.TypeEngine[str]:
    """A string column searched by prefix (org paths, case numbers, names): byte order on both databases.

    Under a non-C collation PostgreSQL can use neither ``LIKE 'x%'`` nor a range on a btree index correctly;
    SQLite's BINARY collation already compares bytes.
    """
    return sa.String(length).with_variant(sa.String(length, collation='C'), 'postgresql')


def starts_with(column: Any, prefix: str) -> sa.ColumnElement[bool]:
    """``column`` begins with ``prefix``, as one index range (see :func:`prefix_text`)."""
    if not prefix:
        return sa.true()
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return sa.and_(column >= prefix, column.startswith(prefix, autoescape=True))
    return sa.and_(column >= prefix, column < prefix[:-1] + chr(last + 1))


class _SqliteUnindexed(FunctionElement[Any]):
    """A column that SQLite's planner may not look up in an index (a unary ``+``); the column itself elsewhere."""

    name = 'sqlite_unindexed'
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(_SqliteUnindexed)
def _unindexed(element: _SqliteUnindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return compiler.process(column, **kw)


@compiles(_SqliteUnindexed, 'sqlite')
def _unindexed_sqlite(element: _SqliteUnindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return '+' + _unindexed(element, compiler, **kw)


def sqlite_unindexed(column: Any) -> sa.ColumnElement[Any]:
    """``column``, as a term SQLite may filter on but not seek an index by; unchanged on PostgreSQL.

    For a filter SQLite cannot cost: it keeps no statistics of how many rows a range holds, and would read a
    whole province through a range index and sort it rather than walk an index already in the wanted order.
    PostgreSQL's statistics tell the two apart, and a range there must stay free to use its index.
    """
    return _SqliteUnindexed(column)


class Base(DeclarativeBase):
    """The one declarative base; its metadata names every constraint the same way on both databases."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: sa.JSON()}


def format_repr(obj: object, *attrs: str, **defaults: object) -> str:
    """Build a ``<Class(a=1, b='x', flag=True)>`` repr.

    :param attrs: attributes always shown
    :param defaults: attributes shown only when they differ from the given default
    """
    parts = [f'{name}={getattr(obj, name)!r}' for name in attrs]
    parts += [f'{name}={getattr(obj, name)!r}' for name, default in defaults.items()
              if getattr(obj, name) != default]
    return f'<{type(obj).__name__}({", ".join(parts)})>'


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web server read while the worker writes; busy_timeout turns lock waits into waits,
    # not immediate "database is locked" errors.
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA foreign_keys=ON')
    cursor.execute('PRAGMA busy_timeout=10000')
    cursor.execute('PRAGMA synchronous=NORMAL')
    cursor.close()


def _sqlite_begin_before_savepoint(conn: sa.Connection, name: str) -> None:
    """Open the transaction before a SAVEPOINT that would otherwise be its first statement.

    pysqlite emits BEGIN only before DML. A SAVEPOINT outside a transaction starts one that its own
    RELEASE commits, so ``session.begin_nested()`` as a first statement would protect nothing: the
    outer rollback could no longer undo what the savepoint wrapped.

    Not SQLAlchemy's full recipe (driver transactions off, BEGIN on every ``begin``): that makes every
    SQLite transaction a snapshot from its first SELECT, which PostgreSQL's READ COMMITTED is not, and
    turns a read-then-write transaction racing another writer into "database is locked"
    (SQLITE_BUSY_SNAPSHOT). Reads keep pysqlite's behaviour; only the savepoint gets its transaction.
    """
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None or dbapi_connection.isolation_level is None:
        return  # AUTOCOMMIT: no transaction wanted
    if not dbapi_connection.in_transaction:
        conn.exec_driver_sql('BEGIN')


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create the SQLAlchemy engine for ``url`` with the settings each backend needs.

    On SQLite a savepoint always runs inside a transaction (:func:`_sqlite_begin_before_savepoint`); on
    PostgreSQL the pool pings a connection before handing it out, so a restarted server costs the
    requests of the outage, not every pooled connection's next request, and JIT compilation is off: for
    the short queries of a to-do list it took longer than the query itself (440 ms compiling a 340 ms
    wide list at a million tasks).

    :param url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``)
    """
    if url.startswith('sqlite'):
        engine = sa.create_engine(url, connect_args={'check_same_thread': False, 'timeout': 10}, **kwargs)
        event.listen(engine, 'connect', _sqlite_pragmas)
        event.listen(engine, 'savepoint', _sqlite_begin_before_savepoint)
        return engine
    if url.startswith('postgresql'):
        connect_args = kwargs.pop('connect_args', {})
        kwargs['connect_args'] = {**connect_args, 'options': f"{connect_args.get('options', '')} -c jit=off".strip()}
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine``; objects stay usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for a CLI command or worker job: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


_M = TypeVar('_M')


def unflushed(session: Session, model: type[_M]) -> Iterator[_M]:
    """The objects of ``model`` that ``session`` added, changed or deleted and has not written yet.

    A query needs the flush that autoflush would send only if one of these could be among its rows: every other
    pending change can wait for the command's next flush, and each flush costs about as much as a statement.
    """
    return (held for held in (*session.new, *session.dirty, *session.deleted) if isinstance(held, model))
