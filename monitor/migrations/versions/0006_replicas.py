"""Replicas' heartbeats, so that a live replica takes over the MQTT sessions of a dead one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 05:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('replicas',
    sa.Column('node', sa.String(length=200), nullable=False),
    sa.Column('beat_at', monitor.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('client_ids', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('node', name=op.f('pk_replicas'))
    )


def downgrade() -> None:
    op.drop_table('replicas')
