"""Migrating running instances between definition versions: batches and their per-instance results.

Revision ID: e6f7a8b9c0d1
Revises: d5e6f7a8b9c0
Create Date: 2026-11-24 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'e6f7a8b9c0d1'
down_revision = 'd5e6f7a8b9c0'
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table('migration_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('from_definition_id', sa.Integer(), nullable=False),
    sa.Column('from_version', sa.Integer(), nullable=False),
    sa.Column('to_definition_id', sa.Integer(), nullable=False),
    sa.Column('to_version', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('total_count', sa.Integer(), nullable=False),
    sa.Column('migrated_count', sa.Integer(), nullable=False),
    sa.Column('failed_count', sa.Integer(), nullable=False),
    sa.Column('skipped_count', sa.Integer(), nullable=False),
    sa.Column('finished_dt', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done')", name=op.f('ck_migration_batches_valid_status')),
    sa.CheckConstraint('from_definition_id <> to_definition_id',
                       name=op.f('ck_migration_batches_different_versions')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_migration_batches_created_by_id_users')),
    sa.ForeignKeyConstraint(['from_definition_id'], ['process_definitions.id'],
                            name=op.f('fk_migration_batches_from_definition_id_process_definitions')),
    sa.ForeignKeyConstraint(['to_definition_id'], ['process_definitions.id'],
                            name=op.f('fk_migration_batches_to_definition_id_process_definitions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_migration_batches'))
    )
    with op.batch_alter_table('migration_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_migration_batches_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_migration_batches_from_definition_id'), ['from_definition_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_migration_batches_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_migration_batches_to_definition_id'), ['to_definition_id'],
                              unique=False)

    op.create_table('migration_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('finished_dt', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'migrated', 'failed', 'skipped')",
                       name=op.f('ck_migration_items_valid_status')),
    sa.ForeignKeyConstraint(['batch_id'], ['migration_batches.id'],
                            name=op.f('fk_migration_items_batch_id_migration_batches')),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instances.id'],
                            name=op.f('fk_migration_items_instance_id_process_instances')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_migration_items')),
    sa.UniqueConstraint('batch_id', 'instance_id', name=op.f('uq_migration_items_batch_id_instance_id'))
    )
    with op.batch_alter_table('migration_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_migration_items_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_migration_items_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index('ix_migration_items_pending', ['batch_id', 'id'], unique=False,
                              postgresql_where=_PENDING, sqlite_where=_PENDING)


def downgrade() -> None:
    with op.batch_alter_table('migration_items', schema=None) as batch_op:
        batch_op.drop_index('ix_migration_items_pending', postgresql_where=_PENDING, sqlite_where=_PENDING)
        batch_op.drop_index(batch_op.f('ix_migration_items_instance_id'))
        batch_op.drop_index(batch_op.f('ix_migration_items_batch_id'))
    op.drop_table('migration_items')

    with op.batch_alter_table('migration_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_migration_batches_to_definition_id'))
        batch_op.drop_index(batch_op.f('ix_migration_batches_key'))
        batch_op.drop_index(batch_op.f('ix_migration_batches_from_definition_id'))
        batch_op.drop_index(batch_op.f('ix_migration_batches_created_by_id'))
    op.drop_table('migration_batches')
