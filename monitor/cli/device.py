"""`vigil device`: badges, phones and trackers, their secrets, and the demo's fleet. Every
change goes through monitor/devices/admin.py, as the console's Admin tab does, with the
command line as its author (`cli` in the audit log)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.orm import Session

from monitor.cli.common import BROKER_RELOAD_HINT, fail, open_store, settings
from monitor.devices.trackers import OSMAND
from monitor.orgs.scope import EVERYTHING

if TYPE_CHECKING:
    from monitor.devices.admin import Listed

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
    from monitor.devices import admin

    def add(db: Session) -> tuple[str, str]:
        device, secret = admin.add(
            db,
            EVERYTHING,
            device_id,
            worker_id=worker,
            kind=kind,
            heartbeat_interval_s=heartbeat or settings().default_heartbeat_s,
            actor="cli",
        )
        return device.kind, secret

    _show(device_id, "added", *_in_store(add))


def _in_store(change: Callable[[Session], tuple[str, str]]) -> tuple[str, str]:
    """Run a change in one transaction; the service's refusal is the command's error."""
    from monitor.devices.service import DeviceError

    store = open_store()
    try:
        with store.begin() as db:
            return change(db)
    except DeviceError as e:
        raise fail(str(e)) from e
    finally:
        store.dispose()


def _show(device_id: str, what: str, kind: str, secret: str) -> None:
    """The credential, shown this once: an MQTT device's secret, or a tracker's identifier
    with the link that sets up Traccar Client (it reads the server URL and the identifier
    from a link or a QR code of it)."""
    from monitor.devices.admin import credential

    cred = credential(device_id, kind, secret, settings().public_url)
    if cred.identifier is None:
        typer.echo(f"device {device_id} {what}. Its secret (shown once, store it on the device):")
        typer.echo(secret)
    else:
        typer.echo(
            f"tracker {device_id} {what}. Its device identifier is its only credential "
            "(shown once, never stored; anyone who has it can send this worker's positions "
            "and alarms):"
        )
        typer.echo(cred.identifier)
        typer.echo(f"Server URL: {cred.server_url}")
        typer.echo(
            f"Traccar Client set-up link (open it, or scan it as a QR code): {cred.setup_link}"
        )
    typer.echo(BROKER_RELOAD_HINT, err=True)


def _set_enabled(device_id: str, enabled: bool) -> None:
    from monitor.devices import admin

    def change(db: Session) -> tuple[str, str]:
        admin.set_enabled(db, EVERYTHING, device_id, enabled, actor="cli")
        return "", ""

    _in_store(change)
    typer.echo(f"device {device_id} {'enabled' if enabled else 'disabled'}")
    typer.echo(BROKER_RELOAD_HINT, err=True)


@app.command("disable")
def device_disable(device_id: str) -> None:
    """Disable a device (lost, stolen, retired): its messages are refused from now on."""
    _set_enabled(device_id, False)


@app.command("enable")
def device_enable(device_id: str) -> None:
    """Enable a device again."""
    _set_enabled(device_id, True)


@app.command("rotate")
def device_rotate(device_id: str) -> None:
    """Give a device a new secret, printed once; the old one stops working."""
    from monitor.devices import admin

    def rotate(db: Session) -> tuple[str, str]:
        device, secret = admin.rotate(db, EVERYTHING, device_id, actor="cli")
        return device.kind, secret

    kind, secret = _in_store(rotate)
    what = "identifier" if kind == OSMAND else "secret"
    _show(device_id, f"has a new {what} (the old one stops working now)", kind, secret)


@app.command("list")
def device_list(
    worker: Annotated[int | None, typer.Option(help="Only this worker's devices.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Only this kind: badge, phone, osmand, owntracks or line."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """Every device of every kind: its worker, kind, whether enabled and online, last seen."""
    from monitor.devices import admin
    from monitor.devices.service import DeviceError

    store = open_store()
    try:
        with store.session() as db:
            rows = admin.listed(db, worker_id=worker, kind=kind)
            if as_json:
                for r in rows:
                    typer.echo(json.dumps(_as_dict(r)))
                return
            lines = [_as_line(r) for r in rows]
    except DeviceError as e:
        raise fail(str(e)) from e
    finally:
        store.dispose()
    header = ("ID", "KIND", "WORKER", "STATE", "ONLINE", "LAST SEEN", "BATTERY")
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _as_dict(r: Listed) -> dict[str, object]:
    d = r.device
    return {
        "id": d.id,
        "kind": d.kind,
        "worker": d.worker_id,
        "worker_name": r.worker_name,
        "enabled": d.enabled,
        "online": d.online,
        "last_seen": _when(d.last_seen_at),
        "battery": d.battery,
    }


def _as_line(r: Listed) -> tuple[str, ...]:
    d = r.device
    return (
        d.id,
        d.kind,
        f"{d.worker_id} {r.worker_name}" if d.worker_id is not None else "-",
        "enabled" if d.enabled else "disabled",
        "online" if d.online else "offline",
        _when(d.last_seen_at) or "never",
        f"{d.battery} %" if d.battery is not None else "-",
    )


def _when(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
