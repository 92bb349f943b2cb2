"""Each task carries its case's minor flag (社区矫正法 §54), so wide to-do lists need no case look-up per task.

Revision ID: e8f9a0b1c2d3
Revises: d7e8f9a0b1c2
Create Date: 2026-11-24 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'e8f9a0b1c2d3'
down_revision = 'd7e8f9a0b1c2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('human_tasks', sa.Column('is_minor', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE human_tasks SET is_minor = TRUE WHERE case_id IN (SELECT id FROM cases WHERE is_minor)")


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite ≥ 3.35): a batch copy of human_tasks would trip the foreign keys onto it.
    op.drop_column('human_tasks', 'is_minor')
