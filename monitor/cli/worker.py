"""`vigil worker`: the lone workers and their PINs."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli.common import fail, open_store

app = typer.Typer(help="Lone workers.", no_args_is_help=True)


@app.command("add")
def worker_add(
    name: str,
    phone: Annotated[str, typer.Option()] = "",
    team: Annotated[str | None, typer.Option()] = None,
    org: Annotated[str, typer.Option(help="Organisation name.")] = "Default",
    notes: Annotated[str, typer.Option(help="For responders: medical, vehicle...")] = "",
    cancel_pin: Annotated[str, typer.Option(prompt=True, hide_input=True)] = "",
    duress_pin: Annotated[str, typer.Option(prompt=True, hide_input=True)] = "",
) -> None:
    """Add a lone worker with their cancel and duress PINs (kept only as hashes)."""
    from pydantic import ValidationError

    from monitor.orgs.models import WorkerIn
    from monitor.orgs.service import add_worker

    try:
        spec = WorkerIn(
            name=name,
            phone=phone,
            team=team,
            responder_notes=notes,
            cancel_pin=cancel_pin,
            duress_pin=duress_pin,
        )
    except ValidationError as e:
        raise fail(
            "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        ) from None
    store = open_store()
    try:
        with store.begin() as db:
            w = add_worker(
                db,
                name=spec.name,
                phone=spec.phone,
                team=spec.team,
                responder_notes=spec.responder_notes,
                cancel_pin=spec.cancel_pin,
                duress_pin=spec.duress_pin,
                org_name=org,
            )
            typer.echo(f"worker {w.id} added: {w.name}")
    except ValueError as e:
        raise fail(str(e)) from e
