"""A refused message's row counts the copies of it recorded with it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refused_messages', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('repeats', sa.Integer(), nullable=False, server_default='1')
        )


def downgrade() -> None:
    with op.batch_alter_table('refused_messages', schema=None) as batch_op:
        batch_op.drop_column('repeats')
