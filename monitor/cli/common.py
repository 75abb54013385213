"""What every `vigil` command uses: the settings, the store, and how a command fails."""

from __future__ import annotations

import logging
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


# The commands that run for long and say what they do as they go; the others say only what
# they did, so that a migration on the way or a library's chatter is not read as news.
TALKATIVE = frozenset({"serve", "demo", "sim"})


def log_level(verbose: bool, command: str | None) -> int:
    """-v, else VIGIL_LOG_LEVEL, else info for the service and warnings for the rest."""
    if verbose:
        return logging.DEBUG
    chosen = settings().log_level
    if chosen:
        return logging.getLevelNamesMapping()[chosen]
    return logging.INFO if command in TALKATIVE else logging.WARNING


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def open_store(*, create: bool = False) -> Store:
    """The store the settings name, migrated. The default SQLite file (no
    VIGIL_DATABASE_URL) is made only by `create` (`vigil db upgrade`, the service, the demo):
    a command run in another directory than the demo's or the service's would otherwise make
    an empty store of its own there and change it, and the running service would never know."""
    from monitor.migrate import upgrade

    s = settings()
    default = s.data_dir / "vigil.db"
    if not create and not s.database_url and not default.exists():
        raise fail(
            f"there is no Vigil store at {default.absolute()}. Run this in the directory "
            "where `vigil demo` or `vigil serve` runs, or name its data directory with "
            "--data-dir (the demo prints it as 'Data:'); `vigil db upgrade` makes a new store"
        )
    store = Store(s.sqlalchemy_url)
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
