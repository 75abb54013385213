"""The `vigil` command line (Typer)."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.config import Settings
from monitor.db import Store

app = typer.Typer(
    help="Vigil: lone-worker safety and panic-alert monitoring.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
user_app = typer.Typer(help="People who use the console and API.", no_args_is_help=True)
worker_app = typer.Typer(help="Lone workers.", no_args_is_help=True)
device_app = typer.Typer(help="Badges and phones.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(worker_app, name="worker")
app.add_typer(device_app, name="device")
audit_app = typer.Typer(help="Proof of what happened: the incident log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
evidence_app = typer.Typer(help="Audio evidence: checks and retention.", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")
locations_app = typer.Typer(help="Location history.", no_args_is_help=True)
app.add_typer(locations_app, name="locations")


BROKER_RELOAD_HINT = (
    "A running `vigil demo`, or `vigil serve` with VIGIL_BROKER_DIR, applies it at the broker "
    "at once; otherwise run `vigil mosquitto-config --pid-file <mosquitto's pid file>`."
)


def settings() -> Settings:
    return Settings()


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


@app.callback()
def main(
    data_dir: Annotated[Path | None, typer.Option(help="Overrides VIGIL_DATA_DIR.")] = None,
    database_url: Annotated[str | None, typer.Option(help="Overrides VIGIL_DATABASE_URL.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    if data_dir is not None:
        os.environ["VIGIL_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        os.environ["VIGIL_DATABASE_URL"] = database_url
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def open_store() -> Store:
    from monitor.migrate import upgrade

    store = Store(settings().sqlalchemy_url)
    upgrade(store)
    return store


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Overrides VIGIL_HTTP_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides VIGIL_HTTP_PORT.")] = None,
) -> None:
    """Run the service: MQTT ingest, escalation, the API and the console."""
    from monitor.server import Service

    s = settings()
    s = s.model_copy(
        update={k: v for k, v in (("http_host", host), ("http_port", port)) if v is not None}
    )
    service = Service(s)
    service.start()
    service.serve()


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=500, help="Simulated devices.")] = 25,
    alert_rate: Annotated[float, typer.Option(help="Alerts per device per hour.")] = 2.0,
    port: Annotated[int, typer.Option(help="HTTP port of the console.")] = 8000,
) -> None:
    """Everything on this machine, no configuration: broker, store, console, fleet."""
    from monitor import demo as demo_mod
    from monitor.broker import BrokerError, free_port, wait_for_port

    s = settings().model_copy(update={"http_port": port, "http_host": "127.0.0.1"})
    if wait_for_port("127.0.0.1", port, 0.2):
        raise fail(f"port {port} is in use; choose another with --port {free_port()}")
    try:
        demo_mod.run(s, devices_count=devices, alert_rate=alert_rate)
    except BrokerError as e:
        raise fail(str(e)) from e


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision."""
    store = open_store()
    typer.echo(f"database is up to date: {store.engine.url.render_as_string(hide_password=True)}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every incident's hash chain; name the first entry that does not fit."""
    from monitor.alerts import chain

    store = open_store()
    with store.session() as db:
        verdict = chain.verify(db)
    if verdict.broken is not None:
        raise fail(f"the incident log has been tampered with: {verdict.broken}")
    typer.echo(
        f"incident log intact: incidents {verdict.incidents}, entries {verdict.entries}\n"
        f"digest of every chain's head: {verdict.digest}\n"
        "(keep the digest somewhere else: a later one tells whether whole incidents or their "
        "newest entries were removed)"
    )


@locations_app.command("purge")
def locations_purge(
    dry_run: Annotated[bool, typer.Option(help="Count what would go; delete nothing.")] = False,
) -> None:
    """Delete location history outside alerts and visits older than the retention time
    (the service also does this every VIGIL_LOCATION_PURGE_EVERY_S)."""
    from datetime import timedelta

    from monitor.db import utcnow
    from monitor.privacy import retention

    s = settings()
    if s.location_retention_days == 0:
        raise fail("VIGIL_LOCATION_RETENTION_DAYS is 0: location history is kept for ever")
    store = open_store()
    keep, now = timedelta(days=s.location_retention_days), utcnow()
    deleted = 0
    with store.session() as reading:
        for batch in retention.expired(reading, now, keep):
            if dry_run:
                deleted += len(batch.doomed)
                continue
            if batch.doomed:
                with store.begin() as db:
                    n = retention.delete_fixes(db, batch.doomed)
                    audit(db, "cli", "locations_purged", f"{n} fixes", days=keep.days)
                deleted += n
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {deleted} location fixes older than {s.location_retention_days} days")


@evidence_app.command("verify")
def evidence_verify(
    evidence_pk: Annotated[
        int | None, typer.Option("--id", help="Only this clip (the evidence record's id).")
    ] = None,
) -> None:
    """Read stored clips back from the evidence store and check their sha256 against the
    one recorded at upload; each check goes into the clip's custody."""
    from monitor.evidence import custody, storage
    from monitor.evidence.models import Evidence

    s = settings()
    store = open_store()
    if evidence_pk is not None:
        with store.session() as db:
            ev = db.get(Evidence, evidence_pk)
        if ev is None:
            raise fail(f"no evidence {evidence_pk}")
        if ev.purged_at is not None:
            raise fail(f"the audio of evidence {evidence_pk} was purged on {ev.purged_at:%Y-%m-%d}")
        if ev.stored_path is None:
            raise fail(f"evidence {evidence_pk} has no uploaded audio")
    checked = failed = 0
    for result in custody.verify(store, storage.from_settings(s), evidence_pk=evidence_pk):
        checked += 1
        if result.problem is not None:
            failed += 1
            typer.secho(f"FAILED {result.label} at {result.where}: {result.problem}", fg="red")
    if failed:
        raise fail(f"{failed} of {checked} stored clips failed the check")
    typer.echo(f"{checked} stored clips checked: each matches the sha256 recorded at upload")


@evidence_app.command("purge")
def evidence_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; delete nothing.")
    ] = False,
) -> None:
    """Delete the audio of clips whose incident closed more than VIGIL_EVIDENCE_RETENTION_DAYS
    ago, except incidents on hold; each deletion goes into the clip's custody and the audit log."""
    from monitor.evidence import retention, storage

    s = settings()
    days = s.evidence_retention_days
    purged = failed = 0
    verb = "would purge" if dry_run else "purged"
    for d in retention.purge(open_store(), storage.from_settings(s), days=days, dry_run=dry_run):
        if d.failed is not None:
            failed += 1
            typer.secho(f"FAILED {d.label} at {d.where}: {d.failed}", fg="red")
        elif d.kept is not None:
            typer.echo(f"kept {d.label} ({d.incident}): {d.kept}")
        else:
            purged += 1
            typer.echo(f"{verb} {d.label} ({d.incident}): {d.where}")
    if failed:
        raise fail(f"{failed} clips could not be purged; nothing was changed for them")
    typer.echo(f"{verb} {purged} clips (retention {days} days)")


