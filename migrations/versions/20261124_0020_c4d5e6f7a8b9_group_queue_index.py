"""Split the open-task indexes by assignment: the unassigned rows per group and unit (组内待认领) and the
assigned rows per person (我的待办), so neither view's planner picks the other's index; and indexes for 升级给我,
the 按紧急程度 sort and the colour filter, which otherwise sort a whole city's open tasks.

Revision ID: c4d5e6f7a8b9
Revises: b7d8e9f0a1b2
Create Date: 2026-11-24 00:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'c4d5e6f7a8b9'
down_revision = 'b7d8e9f0a1b2'
branch_labels = None
depends_on = None

_OPEN = sa.text("status = 'open'")
_QUEUE = sa.text("status = 'open' AND assignee_id IS NULL")
_ASSIGNED = sa.text("status = 'open' AND assignee_id IS NOT NULL")
_ESCALATED = sa.text("status = 'open' AND escalated_to_group IS NOT NULL")
_MINE = ('ix_human_tasks_open_assignee', ['assignee_id', 'due_dt', 'id'])
_NEW = (('ix_human_tasks_open_escalated', ['escalated_to_group', 'escalated_org_unit_id', 'due_dt', 'id'], _ESCALATED),
        ('ix_human_tasks_open_priority', ['priority', 'due_dt', 'id'], _OPEN),
        ('ix_human_tasks_open_colour', ['risk_colour', 'due_dt', 'id'], _OPEN))


def upgrade() -> None:
    with op.batch_alter_table('human_tasks') as batch:
        batch.create_index('ix_human_tasks_open_queue', ['candidate_group', 'org_path', 'due_dt', 'id'],
                           postgresql_where=_QUEUE, sqlite_where=_QUEUE)
        batch.drop_index(_MINE[0])
        batch.create_index(*_MINE, postgresql_where=_ASSIGNED, sqlite_where=_ASSIGNED)
        for name, columns, where in _NEW:
            batch.create_index(name, columns, postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    with op.batch_alter_table('human_tasks') as batch:
        for name, _, _ in _NEW:
            batch.drop_index(name)
        batch.drop_index(_MINE[0])
        batch.create_index(*_MINE, postgresql_where=_OPEN, sqlite_where=_OPEN)
        batch.drop_index('ix_human_tasks_open_queue')
