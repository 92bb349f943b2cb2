"""engine.db: the engine each backend gets; on SQLite every statement of a transaction is inside it."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.clock import now
from engine.db import create_db_engine, unflushed
from engine.models.calendar import CalendarOverride
from engine.models.org_units import OrgUnit


def _units(db_engine: Engine) -> list[str]:
    with Session(db_engine) as s:
        return list(s.scalars(sa.select(OrgUnit.code).order_by(OrgUnit.code)))


def _add_unit(session: Session, code: str) -> None:
    session.add(OrgUnit(code=code, name=f'单位{code}', level='province', path=f'/{code}/', created_dt=now()))
    session.flush()


def test_a_savepoint_as_the_first_statement_rolls_back_what_it_wrapped(session: Session,
                                                                        db_engine: Engine) -> None:
    # pysqlite's default handling would run this SAVEPOINT in autocommit: its "rollback" kept the row.
    savepoint = session.begin_nested()
    _add_unit(session, '110000')
    savepoint.rollback()
    session.commit()
    assert _units(db_engine) == []


def test_an_outer_rollback_undoes_a_released_savepoint_opened_first(session: Session, db_engine: Engine) -> None:
    with session.begin_nested():
        _add_unit(session, '120000')
    _add_unit(session, '130000')
    session.rollback()
    assert _units(db_engine) == []


def test_a_released_savepoint_opened_first_is_kept_by_the_outer_commit(session: Session,
                                                                        db_engine: Engine) -> None:
    with session.begin_nested():
        _add_unit(session, '140000')
    _add_unit(session, '150000')
    session.commit()
    assert _units(db_engine) == ['140000', '150000']


def test_an_autocommit_sqlite_engine_opens_no_transaction_for_a_savepoint(tmp_path: Path) -> None:
    engine = create_db_engine(f'sqlite:///{tmp_path / "plain.db"}', isolation_level='AUTOCOMMIT')
    try:
        with engine.connect() as conn:
            conn.execute(sa.text('CREATE TABLE t (x INTEGER)'))
            conn.execute(sa.text('VACUUM'))  # refused inside a transaction
            dbapi_connection = conn.connection.dbapi_connection
            assert dbapi_connection is not None and not dbapi_connection.in_transaction
    finally:
        engine.dispose()


def test_unflushed_names_the_added_changed_and_deleted_objects_of_one_model(session: Session) -> None:
    for code in ('91', '92', '93'):
        _add_unit(session, code)
    kept, changed, deleted = (session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one()
                              for code in ('91', '92', '93'))
    assert list(unflushed(session, OrgUnit)) == []
    changed.name = '改名'
    session.delete(deleted)
    added = OrgUnit(code='94', name='单位94', level='province', path='/94/', created_dt=now())
    session.add(added)
    session.add(CalendarOverride(day=now().date(), is_workday=True, org_unit_id=None, created_dt=now()))
    assert {unit.code for unit in unflushed(session, OrgUnit)} == {'92', '93', '94'}
    assert kept not in list(unflushed(session, OrgUnit))
    session.flush()
    assert list(unflushed(session, OrgUnit)) == []
