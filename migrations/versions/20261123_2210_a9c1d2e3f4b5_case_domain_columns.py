"""Domain columns on cases that staff search and report on (legal-rules §2.5, §3.5).

Revision ID: a9c1d2e3f4b5
Revises: f3a4b5c6d7e8
Create Date: 2026-11-23 22:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'a9c1d2e3f4b5'
down_revision = 'f3a4b5c6d7e8'
branch_labels = None
depends_on = None

_INDEXED = ('correction_type', 'term_end_on', 'management_level', 'dispute_source', 'outcome')


def upgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('correction_type', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('term_start_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('term_end_on', sa.Date(), nullable=True))
        batch.add_column(sa.Column('management_level', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('is_minor', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('commissioning_body', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('dispute_source', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('agreed_amount', sa.Numeric(precision=14, scale=2), nullable=True))
        batch.add_column(sa.Column('mediation_level', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('outcome', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('subsidy_tier', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('counters', sa.JSON(), nullable=False, server_default='{}'))
        for column in _INDEXED:
            batch.create_index(batch.f(f'ix_cases_{column}'), [column])


def downgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        for column in _INDEXED:
            batch.drop_index(batch.f(f'ix_cases_{column}'))
        for column in ('counters', 'subsidy_tier', 'outcome', 'mediation_level', 'agreed_amount',
                       'dispute_source', 'commissioning_body', 'is_minor', 'management_level', 'term_end_on',
                       'term_start_on', 'correction_type'):
            batch.drop_column(column)
