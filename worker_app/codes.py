"""Enrolment: a new phone-app device for a worker, and the one-time code that hands its
credentials to the app (issued, redeemed once, refused with a reason)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.config import Settings
from monitor.db import utcnow
from monitor.devices import service as devices
from monitor.devices.models import Device
from monitor.orgs.models import Worker
from worker_app.models import AppEnrolment

# Crockford's base 32: no I, L, O or U, so what is read aloud or typed is not mistaken.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 16 characters of 32: 80 random bits, typed in four groups of four if the link cannot be.
LENGTH = 16
_MISREAD = str.maketrans("OIL", "011", "- ")


class EnrolmentError(ValueError):
    pass


class Refused(Exception):
    """A code that cannot be redeemed: `status` 404 (unknown) or 410 (used, expired,
    revoked), and why, in words for the app and the audit log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def new_code() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(chars[i : i + 4] for i in range(0, LENGTH, 4))


def normalised(code: str) -> str | None:
    """The code as issued, without its dashes, whatever the case and the look-alikes typed
    (O for 0, I or L for 1); None if it cannot be one."""
    text = code.upper().translate(_MISREAD)
    if len(text) != LENGTH or any(c not in ALPHABET for c in text):
        return None
    return text


def code_hash(code: str) -> str:
    """What is stored of a code: its sha256. The code has 80 random bits, so no salt or slow
    hash is needed to keep a stolen table from giving codes back (docs/security.md)."""
    return hashlib.sha256(code.encode()).hexdigest()


def link(settings: Settings, code: str) -> str:
    # In the fragment: a browser never sends it, so no server's or proxy's log holds it.
    return f"{settings.public_url.rstrip('/')}/app/#enrol={code}"


@dataclass(frozen=True)
class Issued:
    code: str
    device_id: str
    worker_id: int
    worker_name: str
    expires_at: datetime
    revoked: list[str]


def app_devices(db: Session, worker_id: int) -> list[str]:
    """The worker's enabled devices that were made for the app."""
    return list(
        db.scalars(
            select(Device.id)
            .where(
                Device.worker_id == worker_id,
                Device.enabled.is_(True),
                Device.id.in_(select(AppEnrolment.device_id)),
            )
            .order_by(Device.id)
        )
    )


def issue(
    db: Session,
    worker_id: int,
    *,
    issued_by: str,
    minutes: int,
    heartbeat_s: int,
    address: str = "",
) -> Issued:
    """A new app device for the worker and its enrolment code; the worker's earlier app
    devices are disabled (their phones are refused by the broker from now on)."""
    worker = db.get(Worker, worker_id)
    if worker is None:
        raise EnrolmentError(f"no worker {worker_id}")
    revoked = app_devices(db, worker_id)
    for device_id in revoked:
        devices.set_enabled(db, device_id, False)
        audit(db, issued_by, "device_disabled", device_id, address=address, why="enrolled again")
    device_id = f"app-{secrets.token_hex(6)}"
    # The secret made here is dropped: the app is given a new one when it redeems the code,
    # so the secret is never anywhere but in that one answer.
    devices.add_device(
        db, device_id, worker_id=worker_id, kind="phone", heartbeat_interval_s=heartbeat_s
    )
    code, now = new_code(), utcnow()
    expires_at = now + timedelta(minutes=minutes)
    db.add(
        AppEnrolment(
            code_hash=code_hash(code.replace("-", "")),
            device_id=device_id,
            worker_id=worker_id,
            issued_by=issued_by,
            issued_at=now,
            expires_at=expires_at,
        )
    )
    audit(
        db,
        issued_by,
        "app_enrolment_issued",
        device_id,
        address=address,
        worker=worker_id,
        expires_at=expires_at.isoformat(),
        revoked=revoked,
    )
    return Issued(code, device_id, worker_id, worker.name, expires_at, revoked)


@dataclass(frozen=True)
class Redeemed:
    device_id: str
    secret: str
    worker_name: str
    heartbeat_s: int


def redeem(db: Session, code: str, address: str) -> Redeemed:
    """Exchange a code, once, for its device's credentials: the device is given a new secret
    here, which only the answer carries. Raises Refused."""
    text = normalised(code)
    row = (
        db.scalar(select(AppEnrolment).where(AppEnrolment.code_hash == code_hash(text)))
        if text
        else None
    )
    if row is None:
        raise Refused(404, "unknown enrolment code")
    if row.redeemed_at is not None:
        raise Refused(410, "this enrolment code has already been used")
    now = utcnow()
    if row.expires_at <= now:
        raise Refused(410, "this enrolment code has expired")
    device = db.get(Device, row.device_id)
    worker = db.get(Worker, row.worker_id)
    if device is None or worker is None or not device.enabled:
        raise Refused(410, "this enrolment code has been revoked")
    # Claimed by a conditional update: of two requests with the same code, on any replicas,
    # one gets the credentials and the other a refusal.
    claimed = db.execute(
        update(AppEnrolment)
        .where(AppEnrolment.id == row.id, AppEnrolment.redeemed_at.is_(None))
        .values(redeemed_at=now, redeemed_from=address[:64])
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Refused(410, "this enrolment code has already been used")
    secret = devices.rotate_secret(db, device.id)
    audit(
        db,
        f"device:{device.id}",
        "app_enrolment_redeemed",
        device.id,
        address=address,
        worker=worker.id,
    )
    return Redeemed(device.id, secret, worker.name, device.heartbeat_interval_s)
