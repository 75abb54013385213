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
from monitor.devices.trackers import OSMAND, identifier_of

app = typer.Typer(help="Badges and phones.", no_args_is_help=True)


@app.command("add")
def device_add(
    device_id: str,
    worker: Annotated[int | None, typer.Option(help="Id of the worker who carries it.")] = None,
    kind: Annotated[
        str,
        typer.Option(
            help="badge, phone, osmand (Traccar Client, an OsmAnd-protocol tracker) or "
            "owntracks (the OwnTracks app)"
        ),
    ] = "badge",
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
    if kind == OSMAND:
        _show_identifier(device_id, secret, "added")
        return
    typer.echo(f"device {device.id} added. Its secret (shown once, store it on the device):")
    typer.echo(secret)
    typer.echo(BROKER_RELOAD_HINT, err=True)


def _show_identifier(device_id: str, secret: str, what: str) -> None:
    """A tracker's identifier, and a link that sets up Traccar Client (it reads the server
    URL and the identifier from a link or a QR code of it)."""
    identifier = identifier_of(device_id, secret)
    url = f"{settings().public_url.rstrip('/')}/osmand"
    typer.echo(
        f"tracker {device_id} {what}. Its device identifier is its only credential "
        "(shown once, never stored; anyone who has it can send this worker's positions "
        "and alarms):"
    )
    typer.echo(identifier)
    typer.echo(f"Server URL: {url}")
    typer.echo(
        f"Traccar Client set-up link (open it, or scan it as a QR code): {url}?id={identifier}"
    )


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
    from monitor.devices.models import Device
    from monitor.devices.service import rotate_secret

    secrets: list[str] = []

    def rotate(db: Session) -> str:
        secret = rotate_secret(db, device_id)
        device = db.get(Device, device_id)
        if device is not None and device.kind == OSMAND:
            secrets.append(secret)  # shown with its set-up link once committed
            return f"tracker {device_id}: its old identifier stops working now"
        return f"new secret for {device_id} (shown once):\n{secret}"

    _device_change(device_id, "device_secret_rotated", rotate)
    if secrets:
        _show_identifier(device_id, secrets[0], "has a new identifier")


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
