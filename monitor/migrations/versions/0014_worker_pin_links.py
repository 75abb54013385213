"""One-time links for workers to choose their own PINs.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_pin_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("issued_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["workers.id"], name=op.f("fk_worker_pin_links_worker_id_workers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_pin_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_worker_pin_links_token_hash")),
    )
    with op.batch_alter_table("worker_pin_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_worker_pin_links_worker_id"), ["worker_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("worker_pin_links")
