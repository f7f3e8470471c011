"""student retraining loop: model_versions, student_test_items

Additive only: two new tables. ``model_versions`` has a partial unique index (at most one
active version per project); ``active = true`` works on SQLite >= 3.23 and PostgreSQL.

Revision ID: 0004_student
Revises: 0003
Create Date: 2026-11-25 13:39:26.977560

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import db.student_models  # noqa: F401  (registers the tables on Base.metadata for `db check`)

# revision identifiers, used by Alembic.
revision: str = '0004_student'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('n_gold', sa.Integer(), nullable=False),
    sa.Column('n_silver', sa.Integer(), nullable=False),
    sa.Column('n_test', sa.Integer(), nullable=False),
    sa.Column('test_f1', sa.Float(), nullable=True),
    sa.Column('test_split', sa.String(length=64), nullable=True),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_model_versions_job_id_jobs')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_model_versions_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('project_id', 'version', name=op.f('uq_model_versions_project_id_version'))
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index('uq_model_versions_active_project', ['project_id'], unique=True, sqlite_where=sa.text('active = true'), postgresql_where=sa.text('active = true'))

    op.create_table('student_test_items',
    sa.Column('item_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_student_test_items_item_id_items')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_student_test_items_project_id_projects')),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_student_test_items'))
    )
    with op.batch_alter_table('student_test_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_student_test_items_project_id'), ['project_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('student_test_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_student_test_items_project_id'))

    op.drop_table('student_test_items')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index('uq_model_versions_active_project', sqlite_where=sa.text('active = true'), postgresql_where=sa.text('active = true'))

    op.drop_table('model_versions')
