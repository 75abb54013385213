"""Sends the Web Push a phone in a pocket should hear, `visit_due` and `alert_acknowledged`,
to devices with a push subscription, on threads of its own.

It hears the outbox's `device.command` events, which only the replica that committed the
command receives (they are not relayed between replicas), so each command is pushed once.
What a device may be told is the outbox's to decide: a duress alert's device is never sent
`alert_acknowledged`, so it is never pushed one either.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_client import Counter
from pywebpush import WebPusher
from sqlalchemy import delete, select

from monitor.config import Settings
from monitor.db import Store
from monitor.devices.models import Device, DeviceCommand
from monitor.events import CommandQueued, Event, Kind
from worker_app import vapid
from worker_app.models import PushSubscription

log = logging.getLogger(__name__)

PUSHES = Counter(
    "vigil_push_notifications_total", "Web Push notifications, by outcome", ["outcome"]
)

# What each command says on the lock screen, and the field naming what it is about. No
# names, addresses or notes: the notification may be read by whoever holds the phone.
NOTICES: dict[str, tuple[str, str, str]] = {
    "visit_due": ("Your visit time is up", "Check in, extend or get help.", "visit_id"),
    "alert_acknowledged": (
        "Help is on the way",
        "The monitoring centre has taken charge of your alert.",
        "alert_id",
    ),
}
# How long a push service keeps a notification for a phone that cannot be reached.
TTL_S = 1800
ATTEMPTS = 4
RETRY_BASE_S = 1.0
RETRY_MAX_S = 60.0
# Commands waiting to be pushed at most; past that they are dropped (and logged) rather
# than held in memory or the event bus's thread kept waiting.
MAX_WAITING = 10_000
SENDERS = 4
SWEEP_EVERY_S = 60.0


def credentials_of(secret_hash: str) -> str:
    """A fingerprint of the device's credentials: a subscription made under a secret since
    rotated (the phone enrolled again) is not used."""
    return hashlib.sha256(secret_hash.encode()).hexdigest()


def notice(payload: dict[str, Any]) -> dict[str, str]:
    """The push's body for a command: what the service worker shows."""
    type_ = str(payload["type"])
    title, body, ref = NOTICES[type_]
    return {"title": title, "body": body, "tag": f"{type_}:{payload.get(ref, '')}"}


