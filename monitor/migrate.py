"""Schema migrations: bring a database to the newest revision with Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from monitor.db import Store

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(store: Store, revision: str = "head") -> None:
    cfg = alembic_config(store.url)
    with store.engine.begin() as conn:
        if store.is_postgres:
            # Replicas starting together take turns; the later ones find nothing to do.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7164021)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
