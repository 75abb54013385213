"""Administering devices, for `vigil device` and the console's Admin tab alike: the registry
listed with its filters, and adding, disabling, enabling and rotating within what the person
may see (a device is in a scope through its worker), with the credential shown once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.devices import service
from monitor.devices.models import Device
from monitor.devices.service import OWNTRACKS, DeviceError
from monitor.devices.trackers import LINE, OSMAND, identifier_of
from monitor.orgs.models import Worker
from monitor.orgs.scope import EVERYTHING, Scope

# What can be added by hand, in the order the console offers them; a phone-line device is
# made by the line gateway for a worker's registered phone (gateways/line_workers.py).
ADDABLE = ("badge", "phone", OSMAND, OWNTRACKS)
KINDS = (*ADDABLE, LINE)


class DeviceNotFound(DeviceError):
    """No such device, or not one the person may see: the same answer, so that ids outside a
    scope cannot be found by trying them."""


@dataclass(frozen=True)
class Listed:
    device: Device
    worker_name: str | None


def listed(
    db: Session,
    scope: Scope = EVERYTHING,
    *,
    worker_id: int | None = None,
    kind: str | None = None,
) -> list[Listed]:
    """Every device of every kind in the scope, by id; only the worker's, or only one kind."""
    if kind is not None and kind not in KINDS:
        raise DeviceError(f"kind must be one of {', '.join(KINDS)}")
    query = (
        select(Device, Worker.name)
        .outerjoin(Worker, Worker.id == Device.worker_id)
        .where(scope.covers(Device.worker_id))
        .order_by(Device.id)
    )
    if worker_id is not None:
        query = query.where(Device.worker_id == worker_id)
    if kind is not None:
        query = query.where(Device.kind == kind)
    return [Listed(d, name) for d, name in db.execute(query).all()]


def device_in(db: Session, scope: Scope, device_id: str) -> Device:
    device = db.get(Device, device_id)
    if device is None or not _worker_admitted(db, scope, device.worker_id):
        raise DeviceNotFound(f"no device {device_id}")
    return device


def _worker_admitted(db: Session, scope: Scope, worker_id: int | None) -> bool:
    if scope.service_wide:
        return True
    # A device of nobody is seen only by the whole service's people, as the list shows.
    worker = db.get(Worker, worker_id) if worker_id is not None else None
    return worker is not None and scope.admits(worker.org_id, worker.team_id)


# Each change is audited here, in its transaction, with who made it ("cli" or
# "user:<name>") and never its secret.


def add(
    db: Session,
    scope: Scope,
    device_id: str,
    *,
    worker_id: int | None,
    kind: str,
    heartbeat_interval_s: int,
    actor: str,
    address: str = "",
) -> tuple[Device, str]:
    """A new device for a worker in the scope (someone limited to an organisation or a team
    must name one of its workers); its secret, never stored, is returned to be shown once."""
    if worker_id is None and not scope.service_wide:
        raise DeviceError("choose the worker who carries it")
    if worker_id is not None and not _worker_admitted(db, scope, worker_id):
        raise DeviceError(f"no worker {worker_id}")
    device, secret = service.add_device(
        db, device_id, worker_id=worker_id, kind=kind, heartbeat_interval_s=heartbeat_interval_s
    )
    audit(db, actor, "device_added", device.id, address=address, worker=worker_id, kind=kind)
    return device, secret


def set_enabled(
    db: Session, scope: Scope, device_id: str, enabled: bool, *, actor: str, address: str = ""
) -> Device:
    device_in(db, scope, device_id)
    device = service.set_enabled(db, device_id, enabled)
    action = "device_enabled" if enabled else "device_disabled"
    audit(db, actor, action, device_id, address=address)
    return device


def rotate(
    db: Session, scope: Scope, device_id: str, *, actor: str, address: str = ""
) -> tuple[Device, str]:
    """A new secret, returned to be shown once; the old one is refused from now on."""
    device = device_in(db, scope, device_id)
    if device.kind == LINE:
        raise DeviceError(
            f"device {device_id} is a worker's phone line: it has no secret to rotate"
        )
    secret = service.rotate_secret(db, device_id)
    audit(db, actor, "device_secret_rotated", device_id, address=address)
    return device, secret


@dataclass(frozen=True)
class Credential:
    """What a device is set up with, shown once: an MQTT device's username and password, or a
    tracker's identifier with the server's address and Traccar Client's set-up link."""

    device_id: str
    kind: str
    secret: str
    identifier: str | None = None
    server_url: str | None = None
    setup_link: str | None = None


def credential(device_id: str, kind: str, secret: str, public_url: str) -> Credential:
    if kind != OSMAND:
        return Credential(device_id, kind, secret)
    identifier = identifier_of(device_id, secret)
    url = f"{public_url.rstrip('/')}/osmand"
    # Traccar Client reads the server URL and the identifier from a link or a QR code of it.
    return Credential(device_id, kind, secret, identifier, url, f"{url}?id={identifier}")
