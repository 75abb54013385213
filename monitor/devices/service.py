"""Device registry and health service functions: credentials, presence, offline detection."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.db import utcnow
from monitor.devices.models import CredentialsVersion, Device
from monitor.devices.trackers import OSMAND, new_tracker_secret
from monitor.orgs.models import Worker
from monitor.protocol import DEVICE_RE, Loc
from monitor.security import hash_device_secret, new_device_secret

# The OwnTracks app (gateways/owntracks), over MQTT or HTTP with its device secret.
OWNTRACKS = "owntracks"


class DeviceError(ValueError):
    pass


class DeviceExists(DeviceError):
    pass


def credentials_changed(db: Session) -> None:
    """Bump the credentials' version in the caller's transaction: every replica that keeps
    the broker's password file (monitor/broker_sync.py) rewrites it once this commits."""
    db.execute(
        update(CredentialsVersion)
        .where(CredentialsVersion.id == 1)
        .values(version=CredentialsVersion.version + 1, changed_at=utcnow())
    )


# The kinds a device can be added as (a phone line, gateways/line, is made by its own command).
ADDED_KINDS = ("badge", "phone", OSMAND, OWNTRACKS)


def check_new_device(device_id: str, kind: str, heartbeat_interval_s: int) -> None:
    """What a new device must be, whatever adds it (one, or a whole fleet from a file)."""
    if not DEVICE_RE.match(device_id):
        raise DeviceError("device id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    if kind not in ADDED_KINDS:
        raise DeviceError(f"kind must be {', '.join(ADDED_KINDS[:-1])} or {ADDED_KINDS[-1]}")
    if heartbeat_interval_s < 10:
        raise DeviceError("heartbeat interval must be at least 10 s")


def add_device(
    db: Session,
    device_id: str,
    *,
    worker_id: int | None,
    kind: str = "badge",
    heartbeat_interval_s: int = 300,
) -> tuple[Device, str]:
    """Register a device; returns it with its new secret, which is never stored in clear."""
    check_new_device(device_id, kind, heartbeat_interval_s)
    if db.get(Device, device_id) is not None:
        raise DeviceExists(f"device {device_id} already exists")
    if worker_id is not None and db.get(Worker, worker_id) is None:
        raise DeviceError(f"no worker {worker_id}")
    secret = _new_secret(kind)
    device = Device(
        id=device_id,
        worker_id=worker_id,
        kind=kind,
        secret_hash=hash_device_secret(secret),
        heartbeat_interval_s=heartbeat_interval_s,
    )
    db.add(device)
    db.flush()
    credentials_changed(db)
    return device, secret


def _new_secret(kind: str) -> str:
    # A tracker's secret is part of its identifier, typed into its settings: shorter, and in
    # one case (monitor/devices/trackers.py).
    return new_tracker_secret() if kind == OSMAND else new_device_secret()


def _existing(db: Session, device_id: str) -> Device:
    device = db.get(Device, device_id)
    if device is None:
        raise DeviceError(f"no device {device_id}")
    return device


def rotate_secret(db: Session, device_id: str) -> str:
    """A new secret for the device (the old one stops working once the broker reloads)."""
    device = _existing(db, device_id)
    secret = _new_secret(device.kind)
    device.secret_hash = hash_device_secret(secret)
    credentials_changed(db)
    return secret


def set_enabled(db: Session, device_id: str, enabled: bool) -> Device:
    """A disabled device's messages are refused at once, and the broker turns it away once
    its password file is rewritten and reloaded."""
    device = _existing(db, device_id)
    if device.enabled != enabled:
        device.enabled = enabled
        credentials_changed(db)
    return device


def org_of(db: Session, device: Device) -> int | None:
    if device.worker_id is None:
        return None
    return db.scalar(select(Worker.org_id).where(Worker.id == device.worker_id))


# The columns of a `locations` row that `fix_row` fills, in its order.
FIX_COLUMNS = (
    "device_id",
    "worker_id",
    "device_ts",
    "received_at",
    "lat",
    "lon",
    "acc",
    "alt",
    "spd",
    "hdg",
    "src",
    "floor",
    "batt",
)


def fix_row(
    device_id: str,
    worker_id: int | None,
    at: datetime,
    loc: Loc,
    batt: int | None,
    received_at: datetime,
) -> tuple[Any, ...]:
    """A `locations` row for a position fix, as a tuple of `FIX_COLUMNS`: telemetry batches
    insert hundreds at once (`monitor.ingest.states.insert_fixes`)."""
    return (
        device_id,
        worker_id,
        at,
        received_at,
        loc.lat,
        loc.lon,
        loc.acc,
        loc.alt,
        loc.spd,
        loc.hdg,
        loc.src,
        loc.floor,
        batt,
    )


class Presence(Protocol):
    """What presence and position tracking needs of a device: the ORM row on the alert path,
    or the plain row a telemetry batch works on."""

    id: str
    online: bool
    heartbeat_interval_s: int
    last_seen_at: datetime | None
    offline_due_at: datetime | None
    last_lat: float | None
    last_lon: float | None
    last_acc: float | None
    last_fix_at: datetime | None


def note_fix(device: Presence, at: datetime, loc: Loc) -> bool:
    """Keep the device's last known position; True if this fix is the newest."""
    if device.last_fix_at is not None and at < device.last_fix_at:
        return False
    device.last_lat, device.last_lon, device.last_acc = loc.lat, loc.lon, loc.acc
    device.last_fix_at = at
    return True


def offline_deadline(device: Presence, seen_at: datetime) -> datetime:
    return seen_at + timedelta(seconds=2 * device.heartbeat_interval_s)


def mark_seen(db: Session, device: Presence, at: datetime) -> None:
    """The device was heard from; it is online until two heartbeat intervals pass."""
    device.last_seen_at = at
    device.offline_due_at = offline_deadline(device, at)
    device.online = True


def go_offline(db: Session, device_id: str, *, only_if_due: bool) -> Device | None:
    """Mark a device offline, once, whichever replica gets there first: the device if this
    call did it, else None."""
    now = utcnow()
    cond = [Device.id == device_id, Device.online.is_(True)]
    if only_if_due:
        cond.append(Device.offline_due_at <= now)
    claimed = db.execute(update(Device).where(*cond).values(online=False, offline_due_at=None))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    device = db.get(Device, device_id)
    assert device is not None
    db.refresh(device)
    return device
