"""Enrolment's routes: the app exchanges its one-time code for its credentials; supervisors
issue codes; the app reads its configuration."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from monitor import qrcodes
from monitor.audit.service import audit_now
from monitor.broker_sync import apply_now
from monitor.config import Settings
from monitor.deps import (
    RowId,
    ScopeDep,
    SettingsDep,
    StoreDep,
    Supervisor,
    client_address,
    no_store,
)
from monitor.orgs.models import Worker
from monitor.users.accounts import actor_of
from monitor.users.throttle import SignInThrottle
from worker_app import codes

router = APIRouter(tags=["worker app"])


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=64)


class EnrolOut(BaseModel):
    device_id: str
    secret: str
    mqtt_url: str
    worker_name: str
    heartbeat_s: int
    centre_phone: str


class EnrolmentOut(BaseModel):
    link: str
    expires_at: datetime
    device_id: str
    qr_svg: str


@router.post(
    "/api/v1/app/enrol",
    responses={
        404: {"description": "Unknown code"},
        410: {"description": "The code has been used, has expired or was revoked"},
        429: {"description": "Too many refused codes from this address"},
    },
)
def enrol(
    body: EnrolIn, request: Request, response: Response, store: StoreDep, settings: SettingsDep
) -> EnrolOut:
    """Exchange a one-time enrolment code for the app's device id and secret. Each code
    works once: the secret is made for this answer and is kept nowhere else."""
    throttle: SignInThrottle = request.app.state.enrol_throttle
    address = client_address(request)
    key = f"enrol@{address}"
    wait = throttle.wait_s(key, address)
    if wait > 0:
        audit_now(store, "anonymous", "app_enrolment_throttled", address=address)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many refused enrolment codes: try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    try:
        with store.begin() as db:
            done = codes.redeem(db, body.code, address)
    except codes.Refused as refused:
        throttle.failed(key, address)
        audit_now(store, "anonymous", "app_enrolment_refused", address=address, why=refused.reason)
        raise HTTPException(refused.status, refused.reason) from None
    throttle.succeeded(key)
    apply_now(request.app.state)
    no_store(response)
    return EnrolOut(
        device_id=done.device_id,
        secret=done.secret,
        mqtt_url=settings.app_mqtt_url,
        worker_name=done.worker_name,
        heartbeat_s=done.heartbeat_s,
        centre_phone=settings.centre_phone,
    )


@router.post(
    "/api/v1/workers/{worker_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"description": "No such worker in the caller's scope"}},
)
def issue_enrolment(
    worker_id: RowId,
    request: Request,
    response: Response,
    user: Supervisor,
    scope: ScopeDep,
    store: StoreDep,
    settings: SettingsDep,
) -> EnrolmentOut:
    """Give a worker the phone app: a new app device and a one-time enrolment link (with its
    QR code as SVG). The worker's earlier app devices are revoked at once."""
    with store.begin() as db:
        worker = db.get(Worker, worker_id)
        if worker is None or not scope.admits(worker.org_id, worker.team_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no worker {worker_id}")
        issued = codes.issue(
            db,
            worker_id,
            issued_by=actor_of(user),
            minutes=settings.enrol_minutes,
            heartbeat_s=settings.default_heartbeat_s,
            address=client_address(request),
        )
    apply_now(request.app.state)
    link = codes.link(settings, issued.code)
    no_store(response)
    return EnrolmentOut(
        link=link,
        expires_at=issued.expires_at,
        device_id=issued.device_id,
        qr_svg=qrcodes.svg(link),
    )


def vapid_public_key(request: Request) -> str:
    """Web Push's public key for the app: worker_app/push.py puts a function returning it in
    `app.state.vapid_public_key` when push is on; empty otherwise."""
    key = getattr(request.app.state, "vapid_public_key", None)
    return str(key()) if key is not None else ""


@router.get("/app/config.json", include_in_schema=False)
def app_config(request: Request, settings: SettingsDep) -> dict[str, str]:
    """What the app reads on start, besides its credentials."""
    return {
        "mqtt_url": settings.app_mqtt_url,
        "centre_phone": settings.centre_phone,
        "vapid_public_key": vapid_public_key(request),
    }


def install(app: FastAPI, context: dict[str, Any]) -> None:
    settings: Settings = context["settings"]
    # Counted per client address in this process, as sign-in failures are.
    app.state.enrol_throttle = SignInThrottle(
        settings.signin_max_failures, settings.signin_window_s
    )
    app.include_router(router)
