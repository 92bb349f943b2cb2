"""Supervision: audit-log org paths compared byte by byte, so a subtree filter is one index range.

The audit log is filtered by org-unit subtree (``engine.db.starts_with``: a range on the path). Under a
linguistic collation PostgreSQL orders ``/1/4/`` and ``/1/40`` by their digits alone, so the range would
miss rows; the other path columns (cases, tasks, org units) already use the C collation. SQLite compares
bytes already: nothing to do there. Changing a column's collation rewrites no row, so the append-only
triggers are not involved and no hash changes.

Revision ID: f7a8b9c0d1e2
Revises: e6f7a8b9c0d1
Create Date: 2026-11-24 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'f7a8b9c0d1e2'
down_revision = 'e6f7a8b9c0d1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('audit_events', 'org_path', type_=sa.String(255, collation='C'),
                        existing_type=sa.String(255), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('audit_events', 'org_path', type_=sa.String(255), existing_type=sa.String(255, collation='C'),
                        existing_nullable=True)
