"""Alembic environment: runs Vigil's migrations on the connection `monitor.migrate` passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from monitor.migrate import extension_models
from monitor.models import Base

config = context.config
extension_models()  # their tables join Base.metadata for autogenerate
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
