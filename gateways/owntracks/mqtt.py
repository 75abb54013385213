"""OwnTracks over MQTT: the service's own session on `owntracks/+/+` (and `.../event`), whose
messages are translated, handed to ingest, and acknowledged to the broker only once stored;
and `locate` commands to OwnTracks devices published as `reportLocation` on their `cmd` topic.

An OwnTracks device connects as itself (username = device id), with its app's Device ID set
to the same id, so its topic is `owntracks/<id>/<id>`: the broker's ACL (monitor/broker.py)
lets it publish there only, and the command topic is known without storing anything.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable

from fastapi import FastAPI
from paho.mqtt.subscribeoptions import SubscribeOptions

from gateways.owntracks import places
from gateways.owntracks.messages import (
    KIND,
    REPORT_LOCATION,
    NotOwnTracks,
    Place,
    decode,
    place,
    translate,
)
from monitor.config import Settings
from monitor.db import Store
from monitor.devices.models import Device
from monitor.events import CommandQueued, Event, Kind
from monitor.ingest.link import Incoming, MqttLink
from monitor.ingest.runner import Handed, Ingest

log = logging.getLogger(__name__)

ROOT = "owntracks"
# Locations and lwt on the base topic, transitions on `event`; the rest (info, waypoint,
# status, step, ...) carries nothing Vigil uses and is not taken.
SUFFIXES = ("", "/event")
# How often a transition's visit entry is tried (a second apart) before the message is
# acknowledged without it: a place missing from a timeline must not hold back every later
# position of the device.
PLACE_ATTEMPTS = 30


def topics(settings: Settings) -> list[tuple[str, SubscribeOptions]]:
    group = settings.mqtt_shared_group
    out = []
    for suffix in SUFFIXES:
        topic = f"{ROOT}/+/+{suffix}"
        if group:
            topic = f"$share/{group}/{topic}"
        # A location the app published retained is taken when it is published, not again
        # at every start (retain handling 2).
        out.append((topic, SubscribeOptions(qos=1, retainHandling=2)))
    return out


def device_of(topic: str) -> str | None:
    """The device id of an OwnTracks topic: `owntracks/<id>/<id>[/event]`."""
    parts = topic.split("/")
    if len(parts) in (3, 4) and parts[0] == ROOT and parts[1] == parts[2]:
        return parts[1]
    return None


def cmd_topic(device_id: str) -> str:
    return f"{ROOT}/{device_id}/{device_id}/cmd"


class OwnTracksMqtt:
    """A Runner (monitor.api): started and stopped with the service."""

    def __init__(self, app: FastAPI, settings: Settings, store: Store) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.link: MqttLink | None = None
        self.ingest: Ingest | None = None
        # Messages handed in, in the order they came, each acknowledged once all that it
        # became is stored (its place in a visit's timeline too); and devices to ask for a
        # fix. One thread serves both.
        self._work: queue.Queue[tuple[Incoming, list[Handed], Place | None] | str | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._run, name="vigil-owntracks", daemon=True)
        self._stopping = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self.ingest = getattr(self.app.state, "ingest", None)
        if self.ingest is None or not self.settings.owntracks_mqtt:
            return  # not asked for, or an app without ingest (tests of the API alone)
        self.link = MqttLink(self.settings, "owntracks", topics(self.settings), self._on_message)
        self._thread.start()
        self._unsubscribe = self.store.bus.subscribe(self._on_command, Kind.DEVICE_COMMAND)
        self.link.start()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stopping.set()
        if self._thread.is_alive():
            self._work.put(None)
            self._thread.join(timeout=10)
        if self.link is not None:
            self.link.stop()  # what was not acknowledged yet comes again on the next start

    def _on_message(self, incoming: Incoming) -> None:
        """On paho's thread: translate and hand in, never wait here."""
        assert self.ingest is not None
        device_id = device_of(incoming.topic)
        try:
            data = decode(incoming.payload) if device_id is not None else None
        except NotOwnTracks as e:
            log.warning("OwnTracks message on %s dropped: %s", incoming.topic, e)
            data = None
        if device_id is None or data is None:
            incoming.ack()
            return
        handed = [self.ingest.submit(v1.topic(device_id), v1.payload()) for v1 in translate(data)]
        self._work.put((incoming, handed, place(device_id, data)))

    def _on_command(self, event: Event) -> None:
        """On the committing thread: only a look and a queue."""
        assert isinstance(event, CommandQueued)
        if event.payload.get("type") == "locate":
            self._work.put(event.device_id)

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            try:
                if isinstance(item, str):
                    self._ask_fix(item)
                else:
                    self._ack_when_stored(*item)
            except Exception:
                log.exception("OwnTracks gateway")

    def _ack_when_stored(
        self, incoming: Incoming, handed: list[Handed], where: Place | None
    ) -> None:
        assert self.ingest is not None
        for first in handed:
            h = first
            # Ingest retries until the store takes it; a stop leaves it unacknowledged, so
            # the broker delivers it again. Refused for now only (the device's line full),
            # it is handed in again a second later.
            while not h.wait(1.0) or h.retry_later:
                if self._stopping.is_set():
                    return
                if h.retry_later:
                    self._stopping.wait(1.0)
                    h = self.ingest.submit(h.topic, h.payload)
        if where is not None and not self._place(incoming, where):
            return
        incoming.ack()

    def _place(self, incoming: Incoming, where: Place) -> bool:
        """Write a transition into its visit's timeline (once, by its key); False if stopped
        first, leaving the message to the broker to deliver again."""
        device_id = device_of(incoming.topic)
        assert device_id is not None
        for attempt in range(1, PLACE_ATTEMPTS + 1):
            try:
                places.record(self.store, device_id, where)
                return True
            except Exception:
                log.warning(
                    "OwnTracks transition of %s not recorded (attempt %d)",
                    device_id,
                    attempt,
                    exc_info=True,
                )
            if self._stopping.wait(1.0):
                return False
        return True

    def _ask_fix(self, device_id: str) -> None:
        with self.store.session() as db:
            device = db.get(Device, device_id)
            if device is None or device.kind != KIND:
                return
        assert self.link is not None
        # If the app is away, the broker keeps it for the app's persistent session.
        self.link.publish(cmd_topic(device_id), json.dumps(REPORT_LOCATION).encode())
