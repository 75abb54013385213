"""Calls operators place from an alert: their phone first, then bridged to the worker's or
a contact's (escalation.calls).

Revision ID: e004
Revises: e003
Create Date: 2026-12-06 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db

revision: str = "e004"
down_revision: str | None = "e003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("placed_by", sa.String(length=100), nullable=False),
        sa.Column("operator_phone", sa.String(length=32), nullable=False),
        sa.Column("to_kind", sa.String(length=16), nullable=False),
        sa.Column("to_name", sa.String(length=200), nullable=False),
        sa.Column("to_phone", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.Column("operator_sid", sa.String(length=64), nullable=True),
        sa.Column("other_sid", sa.String(length=64), nullable=True),
        sa.Column("recording_sid", sa.String(length=64), nullable=True),
        sa.Column("evidence_id", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("connected_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_escalation_calls_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_calls")),
    )
    with op.batch_alter_table("escalation_calls", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_escalation_calls_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_escalation_calls_operator_sid"), ["operator_sid"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("escalation_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_calls_operator_sid"))
        batch_op.drop_index(batch_op.f("ix_escalation_calls_alert_id"))
    op.drop_table("escalation_calls")
