"""OwnTracks' HTTP mode: the app POSTs the JSON it would publish, with HTTP Basic auth, and
takes commands from the JSON array it is answered with (owntracks.org/booklet/tech/http/)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from gateways.owntracks import places
from gateways.owntracks.locates import Locates
from gateways.owntracks.messages import (
    KIND,
    REPORT_LOCATION,
    NotOwnTracks,
    decode,
    place,
    translate,
)
from gateways.throttle import Buckets, InFlight
from monitor.db import Store
from monitor.devices.models import Device
from monitor.ingest.runner import Ingest
from monitor.protocol import Refusal, parse
from monitor.security import verify_device_secret

# How long the app is kept waiting for its message to be stored; past it, 503 and the app
# sends it again later (it queues what was not answered 2xx).
STORED_WITHIN_S = 10.0
# OwnTracks' payloads are small, but an iOS report may carry a photo's thumbnail (ignored).
MAX_BODY = 512 * 1024

# Failed sign-ins one client address may make (a second, and at once) before it is turned
# away without a query or a password check; credentials that were right in the last
# RECENT_S skip its address's limit (phones behind one carrier address).
FAILURES_PER_S, FAILURE_BURST = 1.0, 30
RECENT_S = 600.0
# Requests at once, per set of credentials and in all: each holds one of the threads the
# service's own routes run on (run_in_threadpool) for as long as its message waits to be
# stored, so one app resending in a loop, or a few, must not take them all.
IN_FLIGHT_PER_SENDER, IN_FLIGHT = 4, 16

basic = HTTPBasic(realm="vigil-owntracks", auto_error=False)


class Doorman:
    """Who has been turned away lately, by address, and which credentials were right."""

    def __init__(self) -> None:
        self.failures = Buckets(FAILURES_PER_S, FAILURE_BURST)
        self._right: dict[str, float] = {}  # sha256 of the Authorization header -> when
        self._lock = threading.Lock()

    def may_try(self, address: str, key: str) -> bool:
        with self._lock:
            at = self._right.get(key)
        return (at is not None and time.monotonic() - at < RECENT_S) or self.failures.has(address)

    def right(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._right[key] = now
            if len(self._right) > Buckets.PRUNE_AT:
                self._right = {k: t for k, t in self._right.items() if now - t < RECENT_S}

    def wrong(self, address: str) -> None:
        self.failures.take(address)


def router(store: Store) -> APIRouter:
    r = APIRouter(tags=["gateways"])
    locates = Locates(store)
    doorman = Doorman()
    senders, everyone = InFlight(IN_FLIGHT_PER_SENDER), InFlight(IN_FLIGHT)

    @r.post(
        "/owntracks/pub",
        summary="OwnTracks HTTP mode: a location, lwt or transition from the app",
        responses={200: {"description": "A JSON array: `[]`, or a `reportLocation` cmd"}},
    )
    async def owntracks_pub(
        request: Request,
        creds: Annotated[HTTPBasicCredentials | None, Depends(basic)],
        x_limit_u: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        # Read up to the limit only: a huge body is refused, not held.
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "payload too large")
        ingest: Ingest | None = getattr(request.app.state, "ingest", None)
        address = request.client.host if request.client is not None else "?"
        key = hashlib.sha256(request.headers.get("authorization", "").encode()).hexdigest()
        if not doorman.may_try(address, key):
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many failed sign-ins",
                headers={"Retry-After": "30"},
            )
        with senders.slot(key) as mine, everyone.slot("") as room:
            if not (mine and room):
                raise HTTPException(
                    status.HTTP_429_TOO_MANY_REQUESTS,
                    "too many requests at once",
                    headers={"Retry-After": "1"},
                )
            try:
                # The password check (PBKDF2) and waiting for the store both block: off the
                # loop.
                answer, refused = await run_in_threadpool(
                    _handle, store, ingest, locates, creds, x_limit_u, bytes(body)
                )
            except HTTPException as e:
                if e.status_code == status.HTTP_401_UNAUTHORIZED:
                    doorman.wrong(address)
                raise
        doorman.right(key)
        headers = {"X-Vigil-Refused": "; ".join(refused)[:500]} if refused else None
        return JSONResponse(answer, headers=headers)

    return r


def _device(store: Store, creds: HTTPBasicCredentials | None) -> Device:
    refused = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "wrong device credentials",
        headers={"WWW-Authenticate": 'Basic realm="vigil-owntracks"'},
    )
    if creds is None:
        raise refused
    with store.session() as db:
        device = db.get(Device, creds.username)
        if device is None or not verify_device_secret(device.secret_hash, creds.password):
            raise refused
    if not device.enabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "device is disabled")
    if device.kind != KIND:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"device is not of kind {KIND}")
    return device


def _handle(
    store: Store,
    ingest: Ingest | None,
    locates: Locates,
    creds: HTTPBasicCredentials | None,
    limit_u: str | None,
    body: bytes,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The answer's array, and why what monitor refused was refused."""
    device = _device(store, creds)
    if limit_u is not None and not secrets.compare_digest(limit_u.encode(), device.id.encode()):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "X-Limit-U must be the device id")
    try:
        data = decode(body)
    except NotOwnTracks as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from e
    if ingest is None:  # an app served without the service's ingest
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "ingest is not running")
    refused: list[str] = []
    for v1 in translate(data) if data is not None else []:
        topic, payload = v1.topic(device.id), v1.payload()
        # Handed in even when it will be refused: monitor records the refusal, as for MQTT.
        handed = ingest.submit(topic, payload)
        checked = parse(topic, payload)
        if not handed.wait(STORED_WITHIN_S) or handed.retry_later:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "not stored yet: try again")
        if isinstance(checked, Refusal):
            refused.append(f"{_THEIRS[v1.suffix]}: {checked.reason}")
    # A transition during a visit goes into its timeline too, once its position is stored;
    # if that fails the app is answered 503 and sends it again (made once by its key).
    where = place(device.id, data) if data is not None else None
    if where is not None:
        places.record(store, device.id, where)
    # What monitor refused is recorded there and answered 200 all the same: the app resends
    # a message answered with an error ahead of every later one, for weeks (Android retries a
    # location 100,000 times), so one bad fix would hold back every report after it.
    return ([REPORT_LOCATION] if locates.take(device.id) else []), refused


# How a refusal names what the app sent, rather than the v1 message it became.
_THEIRS = {"location": "location", "alert": "help report", "status": "lwt"}
