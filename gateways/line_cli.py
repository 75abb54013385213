"""`vigil line add|list`: the worker line's devices, one per worker (gateways/line_workers.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import select

from gateways import line_workers
from monitor import phones
from monitor.audit.service import audit
from monitor.cli import fail, open_store
from monitor.devices.models import Device
from monitor.orgs.models import Worker

app = typer.Typer(
    help="The worker line: workers texting or calling the Vigil number.", no_args_is_help=True
)


@app.command("add")
def add(worker: Annotated[int, typer.Argument(help="The worker's id.")]) -> None:
    """Make a worker's line device now, rather than on their first text or call: to see it
    in the fleet, or to disable it (vigil device disable line-ID) before it is ever used."""
    store = open_store()
    try:
        with store.begin() as db:
            found = db.get(Worker, worker)
            if found is None:
                raise fail(f"no worker {worker}")
            if not found.phone:
                raise fail(f"worker {worker} has no phone registered (vigil worker add --phone)")
            shared = len(line_workers.workers_with(db, found.phone)) > 1
            device_id = line_workers.ensure_device(db, worker)
            audit(db, "cli", "line_added", device_id, worker=worker)
    except line_workers.NotAWorker as e:
        raise fail(e.reason) from e
    typer.echo(f"line {device_id} for worker {worker}, from {found.phone}")
    if shared:
        typer.secho(
            f"warning: another worker has {found.phone} too: texts and calls from it are "
            "refused until only one worker has it",
            fg=typer.colors.YELLOW,
            err=True,
        )


@app.command("list")
def list_lines() -> None:
    """Every worker with a registered phone, and their line device (if made yet)."""
    store = open_store()
    with store.session() as db:
        rows = db.execute(
            select(Worker.id, Worker.name, Worker.phone, Device.id, Device.enabled)
            .outerjoin(Device, (Device.worker_id == Worker.id) & (Device.kind == line_workers.KIND))
            .where(Worker.phone != "")
            .order_by(Worker.id)
        ).all()
    numbers = [phones.normalise(phone) for _, _, phone, _, _ in rows]
    for (worker_id, name, phone, device_id, enabled), number in zip(rows, numbers, strict=True):
        line = "no line yet" if device_id is None else device_id
        if device_id is not None and not enabled:
            line += " (disabled)"
        shared = " (shared with another worker: refused)" if numbers.count(number) > 1 else ""
        typer.echo(f"{worker_id}\t{name}\t{phone}{shared}\t{line}")