def _user_active(username: str, active: bool) -> None:
    from monitor.users.service import UserError, set_active

    store = open_store()
    try:
        with store.begin() as db:
            set_active(db, username, active)
            audit(db, "cli", "user_enabled" if active else "user_disabled", username)
    except UserError as e:
        raise fail(str(e)) from e
    typer.echo(f"user {username} {'enabled' if active else 'disabled'}")


@user_app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user (left, or a password to be reset): sign-in, the API and the console
    refuse them at once; an open console is closed within a minute."""
    _user_active(username, False)


@user_app.command("enable")
def user_enable(username: str) -> None:
    """Enable a user again."""
    _user_active(username, True)


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="operator, supervisor or admin")] = "operator",
    full_name: Annotated[str, typer.Option()] = "",
    org: Annotated[
        str | None,
        typer.Option(help="Limit the user to this organisation (default: the whole service)."),
    ] = None,
    team: Annotated[
        str | None, typer.Option(help="Limit the user to this team of the organisation.")
    ] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Add a console/API user."""
    from monitor.users.models import Role
    from monitor.users.service import UserError, add_user

    try:
        role_enum = Role(role)
    except ValueError:
        raise fail("role must be operator, supervisor or admin") from None
    store = open_store()
    try:
        with store.begin() as db:
            user = add_user(
                db, username, password, role_enum, full_name=full_name, org=org, team=team
            )
            audit(db, "cli", "user_added", username, role=role_enum.value, org=org, team=team)
            seen = f"team {team} of {org}" if team else org or "the whole service"
            typer.echo(f"user {user.username} added ({user.role}, sees {seen})")
    except UserError as e:
        raise fail(str(e)) from e


@worker_app.command("add")
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


@device_app.command("add")
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


