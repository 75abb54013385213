"""`vigil fleet`: a whole fleet of workers and devices from one file (YAML or CSV), checked
whole before anything is written, the devices' credentials written once to a file."""

from __future__ import annotations

import contextlib
import csv
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import BROKER_RELOAD_HINT, fail, open_store, settings

if TYPE_CHECKING:
    from monitor.fleet.fileformat import Parsed
    from monitor.fleet.importer import Imported, Plan

app = typer.Typer(help="A whole fleet of workers and devices at once.", no_args_is_help=True)

FileArg = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, help="The fleet file: .csv, or YAML (docs/admin.md)."
    ),
]
CREDENTIAL_COLUMNS = (
    "device_id",
    "kind",
    "worker",
    "organisation",
    "team",
    "secret",
    "identifier",
    "server_url",
    "setup_link",
)


def _read(path: Path) -> tuple[Parsed, str]:
    from monitor.fleet.fileformat import FleetFileError, parse

    text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's CSV may start with a BOM
    try:
        return parse(text, csv_file=path.suffix.lower() == ".csv"), text
    except FleetFileError as e:
        raise fail(f"{path} cannot be imported, nothing was changed:\n{e}") from None


def _say(plan: Plan, done: bool) -> None:
    verb = "added" if done else "would add"
    typer.echo(f"{verb} {plan.workers} workers and {plan.devices} devices")
    for org in plan.new_organisations:
        typer.echo(f"  new organisation: {org}")
    for team in plan.new_teams:
        typer.echo(f"  new team: {team}")


@app.command("check")
def check(path: FileArg) -> None:
    """Check a fleet file against the store, and say what importing it would do."""
    from monitor.fleet.fileformat import FleetFileError
    from monitor.fleet.importer import check as check_fleet

    parsed, _ = _read(path)
    store = open_store()
    try:
        with store.session() as db:
            plan = check_fleet(db, parsed)
    except FleetFileError as e:
        raise fail(f"{path} cannot be imported:\n{e}") from None
    finally:
        store.dispose()
    _say(plan, done=False)


@app.command("import")
def import_fleet(
    path: FileArg,
    credentials: Annotated[
        Path,
        typer.Option(
            help="Where to write each device's secret (CSV, readable by you alone); it must "
            "not exist: secrets are shown this once."
        ),
    ],
) -> None:
    """Add every worker and device in the file, or nothing: the file is checked whole first.
    The devices' secrets go to the credentials file, once."""
    from monitor.fleet.fileformat import FleetFileError
    from monitor.fleet.importer import apply, hash_pins, sha256

    if credentials.exists():
        raise fail(f"{credentials} exists: choose a new file (secrets are written once)")
    parsed, text = _read(path)
    started = time.monotonic()
    hashes = hash_pins(parsed)
    # Written beside its final name, readable by its owner alone, and given that name only
    # once the import has committed: never a file of secrets for devices that do not exist.
    partial = credentials.with_name(f".{credentials.name}.partial")
    store = open_store()
    try:
        with store.begin() as db:
            imported = apply(
                db,
                parsed,
                hashes,
                actor="cli",
                public_url=settings().public_url,
                file_sha256=sha256(text),
            )
            _write(partial, imported)
        os.replace(partial, credentials)
    except FleetFileError as e:
        raise fail(f"{path} cannot be imported, nothing was changed:\n{e}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        store.dispose()
    workers = len(parsed.fleet.workers)
    typer.echo(
        f"added {workers} workers and {len(imported)} devices in "
        f"{time.monotonic() - started:.1f} s; their credentials are in {credentials}"
    )
    typer.echo(BROKER_RELOAD_HINT)


def _write(path: Path, imported: list[Imported]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CREDENTIAL_COLUMNS)
        for i in imported:
            c = i.credential
            writer.writerow(
                (
                    c.device_id,
                    c.kind,
                    i.worker,
                    i.organisation,
                    i.team or "",
                    c.secret,
                    c.identifier or "",
                    c.server_url or "",
                    c.setup_link or "",
                )
            )
