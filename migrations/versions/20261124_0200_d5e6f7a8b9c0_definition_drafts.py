"""Drafts of BPMN/DMN definitions edited in the browser modeler, and the lint warnings accepted at deploy.

Revision ID: d5e6f7a8b9c0
Revises: c4d5e6f7a8b9
Create Date: 2026-11-24 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'd5e6f7a8b9c0'
down_revision = 'c4d5e6f7a8b9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('definition_drafts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('xml', sa.Text(), nullable=False),
    sa.Column('based_on_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=False),
    sa.Column('updated_dt', sa.DateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('bpmn', 'dmn')", name=op.f('ck_definition_drafts_valid_kind')),
    sa.CheckConstraint('revision > 0', name=op.f('ck_definition_drafts_positive_revision')),
    sa.ForeignKeyConstraint(['based_on_id'], ['process_definitions.id'],
                            name=op.f('fk_definition_drafts_based_on_id_process_definitions')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_definition_drafts_created_by_id_users')),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_definition_drafts_updated_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_definition_drafts'))
    )
    with op.batch_alter_table('definition_drafts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_definition_drafts_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_definition_drafts_based_on_id'), ['based_on_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_definition_drafts_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_definition_drafts_updated_by_id'), ['updated_by_id'], unique=False)

    op.create_table('accepted_warnings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('element_id', sa.String(length=255), nullable=True),
    sa.Column('element_name', sa.String(length=200), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('accepted_by_id', sa.Integer(), nullable=True),
    sa.Column('accepted_dt', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['definition_id'], ['process_definitions.id'],
                            name=op.f('fk_accepted_warnings_definition_id_process_definitions')),
    sa.ForeignKeyConstraint(['accepted_by_id'], ['users.id'], name=op.f('fk_accepted_warnings_accepted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accepted_warnings'))
    )
    with op.batch_alter_table('accepted_warnings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accepted_warnings_definition_id'), ['definition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accepted_warnings_accepted_by_id'), ['accepted_by_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('accepted_warnings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accepted_warnings_accepted_by_id'))
        batch_op.drop_index(batch_op.f('ix_accepted_warnings_definition_id'))
    op.drop_table('accepted_warnings')
    with op.batch_alter_table('definition_drafts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_definition_drafts_updated_by_id'))
        batch_op.drop_index(batch_op.f('ix_definition_drafts_created_by_id'))
        batch_op.drop_index(batch_op.f('ix_definition_drafts_based_on_id'))
        batch_op.drop_index(batch_op.f('ix_definition_drafts_key'))
    op.drop_table('definition_drafts')
