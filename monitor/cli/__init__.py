"""The `vigil` command line (Typer), assembled from one module per noun.

Top-level commands come first, then the command groups, in the order `vigil --help` lists
them; extensions then add their own groups and `vigil device` commands.
"""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli import (
    audit,
    db,
    device,
    evidence,
    fleet,
    locations,
    mosquitto,
    service,
    sim,
    sop,
    user,
    worker,
)

# What extensions' commands use (escalation's `vigil policy`, the worker app's `vigil device
# enrol`), from where they have always found it.
from monitor.cli.common import BROKER_RELOAD_HINT, fail, log_level, open_store, settings

__all__ = ["BROKER_RELOAD_HINT", "app", "fail", "open_store", "settings"]

app = typer.Typer(
    help="Vigil: lone-worker safety and panic-alert monitoring.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Overrides VIGIL_DATA_DIR.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Overrides VIGIL_DATABASE_URL.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log everything (debug), as it happens.")
    ] = False,
) -> None:
    if data_dir is not None:
        os.environ["VIGIL_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        os.environ["VIGIL_DATABASE_URL"] = database_url
    logging.basicConfig(
        level=log_level(verbose, ctx.invoked_subcommand),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose and not settings().log_level:
        # Even the service's start says nothing of the store's migrations unless asked: a
        # line per migration before the banner buried what the demo had to say.
        logging.getLogger("alembic").setLevel(logging.WARNING)


app.command()(service.serve)
app.command()(service.demo)
app.command("mosquitto-config")(mosquitto.mosquitto_config)
app.command()(sim.sim)

app.add_typer(db.app, name="db")
app.add_typer(user.app, name="user")
app.add_typer(worker.app, name="worker")
app.add_typer(worker.teams, name="team")
app.add_typer(device.app, name="device")
app.add_typer(fleet.app, name="fleet")
app.add_typer(audit.app, name="audit")
app.add_typer(evidence.app, name="evidence")
app.add_typer(locations.app, name="locations")
app.add_typer(sop.app, name="sop")

# Extensions (escalation's `vigil policy ...`) add their own command groups.
for _ep in entry_points(group="vigil.commands"):
    app.add_typer(_ep.load(), name=_ep.name)

# And commands of `vigil device` (the worker app's `vigil device enrol`).
for _ep in entry_points(group="vigil.device_commands"):
    device.app.command(_ep.name)(_ep.load())
