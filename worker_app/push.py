"""Web Push for the worker app: a device's push subscription (one per device, HTTP Basic
auth as for evidence uploads), and the sender that runs with the service."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, FastAPI, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.config import Settings
from monitor.db import utcnow
from monitor.deps import CurrentDevice, SessionDep, SettingsDep
from monitor.evidence.views import DevicePath
from worker_app import vapid
from worker_app.models import PushSubscription
from worker_app.push_sender import Pusher, credentials_of
from worker_app.vapid import from_b64url

router = APIRouter(prefix="/api/v1/devices", tags=["worker app"])

B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _decoded(value: str, what: str, size: int) -> bytes:
    if not B64URL.fullmatch(value):
        raise ValueError(f"{what} is not base64url")
    raw = from_b64url(value.rstrip("="))
    if len(raw) != size:
        raise ValueError(f"{what} must be {size} bytes, not {len(raw)}")
    return raw


class SubscriptionKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: Annotated[str, Field(min_length=1, max_length=100)]
    auth: Annotated[str, Field(min_length=1, max_length=32)]

    @field_validator("p256dh")
    @classmethod
    def _a_p256_point(cls, value: str) -> str:
        raw = _decoded(value, "keys.p256dh", 65)
        try:
            # Refuses anything that is not an uncompressed point on the curve: encrypting to
            # it would fail at every send instead.
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("keys.p256dh is not a P-256 public key") from None
        return value.rstrip("=")

    @field_validator("auth")
    @classmethod
    def _sixteen_bytes(cls, value: str) -> str:
        _decoded(value, "keys.auth", 16)
        return value.rstrip("=")


class SubscriptionIn(BaseModel):
    """The browser's PushSubscription as `JSON.stringify(subscription)` gives it."""

    model_config = ConfigDict(extra="forbid")

    endpoint: Annotated[str, Field(min_length=1, max_length=2048)]
    expirationTime: int | None = None  # the browser's own name
    keys: SubscriptionKeys

    @field_validator("endpoint")
    @classmethod
    def _an_https_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            raise ValueError("endpoint is not a URL") from None
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("endpoint must be an https:// URL")
        if not (value.isascii() and value.isprintable()) or " " in value:
            raise ValueError("endpoint must be printable ASCII with no spaces")
        if parts.username is not None or parts.fragment:
            raise ValueError("endpoint must be a plain https:// URL (no credentials or fragment)")
        return value


def allowed_host(settings: Settings, host: str) -> bool:
    """Whether `host` is one of VIGIL_PUSH_SERVICES (`*.` allows any subdomain): a device's
    subscription must not make the service send requests anywhere else."""
    host = host.lower().rstrip(".")
    for entry in settings.push_services.split(","):
        entry = entry.strip().lower()
        if (entry.startswith("*.") and host.endswith(entry[1:])) or host == entry:
            return True
    return False


def _keep(db: Session, row: dict[str, Any]) -> None:
    # One statement, so that two subscriptions of one device arriving together replace
    # each other instead of one failing on the primary key.
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(PushSubscription).values(**row)
    fresh = {k: v for k, v in row.items() if k != "device_id"}
    db.execute(stmt.on_conflict_do_update(index_elements=["device_id"], set_=fresh))


@router.post(
    "/{device_id}/push",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "Wrong device credentials"}},
)
def subscribe(
    device_id: DevicePath,
    body: SubscriptionIn,
    device: CurrentDevice,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Keep the device's push subscription, replacing any it had (HTTP Basic auth: DEVICE and
    its secret). Visit reminders and "help is on the way" are then also sent there."""
    host = urlsplit(body.endpoint).hostname or ""
    if not allowed_host(settings, host):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{host} is not a push service this service sends to (VIGIL_PUSH_SERVICES)",
        )
    _keep(
        db,
        {
            "device_id": device.id,
            "endpoint": body.endpoint,
            "p256dh": body.keys.p256dh,
            "auth": body.keys.auth,
            "credentials": credentials_of(device.secret_hash),
            "created_at": utcnow(),
        },
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{device_id}/push", status_code=status.HTTP_204_NO_CONTENT)
def unsubscribe(device_id: DevicePath, device: CurrentDevice, db: SessionDep) -> Response:
    """Forget the device's push subscription, if it has one."""
    db.execute(delete(PushSubscription).where(PushSubscription.device_id == device.id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def install(app: FastAPI, context: dict[str, Any]) -> None:
    settings: Settings = context["settings"]
    if not settings.push_enabled:
        return  # off: no routes, nothing sent; the app is given no key to subscribe with
    store = context["store"]
    app.include_router(router)
    # What enrolment's /app/config.json serves as `vapid_public_key`.
    app.state.vapid_public_key = lambda: vapid.keys(store).public_key
    # Started and stopped with the service, as an extension's runner is.
    app.state.runners.append(Pusher(store, settings))
