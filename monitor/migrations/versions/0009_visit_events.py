"""A visit's timeline: its start, deadlines and end, and the places the worker's phone
reported arriving at or leaving (OwnTracks transitions), one row each.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('visit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('at', monitor.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_visit_events_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visit_events')),
    sa.UniqueConstraint('visit_id', 'key', name='uq_visit_events_visit_key')
    )
    with op.batch_alter_table('visit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visit_events_visit_id'), ['visit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('visit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visit_events_visit_id'))

    op.drop_table('visit_events')
