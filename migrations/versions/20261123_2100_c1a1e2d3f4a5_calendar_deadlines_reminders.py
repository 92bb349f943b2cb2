"""calendar overrides, case clocks, escalation flags, notification dedupe keys, user email

Revision ID: c1a1e2d3f4a5
Revises: e5e1464313bc
Create Date: 2026-11-23 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = 'c1a1e2d3f4a5'
down_revision = 'e5e1464313bc'
branch_labels = None
depends_on = None

_GLOBAL = sa.text('org_unit_id IS NULL')


def upgrade() -> None:
    op.create_table('calendar_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('is_workday', sa.Boolean(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_calendar_overrides_created_by_id_users')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_calendar_overrides_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_overrides')),
    sa.UniqueConstraint('day', 'org_unit_id', name=op.f('uq_calendar_overrides_day_org_unit_id'))
    )
    with op.batch_alter_table('calendar_overrides', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_overrides_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calendar_overrides_day'), ['day'], unique=False)
        batch_op.create_index(batch_op.f('ix_calendar_overrides_org_unit_id'), ['org_unit_id'], unique=False)
        batch_op.create_index('uq_calendar_overrides_day_global', ['day'], unique=True,
                              postgresql_where=_GLOBAL, sqlite_where=_GLOBAL)

    op.create_table('case_clocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('length', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('start_on', sa.Date(), nullable=False),
    sa.Column('from_label', sa.String(length=100), nullable=True),
    sa.Column('basis', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('paused_since', sa.Date(), nullable=True),
    sa.Column('pauses', sa.JSON(), nullable=False),
    sa.Column('extended_due_on', sa.Date(), nullable=True),
    sa.Column('extended_on', sa.Date(), nullable=True),
    sa.Column('extension_reason', sa.Text(), nullable=True),
    sa.Column('due_dt', sa.DateTime(), nullable=True),
    sa.Column('due_rule', sa.JSON(), nullable=True),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.Column('stopped_dt', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'paused', 'stopped')", name=op.f('ck_case_clocks_valid_status')),
    sa.CheckConstraint("unit IN ('working_days', 'calendar_days')", name=op.f('ck_case_clocks_valid_unit')),
    sa.CheckConstraint('length >= 0', name=op.f('ck_case_clocks_non_negative_length')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_clocks_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_clocks')),
    sa.UniqueConstraint('case_id', 'name', name=op.f('uq_case_clocks_case_id_name'))
    )
    with op.batch_alter_table('case_clocks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_clocks_case_id'), ['case_id'], unique=False)

    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_escalated', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('escalated_dt', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('escalated_to_group', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('escalated_org_unit_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_human_tasks_escalated_org_unit_id'), ['escalated_org_unit_id'],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_human_tasks_escalated_org_unit_id_org_units'), 'org_units',
                                    ['escalated_org_unit_id'], ['id'])

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_notifications_dedupe_key'), ['dedupe_key'])

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('email')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_notifications_dedupe_key'), type_='unique')
        batch_op.drop_column('dedupe_key')

    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_human_tasks_escalated_org_unit_id_org_units'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_human_tasks_escalated_org_unit_id'))
        batch_op.drop_column('escalated_org_unit_id')
        batch_op.drop_column('escalated_to_group')
        batch_op.drop_column('escalated_dt')
        batch_op.drop_column('is_escalated')

    with op.batch_alter_table('case_clocks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_clocks_case_id'))

    op.drop_table('case_clocks')
    with op.batch_alter_table('calendar_overrides', schema=None) as batch_op:
        batch_op.drop_index('uq_calendar_overrides_day_global', postgresql_where=_GLOBAL, sqlite_where=_GLOBAL)
        batch_op.drop_index(batch_op.f('ix_calendar_overrides_org_unit_id'))
        batch_op.drop_index(batch_op.f('ix_calendar_overrides_day'))
        batch_op.drop_index(batch_op.f('ix_calendar_overrides_created_by_id'))

    op.drop_table('calendar_overrides')
