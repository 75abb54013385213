"""The worker app's enrolment codes.

Revision ID: w001
Revises: (new branch "worker_app"; depends on 0007)
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db

revision: str = "w001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("worker_app",)
depends_on: str | Sequence[str] | None = "0007"


def upgrade() -> None:
    op.create_table(
        "app_enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("issued_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("redeemed_from", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_app_enrolments_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["workers.id"], name=op.f("fk_app_enrolments_worker_id_workers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_enrolments")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_app_enrolments_code_hash")),
    )
    with op.batch_alter_table("app_enrolments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_app_enrolments_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_app_enrolments_worker_id"), ["worker_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("app_enrolments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_enrolments_worker_id"))
        batch_op.drop_index(batch_op.f("ix_app_enrolments_device_id"))
    op.drop_table("app_enrolments")
