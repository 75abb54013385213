"""Publishing commands to devices: direct replies and the outbox, with broker acknowledgement.

`alert_received` and `rejected` are sent straight away (a device resends until it hears them);
every other command comes from the outbox (`monitor.devices.commands`) and is marked sent when
the broker acknowledges it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from monitor import metrics
from monitor.devices.commands import command_payload
from monitor.events import Event
from monitor.ingest.link import MqttLink

log = logging.getLogger(__name__)


def cmd_topic(device_id: str) -> str:
    return f"vigil/v1/{device_id}/cmd"


class Replies:
    def __init__(self, link: MqttLink, mark_sent: Callable[[list[int]], None]) -> None:
        self.link = link
        self._mark_sent = mark_sent
        self._waiting: dict[int, int] = {}  # MQTT message id -> outbox row id
        self._lock = threading.Lock()
        link.on_published = self._published

    def send(self, device_id: str, type_: str, **fields: Any) -> None:
        payload = command_payload(type_, **fields)
        self.link.publish(cmd_topic(device_id), json.dumps(payload).encode())
        metrics.COMMANDS_SENT.labels(type_).inc()

    def send_outbox(self, command_id: int, device_id: str, payload: dict[str, Any]) -> None:
        # Hold the lock across publish so the broker's PUBACK cannot be handled before the
        # message id is known.
        with self._lock:
            mid = self.link.publish(cmd_topic(device_id), json.dumps(payload).encode())
            self._waiting[mid] = command_id
        metrics.COMMANDS_SENT.labels(str(payload.get("type"))).inc()

    def on_event(self, event: Event) -> None:
        self.send_outbox(event.data["id"], event.data["device_id"], event.data["payload"])

    def _published(self, mid: int) -> None:
        with self._lock:
            command_id = self._waiting.pop(mid, None)
        if command_id is not None:
            self._mark_sent([command_id])
