"""Twilio's requests already acted on, so that a replayed one is refused.

Revision ID: e002
Revises: e001
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db

revision: str = "e002"
down_revision: str | None = "e001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escalation_twilio_seen",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("seen_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_escalation_twilio_seen")),
    )


def downgrade() -> None:
    op.drop_table("escalation_twilio_seen")
