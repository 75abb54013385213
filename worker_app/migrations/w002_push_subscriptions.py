"""Web Push: the installation's VAPID key pair and each device's push subscription.

Revision ID: w002
Revises: w001
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db

revision: str = "w002"
down_revision: str | None = "w001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_vapid_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("private_key", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_vapid_keys")),
    )
    op.create_table(
        "app_push_subscriptions",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("p256dh", sa.String(length=100), nullable=False),
        sa.Column("auth", sa.String(length=32), nullable=False),
        sa.Column("credentials", sa.String(length=64), nullable=False),
        sa.Column("created_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_app_push_subscriptions_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_app_push_subscriptions")),
    )


def downgrade() -> None:
    op.drop_table("app_push_subscriptions")
    op.drop_table("app_vapid_keys")
