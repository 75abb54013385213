"""Publishing commands to devices: direct replies and the outbox.

`alert_received` and `rejected` are sent straight away (a device resends until it hears them).
Every other command comes from the outbox (`monitor.devices.commands`): it is published, and
marked sent once the broker has acknowledged it; the scheduler collects those marks and
publishes again whatever stays unacknowledged.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from monitor import metrics
from monitor.devices.commands import command_payload
from monitor.events import CommandQueued, Event

log = logging.getLogger(__name__)


def cmd_topic(device_id: str) -> str:
    return f"vigil/v1/{device_id}/cmd"


class Delivery(Protocol):
    def is_published(self) -> bool: ...


class Publisher(Protocol):
    """A connection that publishes at QoS 1 (`MqttLink`, `BulkLink`)."""

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> Delivery: ...


class Replies:
    def __init__(self, link: Publisher) -> None:
        self.link = link
        # Outbox row id -> the link's handle for its latest publish. The lock guards the dict
        # only and is never held while the link works: paho holds its own locks when calling
        # back.
        self._inflight: dict[int, Delivery] = {}
        self._lock = threading.Lock()

    def send(self, device_id: str, type_: str, **fields: Any) -> None:
        payload = command_payload(type_, **fields)
        self.link.publish(cmd_topic(device_id), json.dumps(payload).encode())
        metrics.COMMANDS_SENT.labels(type_).inc()

    def send_outbox(self, command_id: int, device_id: str, payload: dict[str, Any]) -> None:
        info = self.link.publish(cmd_topic(device_id), json.dumps(payload).encode())
        with self._lock:
            self._inflight[command_id] = info
        metrics.COMMANDS_SENT.labels(str(payload.get("type"))).inc()

    def on_event(self, event: Event) -> None:
        assert isinstance(event, CommandQueued)
        self.send_outbox(event.id, event.device_id, event.payload)

    def take_published(self) -> list[int]:
        """Outbox rows the broker has acknowledged since the last call."""
        with self._lock:
            done = [cid for cid, info in self._inflight.items() if info.is_published()]
            for cid in done:
                del self._inflight[cid]
        return done
