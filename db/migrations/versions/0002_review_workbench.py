"""review workbench: review_states, item_stats, adjudications, auth_sessions

Additive only: four new tables, no change to existing ones. ``adjudications`` is
append-only (triggers on SQLite and PostgreSQL, like the edit log).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

import db.review_models  # noqa: F401  (registers the tables on Base.metadata for `db check`)

revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('review_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flag_comment', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_review_states_item_id_items')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_review_states_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_states')),
    sa.UniqueConstraint('item_id', 'user_name', name=op.f('uq_review_states_item_id_user_name'))
    )
    with op.batch_alter_table('review_states', schema=None) as batch_op:
        batch_op.create_index('ix_review_states_project_user_status', ['project_id', 'user_name', 'status'], unique=False)

    op.create_table('item_stats',
    sa.Column('item_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('min_confidence', sa.Float(), nullable=True),
    sa.Column('disagreement', sa.Float(), nullable=True),
    sa.Column('uncertainty', sa.Float(), nullable=True),
    sa.Column('n_spans', sa.Integer(), nullable=False),
    sa.Column('labels', sa.Text(), nullable=False),
    sa.Column('confidence_key', sa.Float(), nullable=False),
    sa.Column('disagreement_key', sa.Float(), nullable=False),
    sa.Column('uncertainty_key', sa.Float(), nullable=False),
    sa.Column('shuffle_key', sa.Integer(), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_stats_item_id_items')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_item_stats_project_id_projects')),
    sa.PrimaryKeyConstraint('item_id', name=op.f('pk_item_stats'))
    )
    with op.batch_alter_table('item_stats', schema=None) as batch_op:
        batch_op.create_index('ix_item_stats_project_confidence', ['project_id', 'confidence_key', 'item_id'], unique=False)
        batch_op.create_index('ix_item_stats_project_disagreement', ['project_id', 'disagreement_key', 'item_id'], unique=False)
        batch_op.create_index('ix_item_stats_project_shuffle', ['project_id', 'shuffle_key', 'item_id'], unique=False)
        batch_op.create_index('ix_item_stats_project_uncertainty', ['project_id', 'uncertainty_key', 'item_id'], unique=False)

    op.create_table('adjudications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('spans', sa.JSON(), nullable=False),
    sa.Column('user_name', sa.String(length=100), nullable=False),
    sa.Column('merged_from', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_adjudications_item_id_items')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_adjudications_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adjudications'))
    )
    with op.batch_alter_table('adjudications', schema=None) as batch_op:
        batch_op.create_index('ix_adjudications_item_side_id', ['item_id', 'side', 'id'], unique=False)
        batch_op.create_index('ix_adjudications_project_item', ['project_id', 'item_id'], unique=False)

    op.create_table('auth_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auth_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_auth_sessions_token_sha256'))
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_sessions_user_id'), ['user_id'], unique=False)

    _create_adjudication_triggers()


def _create_adjudication_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER adjudications_append_only_{event.lower()} BEFORE {event} ON adjudications "
                "BEGIN SELECT RAISE(ABORT, 'adjudications are append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION adjudications_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'adjudications are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER adjudications_append_only BEFORE UPDATE OR DELETE ON adjudications "
            "FOR EACH ROW EXECUTE FUNCTION adjudications_append_only()"
        )


def _drop_adjudication_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS adjudications_append_only_update")
        op.execute("DROP TRIGGER IF EXISTS adjudications_append_only_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS adjudications_append_only ON adjudications")
        op.execute("DROP FUNCTION IF EXISTS adjudications_append_only()")


def downgrade() -> None:
    _drop_adjudication_triggers()
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_sessions_user_id'))
    op.drop_table('auth_sessions')
    with op.batch_alter_table('adjudications', schema=None) as batch_op:
        batch_op.drop_index('ix_adjudications_project_item')
        batch_op.drop_index('ix_adjudications_item_side_id')
    op.drop_table('adjudications')
    with op.batch_alter_table('item_stats', schema=None) as batch_op:
        batch_op.drop_index('ix_item_stats_project_uncertainty')
        batch_op.drop_index('ix_item_stats_project_shuffle')
        batch_op.drop_index('ix_item_stats_project_disagreement')
        batch_op.drop_index('ix_item_stats_project_confidence')
    op.drop_table('item_stats')
    with op.batch_alter_table('review_states', schema=None) as batch_op:
        batch_op.drop_index('ix_review_states_project_user_status')
    op.drop_table('review_states')
