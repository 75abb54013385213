"""A version of the device credentials, bumped with every change to them, so that each
replica knows when to rewrite the broker's password file.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 06:10:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import monitor.db


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        'device_credentials_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('changed_at', monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_device_credentials_version')),
    )
    op.bulk_insert(table, [{'id': 1, 'version': 0, 'changed_at': datetime.now(UTC)}])


def downgrade() -> None:
    op.drop_table('device_credentials_version')
