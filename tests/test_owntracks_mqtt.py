"""OwnTracks over MQTT, end to end (gateways/owntracks): an app connected to the broker with
Vigil's generated ACL, its messages stored through ingest, `locate` reaching it as
`reportLocation`, and nothing published outside its own topics taken."""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from monitor.alerts.models import Alert
from monitor.devices import service as devices
from monitor.devices.commands import queue_command
from monitor.devices.models import Device, LocationFix
from monitor.orgs import service as orgs
from monitor.visits.models import VisitEvent
from tests import owntracks_messages as ot
from tests.support import Broker, Running, running, service_settings, wait_until


@pytest.fixture
def svc(db_url: str, mqtt_broker: Broker, tmp_path: Path) -> Iterator[Running]:
    settings = service_settings(tmp_path / "data", db_url, mqtt_broker, owntracks_mqtt=True)
    with running(settings, mqtt_broker) as r:
        yield r


class App:
    """The OwnTracks app in MQTT mode as set up in docs/integrations.md: username and Device
    ID both the device id, MQTT 3.1.1, QoS 1, a last will, commands on its `cmd` topic."""

    def __init__(self, brk: Broker, device_id: str, secret: str) -> None:
        self.device_id = device_id
        self.base = f"owntracks/{device_id}/{device_id}"
        self.heard: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.subscribed = queue.Queue[int]()
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{device_id}{device_id}",  # the app's default: user and device
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        c.username_pw_set(device_id, secret)
        c.will_set(self.base, ot.encode(ot.lwt()), qos=1, retain=False)
        c.on_message = lambda _c, _u, m: self.heard.put((m.topic, json.loads(m.payload)))
        c.on_subscribe = lambda _c, _u, mid, *_: self.subscribed.put(mid)
        c.connect(brk.host, brk.port)
        c.loop_start()
        # What the app subscribes to: its commands, and friends' positions, events and cards.
        friends = [(f"owntracks/+/+{sub}", 1) for sub in ("", "/event", "/info")]
        _, mid = c.subscribe([(f"{self.base}/cmd", 1), *friends])
        assert self.subscribed.get(timeout=5) == mid
        self.client = c

    def publish(self, message: dict[str, Any], topic: str = "") -> None:
        info = self.client.publish(topic or self.base, ot.encode(message), qos=1)
        info.wait_for_publish(5)

    def vanish(self) -> None:
        """Gone without a goodbye (a phone losing its network): the broker sends the will."""
        sock = self.client.socket()
        assert sock is not None
        sock.close()
        self.client.loop_stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_owntracks_app_over_mqtt(svc: Running) -> None:
    with svc.store.begin() as db:
        worker = orgs.add_worker(db, name="Alex Worker", cancel_pin="1234", duress_pin="9876")
        device_id = f"ot-{uuid.uuid4().hex[:8]}"
        _, secret = devices.add_device(db, device_id, worker_id=worker.id, kind=devices.OWNTRACKS)
        other_id = f"ot-{uuid.uuid4().hex[:8]}"
        _, other_secret = devices.add_device(
            db, other_id, worker_id=worker.id, kind=devices.OWNTRACKS
        )
    svc.broker.load_registry(svc.store)
    app = App(svc.broker, device_id, secret)
    other = App(svc.broker, other_id, other_secret)

    def fixes(device: str) -> int:
        with svc.store.session() as db:
            count = select(func.count(LocationFix.id)).where(LocationFix.device_id == device)
            return db.scalar(count) or 0

    # Published outside its own topics: the broker's ACL drops it before Vigil sees it.
    other_topic = f"owntracks/{other_id}/{other_id}"
    app.publish(ot.android_location(other_id), topic=other_topic)
    app.publish(ot.android_location(device_id), topic=f"owntracks/{device_id}/phone")
    # Its own position, a transition on its `event` topic, and a report for help.
    app.publish(ot.android_location(device_id))
    app.publish(ot.transition("enter"), topic=f"{app.base}/event")
    report = ot.ios_help_report()
    app.publish(report)
    wait_until(lambda: fixes(device_id) == 3, what="the position, transition and report stored")
    with svc.store.session() as db:
        (alert,) = db.scalars(select(Alert).where(Alert.device_id == device_id))
        assert alert.type == "red" and alert.device_alert_id == f"owntracks-{report['tst']}"
    assert fixes(other_id) == 0
    # Another worker's app is taken, and the first app, subscribed to friends, hears nothing
    # of it: workers do not see each other.
    other.publish(ot.android_location(other_id))
    wait_until(lambda: fixes(other_id) == 1, what="the other app's position")

    # `locate` from the outbox reaches the app on its own command topic.
    with svc.store.begin() as db:
        queue_command(db, device_id, "locate")
    topic, command = app.heard.get(timeout=10)
    assert (topic, command) == (f"{app.base}/cmd", {"_type": "cmd", "action": "reportLocation"})
    assert app.heard.empty() and other.heard.empty()

    # Reports sent while the service is down wait in its session at the broker.
    svc.stop()
    app.publish(ot.android_location(device_id))
    svc.restart()
    wait_until(lambda: fixes(device_id) == 4, what="the report sent while the service was down")

    # Its last will: the device is offline.
    app.vanish()
    other.vanish()

    def offline() -> bool:
        with svc.store.session() as db:
            device = db.get(Device, device_id)
            return device is not None and not device.online

    wait_until(offline, what="the lwt taken as offline")
    assert fixes(device_id) == 4


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_transition_over_mqtt_goes_into_the_open_visit_once(svc: Running) -> None:
    # The worker's badge runs the visit's timer; OwnTracks on their phone reports regions.
    badge, b = svc.badge("badge-ot")
    with svc.store.begin() as db:
        device_id = f"ot-{uuid.uuid4().hex[:8]}"
        _, secret = devices.add_device(db, device_id, worker_id=b.worker_id, kind=devices.OWNTRACKS)
    svc.broker.load_registry(svc.store)
    app = App(svc.broker, device_id, secret)
    visit_id = badge.start_visit(note="Home visit, 12 Elm St")
    badge.wait_for("visit_started", visit_id=visit_id, timeout=10)

    arrived = ot.transition("enter", ot.now_s() + 1)
    for _ in range(2):  # a copy the app sends again: one entry
        app.publish(arrived, topic=f"{app.base}/event")
    app.publish(ot.transition("leave", ot.now_s() + 2), topic=f"{app.base}/event")

    def places() -> list[str]:
        with svc.store.session() as db:
            rows = db.scalars(
                select(VisitEvent).where(VisitEvent.kind == "place").order_by(VisitEvent.at)
            )
            return [e.text for e in rows]

    # Taken in the order published: once the leave is there, the copy was handled too.
    wait_until(lambda: len(places()) == 2, what="the arrival and the leave in the visit")
    assert places() == [
        "Arrived at 12 Elm St (OwnTracks region)",
        "Left 12 Elm St (OwnTracks region)",
    ]
    with svc.store.session() as db:
        count = select(func.count(LocationFix.id)).where(LocationFix.device_id == device_id)
        assert db.scalar(count) == 3  # each is a position as well
