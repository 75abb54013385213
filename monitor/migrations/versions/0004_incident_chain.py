"""The incident log's hash chain: each timeline entry carries its place and the hash of the
entry before it. Entries already stored are chained in the order they were written.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 14:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from monitor.alerts import chain
from monitor.db import UTCDateTime

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    _chain_existing()
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_alert_events_alert_seq', ['alert_id', 'seq'])


def _chain_existing() -> None:
    # Plain tables, not the models: these are the columns as they are at this revision.
    conn = op.get_bind()
    alerts = sa.table(
        'alerts',
        sa.column('id', sa.Integer()),
        sa.column('device_id', sa.String()),
        sa.column('device_alert_id', sa.String()),
        sa.column('raised_at', UTCDateTime()),
    )
    events = sa.table(
        'alert_events',
        sa.column('id', sa.Integer()),
        sa.column('alert_id', sa.Integer()),
        sa.column('at', UTCDateTime()),
        sa.column('kind', sa.String()),
        sa.column('actor', sa.String()),
        sa.column('text', sa.Text()),
        sa.column('data', sa.JSON()),
        sa.column('seq', sa.Integer()),
        sa.column('prev_hash', sa.String()),
        sa.column('hash', sa.String()),
    )
    for alert in conn.execute(sa.select(alerts).order_by(alerts.c.id)).all():
        prev = chain.genesis(alert.id, alert.device_id, alert.device_alert_id, alert.raised_at)
        rows = conn.execute(
            sa.select(events).where(events.c.alert_id == alert.id).order_by(events.c.id)
        ).all()
        for seq, ev in enumerate(rows, start=1):
            digest = chain.entry_hash(
                prev, alert.id, seq, ev.at, ev.kind, ev.actor, ev.text, ev.data or {}
            )
            conn.execute(
                events.update()
                .where(events.c.id == ev.id)
                .values(seq=seq, prev_hash=prev, hash=digest)
            )
            prev = digest


def downgrade() -> None:
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_alert_events_alert_seq', type_='unique')
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('seq')
