"""Contacts may be alarm-receiving centres (an `arc` address), whose notifications are
looked up by channel.

Revision ID: e003
Revises: e002
Create Date: 2026-12-06 09:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e003"
down_revision: str | None = "e002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("escalation_contacts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("arc", sa.String(length=500), nullable=False, server_default="")
        )
    with op.batch_alter_table("escalation_notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_escalation_notifications_channel", ["channel", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("escalation_notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_escalation_notifications_channel")
    with op.batch_alter_table("escalation_contacts", schema=None) as batch_op:
        batch_op.drop_column("arc")
