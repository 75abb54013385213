"""`vigil db`: the database's schema."""

from __future__ import annotations

import typer

from monitor.cli.common import open_store

app = typer.Typer(help="The database.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision."""
    store = open_store(create=True)
    typer.echo(f"database is up to date: {store.engine.url.render_as_string(hide_password=True)}")
