"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monitor.db import Store
from monitor.migrate import alembic_config, extension_models, upgrade
from monitor.models import Base


def test_migrations_match_models(db_url: str) -> None:
    extension_models()  # escalation's tables are part of the schema too
    store = Store(db_url)
    try:
        upgrade(store)
        upgrade(store)  # a second run finds nothing to do
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        store.dispose()


def test_open_alerts_take_the_new_priority_order_and_back(empty_db_url: str) -> None:
    """0012: the priorities stored on open alerts follow the order of issue 16 (man down
    with panic, an overdue visit before no motion); closed and duress alerts keep theirs;
    the downgrade puts the old order back."""
    store = Store(empty_db_url)
    try:
        upgrade(store, "0011")
        now = datetime.now(UTC)
        rows = [  # type, state, duress, priority in the old order
            ("man_down", "raised", False, 2),
            ("no_motion", "acknowledged", False, 3),
            ("visit_overdue", "raised", False, 4),
            ("red", "raised", False, 1),
            ("man_down", "resolved", False, 2),
            ("no_motion", "cancelled", False, 3),
            ("man_down", "acknowledged", True, 0),
        ]
        with store.engine.begin() as conn:
            meta = sa.MetaData()
            devices = sa.Table("devices", meta, autoload_with=conn)
            alerts = sa.Table("alerts", meta, autoload_with=conn)
            conn.execute(
                devices.insert().values(
                    id="mig-1",
                    kind="badge",
                    secret_hash="x",
                    heartbeat_interval_s=60,
                    enabled=True,
                    online=False,
                    created_at=now,
                )
            )
            conn.execute(
                alerts.insert(),
                [
                    {
                        "id": i + 1,
                        "device_id": "mig-1",
                        "device_alert_id": f"a{i}",
                        "type": t,
                        "state": s,
                        "duress": d,
                        "priority": p,
                        "raised_at": now,
                    }
                    for i, (t, s, d, p) in enumerate(rows)
                ],
            )

        def priorities() -> list[int]:
            with store.engine.connect() as conn:
                return list(conn.scalars(sa.text("SELECT priority FROM alerts ORDER BY id")))

        upgrade(store)
        assert priorities() == [1, 4, 3, 1, 2, 3, 0]
        with store.engine.begin() as conn:
            cfg = alembic_config(store.url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0011")
        assert priorities() == [2, 3, 4, 1, 2, 3, 0]
    finally:
        store.dispose()
