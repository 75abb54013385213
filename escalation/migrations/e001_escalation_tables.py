"""Escalation tables: contacts, policies, escalations, steps, notifications.

Revision ID: e001
Revises: (new branch "escalation"; depends on 0001)
Create Date: 2026-11-22 11:40:42.980318
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db

revision: str = "e001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("escalation",)
depends_on: str | Sequence[str] | None = "0001"


def upgrade() -> None:
    op.create_table(
        "escalation_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("webhook", sa.String(length=2000), nullable=False),
        sa.Column("backup_for", sa.JSON(), nullable=False),
        sa.Column("updated_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_contacts")),
        sa.UniqueConstraint("name", name=op.f("uq_escalation_contacts_name")),
    )
    op.create_table(
        "escalation_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("updated_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_escalation_policies_name")),
    )
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=200), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("duress", sa.Boolean(), nullable=False),
        sa.Column("started_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_escalations_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
        sa.UniqueConstraint("alert_id", name=op.f("uq_escalations_alert_id")),
    )
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.create_index("ix_escalations_state", ["state"], unique=False)

    op.create_table(
        "escalation_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escalation_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("due_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("done_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_escalation_steps_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["escalation_id"],
            ["escalations.id"],
            name=op.f("fk_escalation_steps_escalation_id_escalations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_steps")),
        sa.UniqueConstraint("escalation_id", "position", name="uq_escalation_steps_position"),
    )
    with op.batch_alter_table("escalation_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_escalation_steps_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index("ix_escalation_steps_due", ["state", "due_at"], unique=False)

    op.create_table(
        "escalation_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("recipient_kind", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=2000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_escalation_notifications_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["step_id"],
            ["escalation_steps.id"],
            name=op.f("fk_escalation_notifications_step_id_escalation_steps"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_notifications")),
    )
    with op.batch_alter_table("escalation_notifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_escalation_notifications_alert_id"), ["alert_id"], unique=False
        )
        batch_op.create_index(
            "ix_escalation_notifications_due", ["status", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_escalation_notifications_address", ["address"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_escalation_notifications_provider_sid"), ["provider_sid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_escalation_notifications_step_id"), ["step_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("escalation_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalation_notifications_step_id"))
        batch_op.drop_index(batch_op.f("ix_escalation_notifications_provider_sid"))
        batch_op.drop_index("ix_escalation_notifications_due")
        batch_op.drop_index("ix_escalation_notifications_address")
        batch_op.drop_index(batch_op.f("ix_escalation_notifications_alert_id"))

    op.drop_table("escalation_notifications")
    with op.batch_alter_table("escalation_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_escalation_steps_due")
        batch_op.drop_index(batch_op.f("ix_escalation_steps_alert_id"))

    op.drop_table("escalation_steps")
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index("ix_escalations_state")

    op.drop_table("escalations")
    op.drop_table("escalation_policies")
    op.drop_table("escalation_contacts")
