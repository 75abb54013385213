"""What every `vigil` command uses: the settings, the store, and how a command fails."""

from __future__ import annotations

import typer

from monitor.config import Settings
from monitor.db import Store

BROKER_RELOAD_HINT = (
    "A running `vigil demo`, or `vigil serve` with VIGIL_BROKER_DIR, applies it at the broker "
    "at once; otherwise run `vigil mosquitto-config --pid-file <mosquitto's pid file>`."
)


def settings() -> Settings:
    return Settings()


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def open_store() -> Store:
    from monitor.migrate import upgrade

    store = Store(settings().sqlalchemy_url)
    upgrade(store)
    return store
