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
from typing import Any

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    kind: str
    data: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Made by another replica and relayed here (see monitor.fanout): for showing, not acting.
    remote: bool = False


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


def emit(db: Session, kind: str, **data: Any) -> None:
    """Announce `kind` once the session's transaction commits."""
    pending(db).append(Event(kind, data))


def flush_pending(db: Session, bus: EventBus) -> None:
    events = pending(db)
    batch = list(events)
    events.clear()
    for ev in batch:
        bus.publish(ev)
