"""`vigil sop load|check|dump`: standard operating procedures as a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import dump_stored, fail, open_store
from monitor.procedures import definitions, files
from monitor.procedures.definitions import ProcedureError
from monitor.procedures.models import ProcedureFile

app = typer.Typer(help="Standard operating procedures: alerts' checklists.", no_args_is_help=True)
FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def _parse(path: Path) -> ProcedureFile:
    try:
        return definitions.parse_file(path.read_text(encoding="utf-8"))
    except ProcedureError as exc:
        raise fail(f"{path}:\n{exc}") from exc


@app.command("load")
def load(path: FileArg) -> None:
    """Make the stored procedures exactly those of FILE (checked first, the organisations
    and teams it names too; nothing changes if any of it is wrong). Open alerts keep the
    checklist they already have."""
    parsed = _parse(path)
    store = open_store()
    try:
        with store.begin() as db:
            try:
                loaded = files.load(db, parsed, actor="cli", source=str(path))
            except ProcedureError as exc:
                raise fail(f"{path}:\n{exc}") from exc
    finally:
        store.dispose()
    typer.echo(f"loaded {loaded.procedures} procedures ({loaded.summary})")


@app.command("check")
def check(path: FileArg) -> None:
    """Check FILE without loading it (the names of organisations and teams are checked by
    `load`, against the store)."""
    parsed = _parse(path)
    typer.echo(f"{path}: {len(parsed.procedures)} procedures, valid")


@app.command("dump")
def dump(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
) -> None:
    """Write the stored procedures as YAML, in the format `load` reads."""
    dump_stored(definitions.dump, output)
