"""Case access grants (read access kept after a transfer) and generated documents.

Revision ID: f3a4b5c6d7e8
Revises: c1a1e2d3f4a5
Create Date: 2026-11-23 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'f3a4b5c6d7e8'
down_revision = 'c1a1e2d3f4a5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'case_access_grants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('org_path', sa.String(length=255), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('granted_dt', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_access_grants_case_id_cases')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_access_grants')),
        sa.UniqueConstraint('case_id', 'org_path', name=op.f('uq_case_access_grants_case_id_org_path')),
    )
    op.create_index(op.f('ix_case_access_grants_case_id'), 'case_access_grants', ['case_id'])
    op.create_index(op.f('ix_case_access_grants_org_path'), 'case_access_grants', ['org_path'])
    op.create_table(
        'documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('number', sa.String(length=64), nullable=True),
        sa.Column('body_html', sa.Text(), nullable=False),
        sa.Column('audience', sa.String(length=32), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_dt', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_documents_case_id_cases')),
        sa.ForeignKeyConstraint(['instance_id'], ['process_instances.id'],
                                name=op.f('fk_documents_instance_id_process_instances')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_documents_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_documents')),
    )
    op.create_index(op.f('ix_documents_case_id'), 'documents', ['case_id'])
    op.create_index(op.f('ix_documents_instance_id'), 'documents', ['instance_id'])
    op.create_index(op.f('ix_documents_kind'), 'documents', ['kind'])
    op.create_index(op.f('ix_documents_created_by_id'), 'documents', ['created_by_id'])


def downgrade() -> None:
    op.drop_table('documents')
    op.drop_table('case_access_grants')
