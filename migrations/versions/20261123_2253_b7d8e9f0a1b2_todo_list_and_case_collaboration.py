"""To-do list: delegation, process and colour on tasks, saved filters; comments and attachments on cases.

Prefix-searched columns (org paths, case numbers, names) get the C collation on PostgreSQL so that a prefix
is one btree range (``engine.db.prefix_text``).

Revision ID: b7d8e9f0a1b2
Revises: a9c1d2e3f4b5
Create Date: 2026-11-23 22:53:21.147473
"""

import sqlalchemy as sa
from alembic import op

revision = 'b7d8e9f0a1b2'
down_revision = 'a9c1d2e3f4b5'
branch_labels = None
depends_on = None

#: (table, column, length) of the prefix-searched columns
_PREFIX_COLUMNS = (('org_units', 'path', 255), ('cases', 'org_path', 255), ('cases', 'number', 32),
                   ('cases', 'person_name', 64), ('case_access_grants', 'org_path', 255),
                   ('human_tasks', 'org_path', 255))


def _path() -> sa.types.TypeEngine[str]:
    return sa.String(length=255).with_variant(sa.String(length=255, collation='C'), 'postgresql')


def _collate(collation: str | None) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, column, length in _PREFIX_COLUMNS:
        op.alter_column(table, column, type_=sa.String(length=length, collation=collation),
                        existing_type=sa.String(length=length))


def upgrade() -> None:
    op.create_table('saved_filters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('view', sa.String(length=16), nullable=False),
    sa.Column('criteria', sa.JSON(), nullable=False),
    sa.Column('shared_group', sa.String(length=64), nullable=True),
    sa.Column('shared_org_path', _path(), nullable=True),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.CheckConstraint('(shared_group IS NULL) = (shared_org_path IS NULL)', name=op.f('ck_saved_filters_shared_pair')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_saved_filters_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_filters')),
    sa.UniqueConstraint('owner_id', 'name', name=op.f('uq_saved_filters_owner_id_name'))
    )
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_filters_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_saved_filters_shared', ['shared_group', 'shared_org_path'], unique=False)

    op.create_table('attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage', sa.String(length=16), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('stored_name', sa.String(length=80), nullable=True),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(storage = 'database') = (content IS NOT NULL)", name=op.f('ck_attachments_content_in_database')),
    sa.CheckConstraint("storage IN ('database', 'folder')", name=op.f('ck_attachments_valid_storage')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_attachments_case_id_cases')),
    sa.ForeignKeyConstraint(['task_id'], ['human_tasks.id'], name=op.f('fk_attachments_task_id_human_tasks')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_attachments_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_task_id'), ['task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachments_uploaded_by_id'), ['uploaded_by_id'], unique=False)

    op.create_table('comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_dt', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_comments_author_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_comments_case_id_cases')),
    sa.ForeignKeyConstraint(['task_id'], ['human_tasks.id'], name=op.f('fk_comments_task_id_human_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments'))
    )
    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comments_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comments_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comments_task_id'), ['task_id'], unique=False)

    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delegation_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('process_key', sa.String(length=128), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('risk_colour', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_human_tasks_completed_by', ['completed_by_id', 'completed_dt', 'id'], unique=False)
        batch_op.create_index('ix_human_tasks_open_case', ['case_id'], unique=False, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.create_index('ix_human_tasks_open_path', ['org_path', 'due_dt', 'id'], unique=False, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.create_index(batch_op.f('ix_human_tasks_process_key'), ['process_key'], unique=False)
    op.execute('UPDATE human_tasks SET process_key = (SELECT d.key FROM process_instances i JOIN process_definitions d '
               'ON d.id = i.definition_id WHERE i.id = human_tasks.instance_id), '
               'risk_colour = (SELECT c.risk_colour FROM cases c WHERE c.id = human_tasks.case_id)')
    _collate('C')



def downgrade() -> None:
    _collate(None)
    with op.batch_alter_table('human_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_human_tasks_process_key'))
        batch_op.drop_index('ix_human_tasks_open_path', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_human_tasks_open_case', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_human_tasks_completed_by')
        batch_op.drop_column('risk_colour')
        batch_op.drop_column('process_key')
        batch_op.drop_column('delegation_state')

    with op.batch_alter_table('comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comments_task_id'))
        batch_op.drop_index(batch_op.f('ix_comments_case_id'))
        batch_op.drop_index(batch_op.f('ix_comments_author_id'))

    op.drop_table('comments')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_uploaded_by_id'))
        batch_op.drop_index(batch_op.f('ix_attachments_task_id'))
        batch_op.drop_index(batch_op.f('ix_attachments_case_id'))

    op.drop_table('attachments')
    with op.batch_alter_table('saved_filters', schema=None) as batch_op:
        batch_op.drop_index('ix_saved_filters_shared')
        batch_op.drop_index(batch_op.f('ix_saved_filters_owner_id'))

    op.drop_table('saved_filters')
