"""Statistics over the escalation columns taken together (PostgreSQL): a task is escalated exactly when it has an
escalation group and unit path, and only while open. Estimated one clause at a time, a province's 升级给我 queue
was the product of four selectivities of about 2 % each: 3 rows where there were 21,856, so the planner read and
sorted them all (75 ms at a million tasks) instead of walking the due-date index to its first page (0.8 ms). With
the joint most-common-values list it counts the province's, a city's and a county's queue within a few percent.

Revision ID: b1c2d3e4f5a6
Revises: a0b1c2d3e4f6
Create Date: 2026-11-24 17:00:00
"""

from alembic import op

revision = 'b1c2d3e4f5a6'
down_revision = 'a0b1c2d3e4f6'
branch_labels = None
depends_on = None

NAME = 'st_human_tasks_escalation'
#: the list must hold every (group, unit) pair that has escalated tasks: a province has about 140 units
TARGET = 1000


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite keeps no such statistics
    op.execute(f'CREATE STATISTICS {NAME} (mcv) ON status, is_escalated, escalated_to_group, escalated_org_path '
               'FROM human_tasks')
    op.execute(f'ALTER STATISTICS {NAME} SET STATISTICS {TARGET}')
    op.execute('ANALYZE human_tasks')  # built now, not at autovacuum's next pass


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'DROP STATISTICS IF EXISTS {NAME}')
