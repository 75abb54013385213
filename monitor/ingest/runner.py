"""The ingest side assembled: two MQTT links, the two workers and the replies to devices, and
the door by which gateways hand in messages that did not come through the broker."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from monitor import metrics
from monitor.config import Settings
from monitor.db import Store
from monitor.events import Kind
from monitor.ingest.bulklink import BulkLink
from monitor.ingest.items import item_of
from monitor.ingest.link import Incoming, MqttLink, client_id_of, is_status, subscription
from monitor.ingest.processes import TelemetryProcesses, child_sessions
from monitor.ingest.replies import Replies
from monitor.ingest.takeover import Takeover
from monitor.ingest.telemetry import TelemetryWriter
from monitor.ingest.urgent import UrgentWorker
from monitor.protocol import TELEMETRY, URGENT, Refusal

log = logging.getLogger(__name__)


# Refusals that say "not now" rather than "never" (monitor/ingest/urgent.py).
AGAIN = frozenset({"overloaded", "store_failed", "too_many_waiting"})


@dataclass
class Handed:
    """A protocol-v1 message handed in by a gateway (another client's protocol, translated),
    not taken from the broker: acknowledged, as a broker's message is, once stored or
    refused."""

    topic: str
    payload: bytes
    done: threading.Event = field(default_factory=threading.Event)
    refusal: Refusal | None = None

    def ack(self) -> None:
        self.done.set()

    def refused(self, refusal: Refusal) -> None:
        self.refusal = refusal

    @property
    def retry_later(self) -> bool:
        """Refused for now only (the device's line full, the store failing, too many held):
        the gateway must have it sent again, as a device resends what was not taken."""
        return self.refusal is not None and self.refusal.code in AGAIN

    def wait(self, timeout_s: float) -> bool:
        """Whether it was stored (or refused) within `timeout_s`."""
        return self.done.wait(timeout_s)


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
        telemetry = [
            subscription(settings, s, retained_once=(s == "status")) for s in sorted(TELEMETRY)
        ]
        # With telemetry processes, this session keeps `status` only (processes.py says why):
        # it drops what it subscribed to when it stored all telemetry itself, and stores what
        # was queued for it before.
        processes = settings.telemetry_processes > 0
        self.telemetry_link = BulkLink(
            settings,
            "telemetry",
            [t for t in telemetry if is_status(t[0])] if processes else telemetry,
            self._on_message,
            drop=[topic for topic, _ in telemetry if not is_status(topic)] if processes else None,
        )
        self.processes = (
            TelemetryProcesses(settings, self.telemetry_link, self._on_message, self.telemetry.idle)
            if TelemetryProcesses.needed(settings)
            else None
        )
        # In a shared group, a replica that dies would keep a share of the traffic queued for
        # its sessions: the others take them over (docs/operations.md, "When a replica dies").
        sessions = [self.urgent_link.client_id, self.telemetry_link.client_id] + [
            client_id_of(settings, name) for name in child_sessions(settings)
        ]
        self.takeover = (
            Takeover(store, settings, sessions, self._on_message)
            if Takeover.needed(settings)
            else None
        )
        self.replies = Replies(self.urgent_link)
        self.urgent.send_reply = self.replies.send
        self.telemetry.send_reply = self.replies.send
        # This replica is ready (/readyz) only while both of its sessions are connected; with
        # telemetry processes, theirs are not looked at (each is restarted within a second).
        store.health.watch_link("urgent", self.urgent_link.connected.is_set)
        store.health.watch_link("telemetry", self.telemetry_link.connected.is_set)
        self._unsubscribe = store.bus.subscribe(self.replies.on_event, Kind.DEVICE_COMMAND)
        metrics.watch(store.bus)
        # Read when scraped, so a worker stuck waiting for the store still shows its queue.
        metrics.QUEUE_DEPTH.labels("urgent").set_function(self.urgent.depth)
        metrics.QUEUE_DEPTH.labels("telemetry").set_function(self._telemetry_depth)

    def _telemetry_depth(self) -> int:
        children = self.processes.depth() if self.processes is not None else 0
        return self.telemetry.depth() + children

    def _on_message(self, incoming: Incoming) -> None:
        if incoming.retain and not is_status(incoming.topic):
            # Only `status` is retained by contract. The subscriptions take no stored retained
            # message (`subscription`), so this one is live and handled once; cleared, it
            # cannot reach a subscriber later. The clearing comes back here, empty.
            if not incoming.payload:
                incoming.ack()
                return
            self.urgent_link.publish(incoming.topic, b"", retain=True)
        item, urgent = item_of(incoming, self.settings)
        (self.urgent if urgent else self.telemetry).put(item)

    def submit(self, topic: str, payload: bytes) -> Handed:
        """Hand in a message from a gateway (`vigil/v1/<device>/<suffix>`, a protocol-v1
        body): parsed, routed and applied exactly as one from the broker, so every rule
        (idempotency, refusals, PINs, privacy, fairness) holds for it. Wait on the result
        before answering the client: only then is it stored."""
        handed = Handed(topic, payload)
        item, urgent = item_of(handed, self.settings)
        if urgent:
            # A copy of an alert waiting to be stored is not acknowledged at once, as a
            # broker's is: the gateway would answer its client that it is stored.
            self.urgent.put(item, coalesce=False)
        else:
            self.telemetry.put(item)
        return handed

    def start(self, wait_s: float = 0.0) -> None:
        self.telemetry.start()
        self.urgent.start()
        self.urgent_link.start()
        if self.processes is not None:
            self.processes.start()  # it starts the telemetry link when the time is right
        else:
            self.telemetry_link.start()
        if self.takeover is not None:
            self.takeover.start()
        if wait_s:
            self.urgent_link.connected.wait(wait_s)
            self.telemetry_link.connected.wait(wait_s)
            if self.processes is not None:
                self.processes.started.wait(wait_s)

    def stop(self, *, end_session: bool = False) -> None:
        self._unsubscribe()
        if self.takeover is not None:
            # First: a session it is taking over is left (not ended) while the workers that
            # would store its messages still run.
            self.takeover.stop(forget=end_session)
        if self.processes is not None:
            self.processes.stop(end_session=end_session)
        self.urgent_link.stop(end_session=end_session)
        self.telemetry_link.stop(end_session=end_session)
        self.urgent.stop()
        self.telemetry.stop()
        for t in (self.urgent, self.urgent.pins, self.telemetry):
            if t.is_alive():
                t.join(timeout=10)
