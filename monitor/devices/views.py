"""REST routes for the device registry and fleet health, and its administration in the
console's Admin tab (add a device for a worker, disable, enable, a new secret): the rules are
monitor/devices/admin.py's, as for `vigil device`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from monitor.alerts import rules
from monitor.alerts.models import Alert
from monitor.broker_sync import apply_now
from monitor.deps import (
    ReadSessionDep,
    ScopeDep,
    SettingsDep,
    StoreDep,
    Supervisor,
    client_address,
    no_store,
)
from monitor.devices import admin
from monitor.devices.models import DeviceOut
from monitor.devices.service import DeviceError, DeviceExists
from monitor.orgs.models import Worker
from monitor.orgs.scope import Scope
from monitor.privacy import positions
from monitor.users.accounts import actor_of
from monitor.users.models import User
from monitor.visits.models import Visit, VisitState

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("")
def list_devices(
    db: ReadSessionDep,
    user: Supervisor,
    scope: ScopeDep,
    worker_id: Annotated[int | None, Query(ge=1, description="Only this worker's.")] = None,
    kind: Annotated[str | None, Query(max_length=32, description="Only this kind.")] = None,
) -> list[DeviceOut]:
    """Every device of every kind in the caller's scope, as `vigil device list` lists them:
    the fleet's health (online or not, battery, last seen), who carries it, open visit."""
    try:
        rows = admin.listed(db, scope, worker_id=worker_id, kind=kind)
    except DeviceError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e
    visits = {
        v.device_id: v
        for v in db.scalars(select(Visit).where(Visit.state == VisitState.OPEN.value))
    }
    # Devices whose worker has an active alert: few, whatever the size of the fleet.
    alerting = set(db.scalars(select(Alert.device_id).where(rules.is_open_sql())))
    out = []
    for device, worker_name in ((r.device, r.worker_name) for r in rows):
        row = DeviceOut.model_validate(device)
        row.worker_name = worker_name
        visit = visits.get(device.id)
        if visit is not None:
            row.visit_note, row.visit_due_at = visit.note, visit.due_at
        active = visit is not None or device.id in alerting
        out.append(positions.device(row, scope.positions_always, active))
    return out


class DeviceNew(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked by the service (devices.service.add_device), so that the console reads the
    # same refusal as the command line.
    id: str = Field(max_length=200)
    worker_id: int | None = Field(None, ge=1)
    kind: str = Field("badge", max_length=32)
    heartbeat_interval_s: int | None = Field(None, ge=1, le=7 * 24 * 3600)


class CredentialOut(BaseModel):
    """Shown once, in this answer only: the service keeps no copy of the secret."""

    device_id: str
    kind: str
    secret: str
    identifier: str | None
    server_url: str | None
    setup_link: str | None


class DeviceIssued(BaseModel):
    device: DeviceOut
    credential: CredentialOut


@contextmanager
def answered() -> Iterator[None]:
    """The service's refusals as HTTP answers, in its words."""
    try:
        yield
    except admin.DeviceNotFound as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    except DeviceExists as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e
    except DeviceError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A device with this id exists"}},
)
def add_device(
    body: DeviceNew,
    request: Request,
    response: Response,
    user: Supervisor,
    scope: ScopeDep,
    store: StoreDep,
    settings: SettingsDep,
) -> DeviceIssued:
    """Register a device for a worker in the caller's scope. The answer carries its secret
    (a tracker's identifier and set-up link), shown this once and kept nowhere."""
    with answered(), store.begin() as db:
        device, secret = admin.add(
            db,
            scope,
            body.id,
            worker_id=body.worker_id,
            kind=body.kind,
            heartbeat_interval_s=body.heartbeat_interval_s or settings.default_heartbeat_s,
            actor=actor_of(user),
            address=client_address(request),
        )
        row = DeviceOut.model_validate(device)
    return _issued(request, response, store, row, secret, settings.public_url)


def _issued(
    request: Request,
    response: Response,
    store: StoreDep,
    row: DeviceOut,
    secret: str,
    public_url: str,
) -> DeviceIssued:
    apply_now(request.app.state)
    no_store(response)
    cred = admin.credential(row.id, row.kind, secret, public_url)
    return DeviceIssued(device=_named(store, row), credential=CredentialOut(**asdict(cred)))


def _named(store: StoreDep, row: DeviceOut) -> DeviceOut:
    if row.worker_id is not None:
        with store.session() as db:
            worker = db.get(Worker, row.worker_id)
            row.worker_name = worker.name if worker is not None else None
    return row


@router.post(
    "/{device_id}/disable",
    responses={404: {"description": "No such device in the caller's scope"}},
)
def disable_device(
    device_id: str, request: Request, user: Supervisor, scope: ScopeDep, store: StoreDep
) -> DeviceOut:
    """Take a device out of service (lost, stolen, retired): its messages are refused from
    now on, and the broker turns it away (an open connection is closed)."""
    return _enabled(device_id, False, request, user, scope, store)


@router.post(
    "/{device_id}/enable",
    responses={404: {"description": "No such device in the caller's scope"}},
)
def enable_device(
    device_id: str, request: Request, user: Supervisor, scope: ScopeDep, store: StoreDep
) -> DeviceOut:
    """Bring a disabled device back, with the secret it had."""
    return _enabled(device_id, True, request, user, scope, store)


def _enabled(
    device_id: str, enabled: bool, request: Request, user: User, scope: Scope, store: StoreDep
) -> DeviceOut:
    with answered(), store.begin() as db:
        device = admin.set_enabled(
            db, scope, device_id, enabled, actor=actor_of(user), address=client_address(request)
        )
        row = DeviceOut.model_validate(device)
    apply_now(request.app.state)
    return _named(store, row)


@router.post(
    "/{device_id}/rotate",
    responses={404: {"description": "No such device in the caller's scope"}},
)
def rotate_device(
    device_id: str,
    request: Request,
    response: Response,
    user: Supervisor,
    scope: ScopeDep,
    store: StoreDep,
    settings: SettingsDep,
) -> DeviceIssued:
    """A new secret for the device, in this answer only; the old one is refused from now on
    (the broker closes a connection made with it). For the worker app, enrol again instead:
    the app takes its secret only through enrolment."""
    with answered(), store.begin() as db:
        device, secret = admin.rotate(
            db, scope, device_id, actor=actor_of(user), address=client_address(request)
        )
        row = DeviceOut.model_validate(device)
    return _issued(request, response, store, row, secret, settings.public_url)
