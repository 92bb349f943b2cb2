"""Audit retention: archive checkpoints that keep the chain verifiable after old rows leave.

Adds ``audit_archives`` (append-only, like ``audit_events``) and lets the append-only guard of
``audit_events`` pass one kind of DELETE: rows already covered by a checkpoint. On PostgreSQL the deleting
transaction must also ``SET LOCAL fengqiao.audit_archive = 'on'`` (only ``engine.archive`` does); SQLite has
no such setting, so there the checkpoint alone opens the door.

Revision ID: c0d1e2f3a4b5
Revises: b9c0d1e2f3a4
Create Date: 2026-11-24 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'c0d1e2f3a4b5'
down_revision = 'b9c0d1e2f3a4'
branch_labels = None
depends_on = None

_PG_EVENTS_GUARD = """
    CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND current_setting('fengqiao.audit_archive', true) = 'on'
           AND OLD.id <= (SELECT coalesce(max(last_event_id), 0) FROM audit_archives) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_events is append-only';
    END $$
"""
_PG_EVENTS_GUARD_BEFORE = """
    CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$
"""
_SQLITE_DELETE_GUARD = """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN OLD.id > (SELECT coalesce(max(last_event_id), 0) FROM audit_archives)
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
"""
_SQLITE_DELETE_GUARD_BEFORE = """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
"""


def upgrade() -> None:
    op.create_table('audit_archives',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.Column('cutoff_dt', sa.DateTime(), nullable=False),
    sa.Column('first_event_id', sa.Integer(), nullable=False),
    sa.Column('last_event_id', sa.Integer(), nullable=False),
    sa.Column('last_hash', sa.String(length=64), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('file_sha256', sa.String(length=64), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.CheckConstraint('last_event_id >= first_event_id', name=op.f('ck_audit_archives_id_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_archives')),
    sa.UniqueConstraint('last_event_id', name=op.f('uq_audit_archives_last_event_id'))
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("""
            CREATE FUNCTION audit_archives_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit_archives is append-only'; END $$
        """)
        op.execute("""
            CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives
            FOR EACH ROW EXECUTE FUNCTION audit_archives_append_only()
        """)
        op.execute(_PG_EVENTS_GUARD)
    else:
        for action in ('UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER audit_archives_no_{action.lower()} BEFORE {action} ON audit_archives
                BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END
            """)
        op.execute('DROP TRIGGER IF EXISTS audit_events_no_delete')
        op.execute(_SQLITE_DELETE_GUARD)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_PG_EVENTS_GUARD_BEFORE)
        op.execute('DROP TRIGGER IF EXISTS audit_archives_no_change ON audit_archives')
        op.execute('DROP FUNCTION IF EXISTS audit_archives_append_only()')
    else:
        op.execute('DROP TRIGGER IF EXISTS audit_events_no_delete')
        op.execute(_SQLITE_DELETE_GUARD_BEFORE)
        op.execute('DROP TRIGGER IF EXISTS audit_archives_no_update')
        op.execute('DROP TRIGGER IF EXISTS audit_archives_no_delete')
    op.drop_table('audit_archives')
