"""Places and their cautions, and the place a visit went to.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitor.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "places",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("address_key", sa.String(length=300), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_places_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_places")),
    )
    with op.batch_alter_table("places", schema=None) as batch_op:
        batch_op.create_index("ix_places_org_id_lat", ["org_id", "lat"], unique=False)
        batch_op.create_index(batch_op.f("ix_places_address_key"), ["address_key"], unique=False)
    op.create_table(
        "cautions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("place_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", monitor.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("source_alert_id", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", monitor.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_cautions_org_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["place_id"], ["places.id"], name=op.f("fk_cautions_place_id_places")
        ),
        sa.ForeignKeyConstraint(
            ["source_alert_id"], ["alerts.id"], name=op.f("fk_cautions_source_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_cautions_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cautions")),
    )
    with op.batch_alter_table("cautions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cautions_place_id"), ["place_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cautions_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cautions_expires_on"), ["expires_on"], unique=False)
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("place_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("place_match", sa.String(length=16), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_visits_place_id_places"), "places", ["place_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_visits_place_id_places"), type_="foreignkey")
        batch_op.drop_column("place_match")
        batch_op.drop_column("place_id")
    op.drop_table("cautions")
    op.drop_table("places")
