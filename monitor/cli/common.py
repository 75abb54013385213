"""What every `vigil` command uses: the settings, the store, and how a command fails."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from sqlalchemy.orm import Session

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


def dump_stored(text_of: Callable[[Session], str], output: Path | None) -> None:
    """Write what `text_of` makes of the store (a YAML file `load` reads) to `output`, or to
    stdout: the `dump` of every file-backed noun."""
    store = open_store()
    try:
        with store.session() as db:
            text = text_of(db)
    finally:
        store.dispose()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
