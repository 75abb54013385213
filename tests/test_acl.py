"""The broker configuration Vigil generates keeps each device to its own topics."""

from __future__ import annotations

import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from monitor.alerts.models import Alert
from tests.support import Running


def test_device_cannot_publish_as_another_or_read_its_commands(svc: Running) -> None:
    a, _ = svc.badge("badge-a")
    b, bb = svc.badge("badge-b")

    # A tries to raise an alert in B's name.
    forged = json.dumps(
        {"v": 1, "ts": int(time.time() * 1000), "id": "forged-alert-1", "type": "red"}
    )
    a.publish_raw("alert", forged, qos=1, topic=f"vigil/v1/{bb.device_id}/alert")

    # A third device listens on B's command topic with its own credentials, on a connection
    # of its own. (Not A: a second connection of a device replaces its first, as the client
    # id is the username.)
    c, bc = svc.badge("badge-c")
    c.disconnect()
    heard: list[str] = []
    got_suback = threading.Event()
    spy = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"{bc.device_id}-spy",
        protocol=mqtt.MQTTv5,
    )
    spy.username_pw_set(bc.device_id, bc.secret)
    spy.on_message = lambda c, u, m: heard.append(m.topic)
    # Mosquitto grants the subscription but delivers nothing the ACL forbids.
    spy.on_subscribe = lambda *args: got_suback.set()
    spy.connect(svc.broker.host, svc.broker.port)
    spy.loop_start()
    try:
        spy.subscribe(f"vigil/v1/{bb.device_id}/cmd", qos=1)
        assert got_suback.wait(5)
        # B's own alert gets B an answer that A must not see.
        alert_id = b.raise_alert(type="test")
        b.wait_for("alert_received", alert_id=alert_id, timeout=10)
        # And A's own valid alert still goes through, after the forged one.
        own = a.raise_alert(type="test")
        a.wait_for("alert_received", alert_id=own, timeout=10)
        time.sleep(0.5)
        assert heard == []
    finally:
        spy.loop_stop()
        spy.disconnect()

    with svc.store.session() as db:
        ids = set(db.scalars(select(Alert.device_alert_id)))
    assert "forged-alert-1" not in ids
    assert ids == {alert_id, own}


def test_wrong_secret_is_refused_at_connect(svc: Running) -> None:
    _, b = svc.badge("badge-pw")
    from device_sim.device import SimDevice

    intruder = SimDevice(
        device_id=b.device_id,
        secret="not-the-secret-" + uuid.uuid4().hex,
        host=svc.broker.host,
        port=svc.broker.port,
    )
    with pytest.raises(Exception, match=r"(?i)refused|not authori[sz]ed|bad user"):
        intruder.connect(timeout=5)


def test_a_device_cannot_take_over_another_devices_client_id(svc: Running) -> None:
    """A device with valid credentials of its own connects again and again with another
    device's client id: the other device stays connected and gets every command."""
    owner, bo = svc.badge("badge-owner")
    _, bt = svc.badge("badge-thief")
    alert_id = owner.raise_alert(type="test")
    owner.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user()
    (row,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    sock = owner.client.socket()
    assert sock is not None

    for _ in range(5):
        connected = threading.Event()
        thief = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=bo.device_id,
            protocol=mqtt.MQTTv5,
        )
        thief.username_pw_set(bt.device_id, bt.secret)
        thief.on_connect = lambda *args: connected.set()
        thief.connect(svc.broker.host, svc.broker.port, clean_start=False)
        thief.loop_start()
        try:
            assert connected.wait(5)
            # While it is connected, the owner's commands and answers still reach the owner.
            again = owner.raise_alert(type="test")
            owner.wait_for("alert_received", alert_id=again, timeout=10)
        finally:
            thief.loop_stop()
            thief.disconnect()

    r = svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops)
    assert r.status_code == 200
    owner.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
    # Never put off: the connection it started with is the one it still has.
    assert owner.client.socket() is sock and owner.connected
