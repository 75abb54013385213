"""Priorities in their new order (issue 16): man down ranks with panic (2 -> 1), an overdue
visit before no motion (4 -> 3, 3 -> 4). An alert's priority is stored on its row, so the
open alerts (raised or acknowledged) take the new order here; closed ones keep what they had
when they were handled. Under duress it is 0 either way, and stays.

Both orders are written out below, not imported: a migration must do tomorrow what it does
today, whatever monitor/alerts/states.py says by then.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Alert type -> priority, for an alert not under duress (lower is more urgent).
OLD = {
    "red": 1,
    "man_down": 2,
    "no_motion": 3,
    "visit_overdue": 4,
    "device_offline": 5,
    "test": 6,
    "duress": 0,
}
NEW = {
    "red": 1,
    "man_down": 1,
    "visit_overdue": 3,
    "no_motion": 4,
    "device_offline": 5,
    "test": 6,
    "duress": 0,
}
# states.ACTIVE_STATES, as it is today.
OPEN = ("raised", "acknowledged")

alerts = sa.table(
    "alerts",
    sa.column("type", sa.String),
    sa.column("duress", sa.Boolean),
    sa.column("priority", sa.Integer),
    sa.column("state", sa.String),
)


def _renumber(order: dict[str, int]) -> None:
    op.execute(
        alerts.update()
        .where(alerts.c.state.in_(OPEN), sa.not_(alerts.c.duress), alerts.c.type.in_(order))
        .values(priority=sa.case(order, value=alerts.c.type))
    )


def upgrade() -> None:
    _renumber(NEW)


def downgrade() -> None:
    _renumber(OLD)
