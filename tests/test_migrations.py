"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monitor.db import Store
from monitor.migrate import extension_models, upgrade
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
