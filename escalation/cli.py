"""`vigil policy load|dump|check`: escalation policies and contacts as a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from escalation import policies, policy_files
from escalation.policies import PolicyError
from monitor.cli import fail, open_store
from monitor.cli.common import dump_stored

app = typer.Typer(help="Escalation policies and contacts.", no_args_is_help=True)
FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def _parse(path: Path) -> policies.PolicyFile:
    try:
        return policy_files.check(path.read_text(encoding="utf-8"))
    except PolicyError as exc:
        raise fail(f"{path}:\n{exc}") from exc


@app.command("load")
def load(path: FileArg) -> None:
    """Make the stored contacts and policies exactly those of FILE (checked first; nothing
    changes if any of it is wrong). Running escalations keep the policy they started with."""
    parsed = _parse(path)
    store = open_store()
    try:
        with store.begin() as db:
            policy_files.load(db, parsed, actor="cli", source=str(path))
    finally:
        store.dispose()
    typer.echo(f"loaded {len(parsed.contacts)} contacts and {len(parsed.policies)} policies")


@app.command("check")
def check(path: FileArg) -> None:
    """Check FILE without loading it."""
    parsed = _parse(path)
    typer.echo(f"{path}: {len(parsed.contacts)} contacts, {len(parsed.policies)} policies, valid")


@app.command("dump")
def dump(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout.")] = None,
) -> None:
    """Write the stored contacts and policies as YAML, in the format `load` reads."""
    dump_stored(policies.dump, output)
