"""Domain events: what changed, announced after the change is committed.

Service functions record events on the session with `emit`; the store publishes them on the
bus only once the transaction commits, so subscribers (console, escalation, device commands)
never act on a change that was rolled back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


class Kind(StrEnum):
    """Every kind of event, and so every prefix a subscriber can ask for."""

    # An alert changed; the event carries the whole alert (AlertChanged).
    ALERT_RAISED = "alert.raised"
    ALERT_ACKNOWLEDGED = "alert.acknowledged"
    ALERT_CANCELLED = "alert.cancelled"
    ALERT_RESOLVED = "alert.resolved"
    ALERT_DURESS = "alert.duress"
    ALERT_UPDATED = "alert.updated"
    ALERT_NOTE = "alert.note"
    ALERT_AUTHORITIES = "alert.authorities"
    ALERT_ESCALATION = "alert.escalation"
    # Something new about an alert that does not change the alert row (AlertAside).
    ALERT_POSITION = "alert.position"
    ALERT_EVIDENCE = "alert.evidence"
    # For the MQTT side and the worker app's push (CommandQueued), and metrics (MessagesRefused).
    DEVICE_COMMAND = "device.command"
    DEVICE_REFUSED = "device.refused"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    """What changed. `data()` is its JSON-ready body: what a console receives and what
    another replica gets relayed (monitor.fanout), from which `decode` makes it again."""

    kind: Kind
    at: datetime = field(default_factory=_now)
    # Made by another replica and relayed here (see monitor.fanout): for showing, not acting.
    remote: bool = False

    def data(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class AlertChanged(Event):
    """An alert as the API shows it (AlertOut, as JSON) after a change, with what the kind
    adds (a note's text, the authorities' reference)."""

    alert: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def alert_id(self) -> int:
        return int(self.alert["id"])

    def data(self) -> dict[str, Any]:
        return {**self.extra, "alert": self.alert}


@dataclass(frozen=True, kw_only=True)
class AlertAside(Event):
    """News about alerts that leaves their rows as they were (a position, a clip): what it
    is about, and the organisation and team that decide who may hear of it."""

    org_id: int | None
    team_id: int | None
    details: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {**self.details, "org_id": self.org_id, "team_id": self.team_id}


@dataclass(frozen=True, kw_only=True)
class CommandQueued(Event):
    """A command to a device was written to the outbox (monitor.devices.commands)."""

    kind: Kind = Kind.DEVICE_COMMAND
    id: int
    device_id: str
    payload: dict[str, Any]

    def data(self) -> dict[str, Any]:
        return {"id": self.id, "device_id": self.device_id, "payload": self.payload}


@dataclass(frozen=True, kw_only=True)
class MessagesRefused(Event):
    """Device messages refused, `count` of them with the same code (monitor.ingest.refusals)."""

    kind: Kind = Kind.DEVICE_REFUSED
    code: str
    device_id: str | None
    count: int = 1

    def data(self) -> dict[str, Any]:
        return {"code": self.code, "device_id": self.device_id, "count": self.count}


def decode(kind: str, data: dict[str, Any], at: datetime) -> Event | None:
    """An event relayed from another replica, made again from its kind and `data()`; None
    for a kind this version does not know (a newer replica's, during an upgrade)."""
    try:
        k = Kind(kind)
    except ValueError:
        return None
    if k in (Kind.ALERT_POSITION, Kind.ALERT_EVIDENCE):
        details = {n: v for n, v in data.items() if n not in ("org_id", "team_id")}
        return AlertAside(
            kind=k,
            at=at,
            remote=True,
            org_id=data.get("org_id"),
            team_id=data.get("team_id"),
            details=details,
        )
    if k.startswith("alert."):
        extra = {n: v for n, v in data.items() if n != "alert"}
        return AlertChanged(kind=k, at=at, remote=True, alert=data["alert"], extra=extra)
    return None  # device events are acted on where they were made, never relayed


Handler = Callable[[Event], None]


class EventBus:
    """In-process publish/subscribe; handlers run on the committing thread and must not block."""

    def __init__(self) -> None:
        self._handlers: list[tuple[str, Handler, bool]] = []
        self._lock = threading.Lock()

    def subscribe(
        self, handler: Handler, prefix: str = "", *, remote: bool = False
    ) -> Callable[[], None]:
        """Call `handler` for every event whose kind starts with `prefix`; returns unsubscribe.

        Only this process's own events unless `remote`: a subscriber that acts on an event
        (sends a command, escalates) must act once, on the replica that made the change.
        """
        entry = (prefix, handler, remote)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe

    def publish(self, event: Event) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for prefix, handler, wants_remote in handlers:
            if event.kind.startswith(prefix) and (wants_remote or not event.remote):
                try:
                    handler(event)
                except Exception:
                    # One broken subscriber must not stop the others hearing of an alert.
                    log.exception("event handler failed for %s", event.kind)


def pending(db: Session) -> list[Event]:
    events: list[Event] = db.info.setdefault("vigil_events", [])
    return events


def emit(db: Session, event: Event) -> None:
    """Announce `event` once the session's transaction commits."""
    pending(db).append(event)


def flush_pending(db: Session, bus: EventBus) -> None:
    events = pending(db)
    batch = list(events)
    events.clear()
    for ev in batch:
        bus.publish(ev)
