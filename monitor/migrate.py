"""Schema migrations: bring a database to the newest revision with Alembic.

Extensions with tables of their own (escalation) register their models module in the
`vigil.schema` entry-point group and keep their revisions in a `migrations/` folder beside
it, as a branch of their own that depends on the service's first revision.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from alembic import command
from alembic.config import Config

from monitor.db import Store

HERE = Path(__file__).parent
SCHEMA_GROUP = "vigil.schema"


def extension_models() -> list[ModuleType]:
    """Import every extension's models, so their tables join the shared metadata."""
    return [importlib.import_module(ep.value) for ep in entry_points(group=SCHEMA_GROUP)]


def version_locations() -> list[Path]:
    found = [HERE / "migrations" / "versions"]
    for module in extension_models():
        assert module.__file__ is not None
        found.append(Path(module.__file__).parent / "migrations")
    return found


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option(
        "version_locations", os.pathsep.join(str(p).replace("%", "%%") for p in version_locations())
    )
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(store: Store, revision: str = "heads") -> None:
    cfg = alembic_config(store.url)
    with store.engine.begin() as conn:
        if store.is_postgres:
            # Replicas starting together take turns; the later ones find nothing to do.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7164021)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
