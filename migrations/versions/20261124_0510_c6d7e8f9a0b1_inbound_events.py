"""Inbound events: machine clients with their own tokens, and every alarm or referral they send.

Revision ID: c6d7e8f9a0b1
Revises: b5c6d7e8f9a0
Create Date: 2026-11-24 05:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = 'c6d7e8f9a0b1'
down_revision = 'b5c6d7e8f9a0'
branch_labels = None
depends_on = None


def _path() -> sa.types.TypeEngine[str]:
    # Prefix-searched org path: byte order on PostgreSQL too (engine.db.prefix_text).
    return sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql')


def upgrade() -> None:
    op.create_table('machine_clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('kinds', sa.JSON(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_machine_clients_created_by_id_users')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_machine_clients_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_machine_clients')),
    sa.UniqueConstraint('name', name=op.f('uq_machine_clients_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_machine_clients_token_hash'))
    )
    with op.batch_alter_table('machine_clients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_machine_clients_created_by_id'), ['created_by_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_machine_clients_org_unit_id'), ['org_unit_id'], unique=False)

    op.create_table('inbound_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_dt', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('effect', sa.String(length=16), nullable=True),
    sa.Column('case_id', sa.Integer(), nullable=True),
    sa.Column('org_path', _path(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=False),
    sa.CheckConstraint("kind IN ('alarm', 'referral')", name=op.f('ck_inbound_events_valid_kind')),
    sa.CheckConstraint("status IN ('received', 'delivered', 'unmatched', 'rejected')",
                       name=op.f('ck_inbound_events_valid_status')),
    sa.CheckConstraint("effect IS NULL OR effect IN ('request_started', 'case_started', 'case_attached')",
                       name=op.f('ck_inbound_events_valid_effect')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_inbound_events_case_id_cases')),
    sa.ForeignKeyConstraint(['client_id'], ['machine_clients.id'],
                            name=op.f('fk_inbound_events_client_id_machine_clients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_events')),
    sa.UniqueConstraint('client_id', 'key', name=op.f('uq_inbound_events_client_id_key'))
    )
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_events_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_events_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inbound_events_received_dt'), ['received_dt'], unique=False)
        batch_op.create_index('ix_inbound_events_status_org_path', ['status', 'org_path'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_events_status_org_path')
        batch_op.drop_index(batch_op.f('ix_inbound_events_received_dt'))
        batch_op.drop_index(batch_op.f('ix_inbound_events_client_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_events_case_id'))
    op.drop_table('inbound_events')
    with op.batch_alter_table('machine_clients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_machine_clients_org_unit_id'))
        batch_op.drop_index(batch_op.f('ix_machine_clients_created_by_id'))
    op.drop_table('machine_clients')
