"""Traccar Client and OsmAnd-protocol trackers over HTTP: each request read, its tracker
identified by its identifier (the only credential it has), limited per tracker, translated
into protocol-v1 messages and handed to ingest, and answered once they are stored."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request, Response
from prometheus_client import Counter
from sqlalchemy import select

from gateways.osmand_messages import Message, messages_of
from gateways.osmand_reports import Unreadable, read_request
from gateways.throttle import Buckets, InFlight
from monitor.config import Settings
from monitor.db import Store
from monitor.devices.models import Device
from monitor.devices.trackers import OSMAND, split_identifier
from monitor.ingest.runner import Ingest
from monitor.protocol import Refusal, parse
from monitor.security import verify_device_secret

log = logging.getLogger(__name__)

PATH = "/osmand"
# A JSON array of a hundred reports fits; nothing a tracker sends is near it.
MAX_BODY = 128 * 1024
# Requests of one tracker at once: a tracker sends one at a time, so more is a flood.
IN_FLIGHT_PER_TRACKER = 4
# Failed identifications one client address may make (a second, and at once) before its
# unidentified requests are turned away without a query.
FAILURES_PER_S, FAILURE_BURST = 1.0, 30
# How long an identifier that was right skips the failure limit of its address (a tracker
# behind a carrier's shared address must not wait for a neighbour's misconfigured one).
RECENT_S = 600.0
# Threads for identification and waiting on the store: the gateway's own, so trackers never
# take the threads the console's routes run on.
THREADS = 16

REQUESTS = Counter(
    "vigil_osmand_requests_total", "Tracker (OsmAnd protocol) requests, by outcome", ["outcome"]
)

T = TypeVar("T")


@dataclass(frozen=True)
class Tracker:
    device_id: str
    enabled: bool


def _answer(outcome: str, status: int, text: str = "", **headers: str) -> Response:
    REQUESTS.labels(outcome).inc()
    return Response(text, status_code=status, media_type="text/plain", headers=headers or None)


class OsmAndGateway:
    def __init__(self, settings: Settings, store: Store, ingest: Callable[[], Ingest]) -> None:
        self.settings = settings
        self.store = store
        self.ingest = ingest
        self.rate = Buckets(settings.osmand_rate_per_s, settings.osmand_burst)
        self.failures = Buckets(FAILURES_PER_S, FAILURE_BURST)
        self.in_flight = InFlight(IN_FLIGHT_PER_TRACKER)
        self.pool = ThreadPoolExecutor(THREADS, thread_name_prefix="vigil-osmand")
        self._recent: dict[str, tuple[str, float]] = {}  # sha256 of identifier -> device, when
        self._lock = threading.Lock()

    # A Runner (monitor/api.py): its threads end with the service.
    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, work)

    async def handle(self, request: Request) -> Response:
        body = b""
        if request.method == "POST":
            if int(request.headers.get("content-length") or 0) > MAX_BODY:
                return _answer("unreadable", 413, "request too large")
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    return _answer("unreadable", 413, "request too large")
        try:
            reports = read_request(request.url.query, request.headers.get("content-type"), body)
        except Unreadable as err:
            return _answer("unreadable", 400, str(err))
        identifier = reports[0].identifier
        if any(r.identifier != identifier for r in reports):
            return _answer("unreadable", 400, "one request, one device identifier")
        alarm = any(r.alarms for r in reports)
        address = request.client.host if request.client is not None else "?"
        key = hashlib.sha256(identifier.encode()).hexdigest()
        recent = self._recently_right(key)
        if recent is None and not self.failures.has(address):
            return _answer(
                "throttled", 429, "too many unknown identifiers", **{"Retry-After": "30"}
            )
        # An alarm is never turned away for the rate: only the cap on requests in flight holds
        # it back. Checked before the query for a tracker known to be right.
        if recent is not None and not alarm and not self.rate.take(recent):
            return self._throttled(recent)
        tracker = await self._run(lambda: self._identify(identifier))
        if tracker is None:
            self.failures.take(address)
            with self._lock:
                self._recent.pop(key, None)
            # As Traccar: an identifier it does not know is a bad request.
            return _answer("unknown", 400, "unknown device identifier")
        if recent is None:
            self._remember(key, tracker.device_id)
            if not alarm and not self.rate.take(tracker.device_id):
                return self._throttled(tracker.device_id)
        with self.in_flight.slot(tracker.device_id) as may:
            if not may:
                return self._throttled(tracker.device_id)
            now_ms = int(time.time() * 1000)
            messages = [
                m for r in reports for m in messages_of(r, now_ms, self.settings.low_battery_pct)
            ]
            # Alerts first, from every report of the request.
            messages.sort(key=lambda m: not m.urgent)
            stored, refused = await self._run(lambda: self._deliver(tracker.device_id, messages))
        if not stored:
            return _answer("timeout", 503, "not stored in time; send it again")
        if not tracker.enabled:
            return _answer("disabled", 400, "device is disabled")
        if refused:
            # Recorded with the refused traffic operators see, and answered 200 all the same:
            # Traccar Client sends its queue in order and resends what was not taken, so a
            # refused fix answered with an error would hold back every position after it.
            why = " ".join("; ".join(refused).encode("ascii", "replace").decode().split())
            return _answer("refused", 200, **{"X-Vigil-Refused": why[:500]})
        return _answer("stored", 200)

    def _throttled(self, device_id: str) -> Response:
        wait = self.rate.retry_after_s(device_id)
        return _answer("throttled", 429, "too many requests", **{"Retry-After": str(wait)})

    def _recently_right(self, key: str) -> str | None:
        with self._lock:
            found = self._recent.get(key)
        if found is None or time.monotonic() - found[1] > RECENT_S:
            return None
        return found[0]

    def _remember(self, key: str, device_id: str) -> None:
        with self._lock:
            if len(self._recent) > 10_000:
                self._recent.clear()
            self._recent[key] = (device_id, time.monotonic())

    def _identify(self, identifier: str) -> Tracker | None:
        """The tracker this identifier is, checked against the registry's hash every time (a
        new identifier, or a disabled tracker, holds at once)."""
        parts = split_identifier(identifier)
        if parts is None:
            return None
        device_id, secret = parts
        with self.store.session() as db:
            row = db.execute(
                select(Device.kind, Device.secret_hash, Device.enabled).where(
                    Device.id == device_id
                )
            ).first()
        if row is None or row.kind != OSMAND or not verify_device_secret(row.secret_hash, secret):
            return None
        return Tracker(device_id, row.enabled)

    def _deliver(self, device_id: str, messages: list[Message]) -> tuple[bool, list[str]]:
        """Hand the messages to ingest and wait until all are stored (or refused): whether
        they were in time, and why any will be refused."""
        ingest = self.ingest()
        refused: list[str] = []
        handed = []
        for m in messages:
            topic = f"vigil/v1/{device_id}/{m.suffix}"
            payload = json.dumps(m.body, separators=(",", ":")).encode()
            # The protocol's own check, to tell the tracker; ingest applies it again and
            # records the refusal with every other.
            checked = parse(topic, payload, self.settings.max_payload_bytes)
            if isinstance(checked, Refusal):
                refused.append(f"{m.suffix}: {checked.reason}")
            handed.append(ingest.submit(topic, payload))
        deadline = time.monotonic() + self.settings.osmand_wait_s
        stored = all(h.wait(max(0.0, deadline - time.monotonic())) for h in handed)
        # Refused for now (the tracker's line full, the store failing): not stored, so the
        # tracker is told to send it again.
        return stored and not any(h.retry_later for h in handed), refused


class TrackerPort:
    """The tracker route on a port of its own (VIGIL_OSMAND_PORT), served by a second uvicorn
    server on a thread, started and stopped with the service."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        trusted = settings.trusted_proxy_list
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.osmand_port,
                log_level="warning",
                timeout_graceful_shutdown=5,
                proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or None,
                lifespan="off",
            )
        )
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.run, name="vigil-osmand-port")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                raise RuntimeError("the tracker port did not open within 10 s")
            time.sleep(0.02)
        if not self.server.started:
            raise RuntimeError(f"the tracker port {self.server.config.port} could not be opened")

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


def install(app: FastAPI, context: dict[str, Any]) -> None:
    settings: Settings = context["settings"]
    # Ingest is given to the app after the extensions are installed: looked up per request.
    gateway = OsmAndGateway(settings, context["store"], lambda: app.state.ingest)

    async def osmand(request: Request) -> Response:
        """A position, alarm or battery report from Traccar Client or an OsmAnd-protocol
        tracker (docs/integrations.md)."""
        return await gateway.handle(request)

    # One route per method, so that each has an operation id of its own in the API schema.
    for method in ("GET", "POST"):
        app.add_api_route(
            PATH, osmand, methods=[method], tags=["gateways"], name=f"osmand_{method.lower()}"
        )
    app.state.runners.append(gateway)
    if settings.osmand_port:
        port_app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
        for path in ("/", PATH):
            port_app.add_api_route(path, osmand, methods=["GET", "POST"])
        app.state.runners.append(TrackerPort(port_app, settings))
