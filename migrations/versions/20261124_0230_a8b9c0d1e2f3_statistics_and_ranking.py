"""Statistics and 工作评比: ranking weights and monthly results.

Two tables: ``ranking_weights`` (a city's or the province's weights of the ranking measures) and
``ranking_snapshots`` (a published month, frozen). Three partial indexes let the dashboard's grouped queries
read the finished tasks and closed cases of a period, and the open tasks created since an instant, as one
index range each however large the tables grow.

Revision ID: a8b9c0d1e2f3
Revises: f7a8b9c0d1e2
Create Date: 2026-11-24 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'a8b9c0d1e2f3'
down_revision = 'f7a8b9c0d1e2'
branch_labels = None
depends_on = None

_FINISHED = sa.text('completed_dt IS NOT NULL')
_OPEN = sa.text("status = 'open'")
_CLOSED = sa.text('closed_dt IS NOT NULL')


def upgrade() -> None:
    op.create_table('ranking_weights',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('measure', sa.String(length=64), nullable=False),
    sa.Column('weight', sa.Numeric(precision=7, scale=2), nullable=False),
    sa.Column('set_by_id', sa.Integer(), nullable=True),
    sa.Column('set_dt', sa.DateTime(), nullable=False),
    sa.CheckConstraint('weight >= 0', name=op.f('ck_ranking_weights_non_negative_weight')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_ranking_weights_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['set_by_id'], ['users.id'], name=op.f('fk_ranking_weights_set_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ranking_weights')),
    sa.UniqueConstraint('org_unit_id', 'measure', name=op.f('uq_ranking_weights_org_unit_id_measure'))
    )
    with op.batch_alter_table('ranking_weights', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ranking_weights_org_unit_id'), ['org_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ranking_weights_set_by_id'), ['set_by_id'], unique=False)

    op.create_table('ranking_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('weights', sa.JSON(), nullable=False),
    sa.Column('results', sa.JSON(), nullable=False),
    sa.Column('published_by_id', sa.Integer(), nullable=True),
    sa.Column('published_dt', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'],
                            name=op.f('fk_ranking_snapshots_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_ranking_snapshots_published_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ranking_snapshots')),
    sa.UniqueConstraint('org_unit_id', 'month', name=op.f('uq_ranking_snapshots_org_unit_id_month'))
    )
    with op.batch_alter_table('ranking_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ranking_snapshots_org_unit_id'), ['org_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ranking_snapshots_published_by_id'), ['published_by_id'], unique=False)

    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_human_tasks_finished', ['completed_dt', 'org_path', 'status', 'process_key',
                                                          'bpmn_id', 'created_dt', 'due_dt'], unique=False,
                              postgresql_where=_FINISHED, sqlite_where=_FINISHED)
        batch_op.create_index('ix_human_tasks_open_created', ['created_dt', 'org_path', 'due_dt', 'status'],
                              unique=False, postgresql_where=_OPEN, sqlite_where=_OPEN)
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_closed', ['closed_dt', 'org_path'], unique=False,
                              postgresql_where=_CLOSED, sqlite_where=_CLOSED)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_closed', postgresql_where=_CLOSED, sqlite_where=_CLOSED)
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_human_tasks_open_created', postgresql_where=_OPEN, sqlite_where=_OPEN)
        batch_op.drop_index('ix_human_tasks_finished', postgresql_where=_FINISHED, sqlite_where=_FINISHED)

    with op.batch_alter_table('ranking_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ranking_snapshots_published_by_id'))
        batch_op.drop_index(batch_op.f('ix_ranking_snapshots_org_unit_id'))
    op.drop_table('ranking_snapshots')

    with op.batch_alter_table('ranking_weights', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ranking_weights_set_by_id'))
        batch_op.drop_index(batch_op.f('ix_ranking_weights_org_unit_id'))
    op.drop_table('ranking_weights')
