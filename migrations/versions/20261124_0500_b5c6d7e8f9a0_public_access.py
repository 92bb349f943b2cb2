"""Public case page (一案一码): each case's 查询密码 hash and the lock its failed attempts set.

Revision ID: b5c6d7e8f9a0
Revises: a4b5c6d7e8f9
Create Date: 2026-11-24 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'b5c6d7e8f9a0'
down_revision = 'a4b5c6d7e8f9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('public_accesses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('pin_hash', sa.String(length=255), nullable=True),
    sa.Column('pin_issued_dt', sa.DateTime(), nullable=True),
    sa.Column('failed_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until_dt', sa.DateTime(), nullable=True),
    sa.CheckConstraint('failed_count >= 0', name=op.f('ck_public_accesses_failed_count_not_negative')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_public_accesses_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_public_accesses'))
    )
    with op.batch_alter_table('public_accesses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_public_accesses_case_id'), ['case_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('public_accesses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_public_accesses_case_id'))
    op.drop_table('public_accesses')