@app.command("mosquitto-config")
def mosquitto_config(
    out: Annotated[Path, typer.Option(help="Directory for passwords, acl, mosquitto.conf.")] = Path(
        "mosquitto"
    ),
    port: Annotated[
        int, typer.Option(help="The devices' listener port in the generated mosquitto.conf.")
    ] = 1883,
    bind: Annotated[str, typer.Option(help="The devices' listener address.")] = "0.0.0.0",
    service_port: Annotated[
        int, typer.Option(help="The service's own listener port (VIGIL_MQTT_PORT).")
    ] = 1884,
    service_bind: Annotated[
        str, typer.Option(help="The service's listener address: one devices cannot reach.")
    ] = "127.0.0.1",
    reload_pid: Annotated[
        int | None, typer.Option(help="Send this Mosquitto process SIGHUP to load the files.")
    ] = None,
    pid_file: Annotated[
        Path | None,
        typer.Option(help="Read the Mosquitto process id from this file, then send SIGHUP."),
    ] = None,
    tls_port: Annotated[int | None, typer.Option(help="Add a TLS listener on this port.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="The TLS listener's certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key.")] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(help="Also require client certificates signed by this CA."),
    ] = None,
) -> None:
    """Write Mosquitto's password file and ACL from the device registry (and a config), and
    with --reload-pid or --pid-file make the running broker load them: a disabled device or
    an old secret is then refused at its next connect."""
    from monitor import broker

    s = settings()
    if not s.mqtt_password:
        raise fail("set VIGIL_MQTT_PASSWORD: the service account's password goes in the file")
    if pid_file is not None:
        try:
            reload_pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as e:
            raise fail(f"cannot read a process id from {pid_file}: {e}") from e
    ports = [port, service_port] + ([tls_port] if tls_port is not None else [])
    if len(set(ports)) != len(ports):
        raise fail("--port, --service-port and --tls-port must be different ports")
    tls = None
    if tls_port is not None or tls_cert is not None or tls_key is not None:
        if tls_port is None or tls_cert is None or tls_key is None:
            raise fail("a TLS listener needs --tls-port, --tls-cert and --tls-key together")
        for path in (tls_cert, tls_key, tls_client_ca):
            if path is not None and not path.is_file():
                raise fail(f"no such file: {path}")
        tls = broker.TlsListener(tls_port, tls_cert, tls_key, tls_client_ca, bind)
    store = open_store()
    with store.session() as db:
        files = broker.write_config(
            db,
            out,
            port,
            s.mqtt_username,
            s.mqtt_password,
            bind,
            tls,
            service_port=service_port,
            service_bind=service_bind,
        )
    auth = files.auth
    typer.echo(
        f"wrote {auth.passwords}, {auth.acl}, {auth.service_passwords}, {auth.service_acl}"
        f" and {files.conf}"
    )
    if s.mqtt_port != service_port:
        typer.echo(
            f"Devices connect to port {port}; the service connects to port {service_port}:"
            f" set VIGIL_MQTT_PORT={service_port}.",
            err=True,
        )
    if reload_pid is None:
        typer.echo("Send Mosquitto SIGHUP to load them (kill -HUP <pid>).", err=True)
        return
    try:
        os.kill(reload_pid, signal.SIGHUP)
    except OSError as e:
        raise fail(f"could not signal Mosquitto (process {reload_pid}): {e}") from e
    typer.echo(f"sent SIGHUP to Mosquitto (process {reload_pid}): it loads them now")


@app.command()
def sim(
    credentials: Annotated[Path, typer.Option(help="JSON list of device credentials.")],
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[
        int, typer.Option(help="The broker's port for devices (not the service's).")
    ] = 1883,
    place: Annotated[str, typer.Option(help="LAT,LON the fleet walks around.")] = "51.5072,-0.1276",
    alert_rate: Annotated[float, typer.Option(help="Alerts per device per hour.")] = 0.5,
    visit_rate: Annotated[float, typer.Option(help="Visits per device per hour.")] = 1.0,
    location_every: Annotated[float, typer.Option(help="Seconds between locations.")] = 30.0,
    heartbeat_every: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 60.0,
    processes: Annotated[
        int, typer.Option(help="Spread the fleet over N processes (about 10,000 devices each).")
    ] = 1,
    source_addresses: Annotated[
        str | None, typer.Option(help="Local addresses to connect from, A,B,... (127.0.0.x).")
    ] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Run a simulated fleet of badges and phones against the broker."""
    from device_sim.cli import run

    s = settings()
    argv = [
        "--host",
        host or s.mqtt_host,
        "--port",
        str(port),
        "--credentials",
        str(credentials),
        "--place",
        place,
        "--alert-rate",
        str(alert_rate),
        "--visit-rate",
        str(visit_rate),
        "--location-every",
        str(location_every),
        "--heartbeat-every",
        str(heartbeat_every),
        "--processes",
        str(processes),
    ]
    if source_addresses:
        argv += ["--source-addresses", source_addresses]
    if duration is not None:
        argv += ["--duration", str(duration)]
    raise typer.Exit(run(argv))


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


@device_app.command("disable")
def device_disable(device_id: str) -> None:
    """Disable a device (lost, stolen, retired): its messages are refused from now on."""
    from monitor.devices.service import set_enabled

    _device_change(
        device_id,
        "device_disabled",
        lambda db: f"device {set_enabled(db, device_id, False).id} disabled",
    )


@device_app.command("enable")
def device_enable(device_id: str) -> None:
    """Enable a device again."""
    from monitor.devices.service import set_enabled

    _device_change(
        device_id,
        "device_enabled",
        lambda db: f"device {set_enabled(db, device_id, True).id} enabled",
    )


@device_app.command("rotate")
def device_rotate(device_id: str) -> None:
    """Give a device a new secret, printed once; the old one stops working."""
    from monitor.devices.service import rotate_secret

    _device_change(
        device_id,
        "device_secret_rotated",
        lambda db: f"new secret for {device_id} (shown once):\n" + rotate_secret(db, device_id),
    )


@device_app.command("list")
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


@device_app.command("seed-demo")
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


# Extensions (escalation's `vigil policy ...`) add their own command groups.
for _ep in entry_points(group="vigil.commands"):
    app.add_typer(_ep.load(), name=_ep.name)

# And commands of `vigil device` (the worker app's `vigil device enrol`).
for _ep in entry_points(group="vigil.device_commands"):
    device_app.command(_ep.name)(_ep.load())
