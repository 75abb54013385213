"""`vigil device`: badges and phones, their secrets, and the demo's fleet."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.cli.common import BROKER_RELOAD_HINT, fail, open_store, settings

app = typer.Typer(help="Badges and phones.", no_args_is_help=True)


@app.command("add")
def device_add(
    device_id: str,
    worker: Annotated[int | None, typer.Option(help="Id of the worker who carries it.")] = None,
    kind: Annotated[str, typer.Option(help="badge or phone")] = "badge",
    heartbeat: Annotated[
        int | None,
        typer.Option(help="Expected heartbeat interval, s (default VIGIL_DEFAULT_HEARTBEAT_S)."),
    ] = None,
) -> None:
    """Register a device and print its secret (shown this once only)."""
    from monitor.devices.service import DeviceError, add_device

    store = open_store()
    try:
        with store.begin() as db:
            device, secret = add_device(
                db,
                device_id,
                worker_id=worker,
                kind=kind,
                heartbeat_interval_s=heartbeat or settings().default_heartbeat_s,
            )
            audit(db, "cli", "device_added", device.id, worker=worker)
    except DeviceError as e:
        raise fail(str(e)) from e
    typer.echo(f"device {device.id} added. Its secret (shown once, store it on the device):")
    typer.echo(secret)
    typer.echo(BROKER_RELOAD_HINT, err=True)


def _device_change(device_id: str, action: str, change: Callable[[Session], str]) -> None:
    from monitor.devices.service import DeviceError

    store = open_store()
    try:
        with store.begin() as db:
            message = change(db)
            audit(db, "cli", action, device_id)
    except DeviceError as e:
        raise fail(str(e)) from e
    typer.echo(message)
    typer.echo(BROKER_RELOAD_HINT, err=True)


@app.command("disable")
def device_disable(device_id: str) -> None:
    """Disable a device (lost, stolen, retired): its messages are refused from now on."""
    from monitor.devices.service import set_enabled

    _device_change(
        device_id,
        "device_disabled",
        lambda db: f"device {set_enabled(db, device_id, False).id} disabled",
    )


@app.command("enable")
def device_enable(device_id: str) -> None:
    """Enable a device again."""
    from monitor.devices.service import set_enabled

    _device_change(
        device_id,
        "device_enabled",
        lambda db: f"device {set_enabled(db, device_id, True).id} enabled",
    )


@app.command("rotate")
def device_rotate(device_id: str) -> None:
    """Give a device a new secret, printed once; the old one stops working."""
    from monitor.devices.service import rotate_secret

    _device_change(
        device_id,
        "device_secret_rotated",
        lambda db: f"new secret for {device_id} (shown once):\n" + rotate_secret(db, device_id),
    )


@app.command("list")
def device_list() -> None:
    """List devices with their state."""
    from monitor.devices.models import Device

    store = open_store()
    with store.session() as db:
        for d in db.scalars(select(Device).order_by(Device.id)):
            typer.echo(
                json.dumps(
                    {
                        "id": d.id,
                        "worker": d.worker_id,
                        "enabled": d.enabled,
                        "online": d.online,
                        "battery": d.battery,
                    }
                )
            )


@app.command("seed-demo")
def device_seed_demo(
    credentials: Annotated[Path, typer.Option(help="Where to write the fleet's credentials.")],
    count: Annotated[int, typer.Option(min=1, max=100_000)] = 25,
) -> None:
    """Create (or re-key) demo workers and devices; write their credentials for `vigil sim`."""
    from monitor.demo import seed

    store = open_store()
    with store.begin() as db:
        creds = seed(db, count)
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.write_text(json.dumps(creds, indent=1))
    credentials.chmod(0o600)
    typer.echo(f"{len(creds)} demo devices; credentials in {credentials}")
