"""三员: the system, security and audit administrator groups.

Production installs have no demo loader, so the three groups are inserted here when missing (idempotent:
an install that created them by hand keeps its own names). The legacy ``admin`` group is not inserted: it
stays only where it already exists, as a system administrator by another name; new installs use
``system_admin``.

Downgrade removes the three groups and every membership in them: the older code would count these unknown
codes as case roles and show their holders every case below their unit.

Revision ID: d1e2f3a4b5c6
Revises: c0d1e2f3a4b5
Create Date: 2026-11-24 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'd1e2f3a4b5c6'
down_revision = 'c0d1e2f3a4b5'
branch_labels = None
depends_on = None

GROUPS = (('system_admin', '系统管理员'), ('security_admin', '安全保密管理员'), ('audit_admin', '安全审计员'))
_CODES = sa.bindparam('codes', [code for code, _name in GROUPS], expanding=True)


def upgrade() -> None:
    for code, name in GROUPS:
        op.execute(sa.text('INSERT INTO groups (code, name) SELECT :code, :name '
                           'WHERE NOT EXISTS (SELECT 1 FROM groups WHERE code = :code)')
                   .bindparams(code=code, name=name))


def downgrade() -> None:
    op.execute(sa.text('DELETE FROM memberships WHERE group_id IN (SELECT id FROM groups WHERE code IN :codes)')
               .bindparams(_CODES))
    op.execute(sa.text('DELETE FROM groups WHERE code IN :codes').bindparams(_CODES))