def _same_matter(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two commands of one type tell of the same thing (a deadline is part of it:
    a visit extended and due again is told again)."""
    ref = NOTICES[str(a["type"])][2]
    return bool(a.get(ref) == b.get(ref) and a.get("due_ts") == b.get("due_ts"))


@dataclass(frozen=True)
class Job:
    command_id: int
    device_id: str
    payload: dict[str, Any]
    attempt: int = 1


class Pusher:
    """Background work of the worker app: pushes, and forgetting subscriptions of devices
    disabled or enrolled again."""

    def __init__(self, store: Store, settings: Settings, senders: int = SENDERS) -> None:
        self.store = store
        self.settings = settings
        self._waiting: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._threads = [
            threading.Thread(target=self._send_loop, name=f"vigil-push-{i}", daemon=True)
            for i in range(senders)
        ]
        self._threads.append(
            threading.Thread(target=self._sweep_loop, name="vigil-push-sweep", daemon=True)
        )

    def start(self) -> None:
        try:
            vapid.keys(self.store)  # made now rather than on the first push
        except Exception:
            # The store may be down for now: the keys are made on first use instead.
            log.exception("could not read or make the VAPID keys yet")
        for t in self._threads:
            t.start()
        self._unsubscribe = self.store.bus.subscribe(self.on_event, Kind.DEVICE_COMMAND)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            if t.is_alive():
                t.join(self.settings.push_timeout_s + 1)

    def on_event(self, event: Event) -> None:
        """On the committing thread (an alert's, a request's): only a look and a queue."""
        assert isinstance(event, CommandQueued)
        if event.payload.get("type") in NOTICES:
            self._put(Job(event.id, event.device_id, event.payload), 0.0)

    def _put(self, job: Job, delay: float) -> None:
        with self._cv:
            if len(self._waiting) >= MAX_WAITING:
                log.warning("push for %s dropped: %d waiting", job.device_id, MAX_WAITING)
                PUSHES.labels("dropped").inc()
                return
            heapq.heappush(self._waiting, (time.monotonic() + delay, next(self._order), job))
            self._cv.notify()

    def _next(self) -> Job | None:
        with self._cv:
            while not self._stop.is_set():
                if self._waiting:
                    wait = self._waiting[0][0] - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._waiting)[2]
                    self._cv.wait(wait)
                else:
                    self._cv.wait()
        return None

    def _send_loop(self) -> None:
        # requests' sessions are not to be shared between threads: one each.
        with requests.Session() as http:
            if self.settings.push_tls_ca:
                http.verify = self.settings.push_tls_ca
                # Or requests takes REQUESTS_CA_BUNDLE from the environment over it.
                http.trust_env = False
            while (job := self._next()) is not None:
                try:
                    self._send(job, http)
                except Exception:
                    log.exception("push for %s failed", job.device_id)
                    self._again(job, None)

    def _again(self, job: Job, retry_after: str | None) -> None:
        if job.attempt >= ATTEMPTS:
            log.warning("push for %s given up after %d attempts", job.device_id, job.attempt)
            PUSHES.labels("failed").inc()
            return
        delay = min(RETRY_BASE_S * 2 ** (job.attempt - 1), RETRY_MAX_S)
        if retry_after is not None and retry_after.strip().isdigit():
            delay = min(max(delay, float(retry_after)), RETRY_MAX_S)
        PUSHES.labels("retried").inc()
        self._put(Job(job.command_id, job.device_id, job.payload, job.attempt + 1), delay)

    def _subscription(self, job: Job) -> PushSubscription | None:
        """The device's subscription if the command should be pushed to it."""
        with self.store.session() as db:
            sub = db.get(PushSubscription, job.device_id)
            if sub is None:
                return None
            device = db.get(Device, job.device_id)
            if (
                device is None
                or not device.enabled
                or credentials_of(device.secret_hash) != sub.credentials
            ):
                stale = sub
                sub = None
            else:
                stale = None
                # Told of it already (the device came online and was told again where its
                # visits and alerts stand): it heard the first; the app is open now anyway.
                earlier = db.scalars(
                    select(DeviceCommand.payload)
                    .where(
                        DeviceCommand.device_id == job.device_id,
                        DeviceCommand.type == job.payload["type"],
                        DeviceCommand.id < job.command_id,
                    )
                    .order_by(DeviceCommand.id.desc())
                    .limit(20)
                ).all()
                if any(_same_matter(job.payload, p) for p in earlier):
                    return None
        if stale is not None:
            self._forget(stale, "the device is disabled or enrolled again")
        return sub

    def _send(self, job: Job, http: requests.Session) -> None:
        sub = self._subscription(job)
        if sub is None:
            return
        parts = urlsplit(sub.endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        subject = self.settings.push_subject or (
            self.settings.public_url
            if self.settings.public_url.startswith("https://")
            else "mailto:vigil@localhost"
        )
        claims = {"sub": subject, "aud": audience, "exp": int(time.time()) + 12 * 3600}
        headers = vapid.keys(self.store).signer().sign(claims)
        # Delivered at once even to a phone saving its battery (RFC 8030's Urgency).
        headers["Urgency"] = "high"
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        data = json.dumps(notice(job.payload)).encode()
        try:
            resp = WebPusher(info, requests_session=http).send(
                data, headers, ttl=TTL_S, timeout=self.settings.push_timeout_s
            )
        except requests.RequestException as err:
            log.warning("push service %s unreachable: %s", parts.hostname, type(err).__name__)
            self._again(job, None)
            return
        code = resp.status_code
        if code in (200, 201, 202):
            PUSHES.labels("sent").inc()
        elif code in (404, 410):
            self._forget(sub, f"the push service answered {code}")
        elif code == 429 or code >= 500:
            log.warning("push service %s answered %d; trying again", parts.hostname, code)
            self._again(job, resp.headers.get("Retry-After"))
        else:
            log.warning("push service %s refused a push: %d %s", parts.hostname, code, resp.text)
            PUSHES.labels("refused").inc()

    def _forget(self, sub: PushSubscription, why: str) -> None:
        """Delete the subscription, unless the device has replaced it meanwhile."""
        with self.store.begin() as db:
            db.execute(
                delete(PushSubscription).where(
                    PushSubscription.device_id == sub.device_id,
                    PushSubscription.endpoint == sub.endpoint,
                )
            )
        log.info("push subscription of %s deleted: %s", sub.device_id, why)
        PUSHES.labels("gone").inc()

    def sweep(self) -> int:
        """Delete the subscriptions of devices disabled or enrolled again since they were
        made (`vigil device disable` runs in a process of its own, and tells nobody)."""
        with self.store.session() as db:
            rows = db.execute(
                select(PushSubscription, Device.enabled, Device.secret_hash).join(
                    Device, Device.id == PushSubscription.device_id
                )
            ).all()
        stale = [s for s, on, h in rows if not on or credentials_of(h) != s.credentials]
        for sub in stale:
            self._forget(sub, "the device is disabled or enrolled again")
        return len(stale)

    def _sweep_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception:
                log.exception("forgetting stale push subscriptions failed; will try again")
            self._stop.wait(SWEEP_EVERY_S)
