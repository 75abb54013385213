"""The worker line's callers: whose registered phone a number is, and the device of kind
"line" through which that worker's texts and calls to the Vigil number reach ingest.

Each worker has at most one line device, `line-<worker id>`, made the first time the worker
texts or calls (or ahead of that by `vigil line add`, gateways/line_cli.py). It is a device
like any other to ingest: its alerts are keyed by (device, alert id), its cancels follow the
worker's PINs and the device's wrong-PIN lockout, and an administrator who disables it
(`vigil device disable line-7`) turns the worker's line off: their texts and calls are then
refused, and recorded as refused. It has no account at the broker, and its secret is made at
random and shown to nobody.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.devices.models import Device
from monitor.devices.trackers import LINE
from monitor.orgs.models import Worker
from monitor.phones import SPACING, normalise
from monitor.security import hash_device_secret, new_device_secret

KIND = LINE  # no account at the broker, nor for evidence uploads (HTTP_ONLY_KINDS)
# Its messages come only from Twilio's webhooks: "silent" means nothing for it, so it counts
# as offline a day after its last text or call rather than within minutes.
HEARTBEAT_S = 86400


def _stored_normalised() -> ColumnElement[str]:
    # The same spacing taken out in SQL, so a worker's number matches as it was typed.
    column: ColumnElement[str] = Worker.phone.expression
    for char in SPACING:
        column = func.replace(column, char, "")
    return column


def device_id_of(worker_id: int) -> str:
    return f"line-{worker_id}"


@dataclass(frozen=True)
class Caller:
    """A worker texting or calling from their registered phone, and their line device."""

    worker_id: int
    device_id: str


class NotAWorker(Exception):
    """The number is no single worker's registered phone."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def workers_with(db: Session, number: str) -> list[int]:
    wanted = normalise(number)
    if len(wanted) < 4:  # an empty or junk From matches no one
        return []
    return list(db.scalars(select(Worker.id).where(_stored_normalised() == wanted).limit(5)).all())


def caller(db: Session, number: str) -> Caller:
    """The worker whose registered phone `number` is; NotAWorker when none is, or when
    several share it (then nobody can tell who needs help, and no alert names the wrong
    person: the number is refused, and the worker told to call the emergency services)."""
    found = workers_with(db, number)
    if not found:
        raise NotAWorker("unknown_number", "not the registered phone of any worker")
    if len(found) > 1:
        raise NotAWorker(
            "shared_number",
            "the registered phone of several workers: Vigil cannot tell who is asking",
        )
    return Caller(found[0], device_id_of(found[0]))


def ensure_device(db: Session, worker_id: int) -> str:
    """The worker's line device, made if it is not there yet (once, however many replicas
    make it at the same moment). An existing one is left as it is, disabled or not.
    NotAWorker if a device of another kind or worker has its name."""
    device_id = device_id_of(worker_id)
    existing = db.get(Device, device_id)
    if existing is not None:
        if existing.kind != KIND or existing.worker_id != worker_id:
            # Someone registered a device by that name by hand: never speak for it.
            raise NotAWorker("line_device_taken", f"device {device_id} is not this worker's line")
        return device_id
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    db.execute(
        dialect.insert(Device)
        .values(
            id=device_id,
            worker_id=worker_id,
            kind=KIND,
            secret_hash=hash_device_secret(new_device_secret()),
            heartbeat_interval_s=HEARTBEAT_S,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return device_id
