"""Whether this process can take alerts now: its store's writes and its MQTT links, as
`/readyz` and the consoles' banner tell them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeout

from monitor import failures

log = logging.getLogger(__name__)

# A failure its writer has not repeated for this long is forgotten: that writer stopped
# trying without a commit (it is stopping, or gave the work up). Writers that report retry
# far more often than this while the store fails.
STALE_S = 60.0
# How often the store is tried with a write that changes nothing (`Store.probe`), by the
# scheduler and by /readyz: a disk that filled up shows before an alert meets it.
PROBE_EVERY_S = 1.0
# A probe still waiting after this long means a database that does not answer.
HUNG_S = 5.0


def cause_of(err: BaseException) -> str | None:
    """Why the store cannot write, in words for operators (never an address or a database's
    name), if `err` is a failure that passes; None for any other error, which is a bug or a
    value the store refuses, and says nothing of the store's health."""
    if not failures.is_transient(err):
        return None
    orig = getattr(err, "orig", None) or err
    state = str(getattr(orig, "sqlstate", None) or "")
    text = str(orig).lower()
    if state.startswith("40"):
        return None  # a deadlock or serialization clash: contention, tried again at once
    if state == "53100" or "disk is full" in text or "no space left" in text:
        return "the disk is full"
    if "readonly database" in text or "read-only" in text:
        return "the database is read-only"
    if "database is locked" in text:
        return "the database is locked by another writer"
    if isinstance(err, PoolTimeout):
        return "every database connection is in use"
    return "the database cannot be reached"


@dataclass(frozen=True)
class Failure:
    cause: str
    since: datetime  # the first failure of this run
    last: float  # time.monotonic() of the latest


@dataclass(frozen=True)
class Status:
    store: str | None  # why the store cannot write now; None while it can
    since: datetime | None
    links_down: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return self.store is None and not self.links_down

    @property
    def detail(self) -> str:
        if self.store is not None:
            return f"The service cannot store new alerts: {self.store}."
        if self.links_down:
            names = " and ".join(self.links_down)
            return f"The service cannot hear devices: its MQTT connection ({names}) is down."
        return "The service is storing alerts and connected to the MQTT broker."

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "unavailable",
            "detail": self.detail,
            "store": {
                "ok": self.store is None,
                "cause": self.store,
                "since": self.since.isoformat() if self.since else None,
            },
            "mqtt": {"ok": not self.links_down, "down": list(self.links_down)},
        }


class Health:
    """Store failures as each writer met them, and the MQTT links to look at.

    Writers that retry until they succeed report their failures: the ingest workers, the
    scheduler's probe (`Store.probe`) and its tick. A writer's failure stands until that
    same thread next commits (`Store.begin` clears it) or it goes stale: a small probe that
    fits on a nearly full disk must not hide the alert that does not. A route's failure is
    the caller's answer (a 503), not reported here: nothing would clear it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, Failure] = {}
        self._links: dict[str, Callable[[], bool]] = {}
        self._listeners: list[Callable[[Status], None]] = []
        self._told: tuple[bool, str] | None = None
        self._telling = threading.Lock()
        self._probe_started: float | None = None
        self._probed_at = float("-inf")

    def store_failed(self, err: BaseException, who: str | None = None) -> None:
        cause = cause_of(err)
        if cause is None:
            return
        who = who or threading.current_thread().name
        with self._lock:
            old = self._failures.get(who)
            since = old.since if old else datetime.now(UTC)
            self._failures[who] = Failure(cause, since, time.monotonic())
        self.check()

    def store_ok(self, who: str | None = None) -> None:
        who = who or threading.current_thread().name
        if who not in self._failures:  # every commit comes here: no lock when nothing changes
            return
        with self._lock:
            self._failures.pop(who, None)
        self.check()

    def watch_link(self, name: str, up: Callable[[], bool]) -> None:
        with self._lock:
            self._links[name] = up

    def subscribe(self, listener: Callable[[Status], None]) -> Callable[[], None]:
        """Call `listener` with the new status whenever readiness or its reason changes (on the
        thread that noticed: it must not block)."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def start_probe(self, max_age: float) -> bool:
        """Whether to probe now: none under way, and none finished within `max_age` s."""
        now = time.monotonic()
        with self._lock:
            if self._probe_started is not None or now - self._probed_at < max_age:
                return False
            self._probe_started = now
            return True

    def end_probe(self) -> None:
        with self._lock:
            self._probe_started = None
            self._probed_at = time.monotonic()

    def status(self) -> Status:
        now = time.monotonic()
        with self._lock:
            live = [f for f in self._failures.values() if now - f.last < STALE_S]
            links = list(self._links.items())
            started = self._probe_started
        if started is not None and now - started > HUNG_S:
            live.append(Failure("the database does not answer", datetime.now(UTC), now))
        latest = max(live, key=lambda f: f.last, default=None)
        return Status(
            latest.cause if latest else None,
            min(f.since for f in live) if live else None,
            tuple(name for name, up in links if not up()),
        )

    def check(self) -> Status:
        """The status now; listeners are told if it changed. The scheduler calls this every
        tick, for what changes with no report: a link lost or back, a failure gone stale."""
        with self._telling:
            status = self.status()
            told = (status.ready, status.detail)
            if told != self._told:
                if status.ready:
                    if self._told is not None:
                        log.info("ready again: %s", status.detail)
                else:
                    log.warning("not ready: %s", status.detail)
                self._told = told
                with self._lock:
                    listeners = list(self._listeners)
                for listener in listeners:
                    listener(status)
            return status
