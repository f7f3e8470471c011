"""index span_sets.created_at (review queue numbers find new pipeline output quickly)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:30:00

"""
from typing import Sequence, Union

from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # A plain CREATE INDEX (no batch): SQLite does not rebuild the table for it.
    op.create_index('ix_span_sets_created_at', 'span_sets', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_span_sets_created_at', table_name='span_sets')
