"""The ingest side assembled: two MQTT links, the two workers, replies and the scheduler."""

from __future__ import annotations

import logging

from monitor import metrics
from monitor.config import Settings
from monitor.db import Store, utcnow
from monitor.ingest.items import Item
from monitor.ingest.link import Incoming, MqttLink, subscription
from monitor.ingest.messages import SCHEMAS, TELEMETRY, URGENT, Parsed, parse
from monitor.ingest.refusals import Refused
from monitor.ingest.replies import Replies
from monitor.ingest.telemetry import TelemetryWriter
from monitor.ingest.urgent import UrgentWorker
from monitor.scheduler import Scheduler

log = logging.getLogger(__name__)


class Ingest:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.telemetry = TelemetryWriter(store, settings)
        self.urgent = UrgentWorker(store, settings)
        self.urgent_link = MqttLink(
            settings,
            "urgent",
            [subscription(settings, s) for s in sorted(URGENT)],
            self._on_message,
        )
        self.telemetry_link = MqttLink(
            settings,
            "telemetry",
            [subscription(settings, s, retained_once=(s == "status")) for s in sorted(TELEMETRY)],
            self._on_message,
        )
        self.replies = Replies(self.urgent_link)
        self.urgent.send_reply = self.replies.send
        self.telemetry.send_reply = self.replies.send
        self.scheduler = Scheduler(
            store,
            settings,
            resend=self.replies.send_outbox,
            take_published=self.replies.take_published,
            can_send=self.urgent_link.connected.is_set,
        )
        self._unsubscribe = store.bus.subscribe(self.replies.on_event, "device.command")
        metrics.watch(store.bus)

    def _on_message(self, incoming: Incoming) -> None:
        # Runs on paho's network thread: parse once, then hand over; a refusal goes to the
        # worker of the path it came on, so that path's acknowledgement covers it.
        now = utcnow()
        result = parse(incoming.topic, incoming.payload, self.settings.max_payload_bytes)
        # A label per known message type only: topics are device input.
        metrics.MESSAGES.labels(result.suffix if result.suffix in SCHEMAS else "other").inc()
        if isinstance(result, Parsed):
            item = Item(incoming, now, parsed=result)
        else:
            item = Item(
                incoming, now, refused=Refused(result, incoming.topic, incoming.payload, now)
            )
        (self.urgent if result.suffix in URGENT else self.telemetry).put(item)

    def start(self, wait_s: float = 0.0) -> None:
        self.telemetry.start()
        self.urgent.start()
        self.urgent_link.start()
        self.telemetry_link.start()
        self.scheduler.start()
        if wait_s:
            self.urgent_link.connected.wait(wait_s)
            self.telemetry_link.connected.wait(wait_s)

    def stop(self, *, end_session: bool = False) -> None:
        self._unsubscribe()
        self.scheduler.stop()
        self.urgent_link.stop(end_session=end_session)
        self.telemetry_link.stop(end_session=end_session)
        self.urgent.stop()
        self.telemetry.stop()
        for t in (self.scheduler, self.urgent, self.telemetry):
            if t.is_alive():
                t.join(timeout=10)
