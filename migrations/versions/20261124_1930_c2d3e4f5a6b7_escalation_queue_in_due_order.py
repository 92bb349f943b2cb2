"""The escalation queue in due order, whatever the units: (group, due, id, unit path). A province's 升级给我 page
2 carries its keyset as an OR, which bounds no index range; the planner, costing the (group, unit path, …) index
as if its rows lay in order on disk (one group, correlation 1), read the whole queue through it and sorted it:
21,856 rows, 77 ms at a million tasks. Walking this index instead, the unit path is checked on the index entry
and the page is read in 0.2 ms. A county's queue keeps the other index, which reads only its own range.

Revision ID: c2d3e4f5a6b7
Revises: b1c2d3e4f5a6
Create Date: 2026-11-24 19:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'c2d3e4f5a6b7'
down_revision = 'b1c2d3e4f5a6'
branch_labels = None
depends_on = None

_ESCALATED = sa.text("status = 'open' AND escalated_to_group IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_human_tasks_open_escalated_due', 'human_tasks',
                    ['escalated_to_group', 'due_dt', 'id', 'escalated_org_path'],
                    postgresql_where=_ESCALATED, sqlite_where=_ESCALATED)


def downgrade() -> None:
    op.drop_index('ix_human_tasks_open_escalated_due', table_name='human_tasks')
