"""No device can hold up another worker's alert: devices take turns on the urgent path,
refusals in a loop are recorded as counted rows, and a retained message is never handled twice
(issue 20). PINs checked a few times at most, and held messages: tests/fast/test_fairness.py."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from monitor.alerts.models import Alert
from monitor.ingest.fair import FairQueue
from monitor.ingest.models import RefusedMessage
from tests.support import SERVICE_PASSWORD, SERVICE_USER, Running, wait_until


def now_ms() -> int:
    return int(time.time() * 1000)


def test_fair_queue_takes_turns_and_keeps_each_device_in_order() -> None:
    q: FairQueue[str] = FairQueue(per_key=3)
    assert all(q.put("flood", f"f{i}") for i in range(3))
    assert not q.put("flood", "f3"), "a full line takes no more"
    assert q.put("victim", "v0")

    assert q.get(0.1) == ("flood", "f0")
    # While the flood's message is out, the flood waits and the victim goes.
    assert q.get(0.1) == ("victim", "v0")
    assert q.get(0.01) is None
    q.done("victim")
    q.put_first("flood", "f0 checked")  # back from a PIN check: first, and the turn ends
    assert [q.get(0.1) for _ in range(1)] == [("flood", "f0 checked")]
    q.done("flood")
    assert q.get(0.1) == ("flood", "f1")
    q.done("flood")
    assert q.get(0.1) == ("flood", "f2")
    q.done("flood")
    assert len(q) == 0 and q.get(0.01) is None


def refused_rows(svc: Running, device_id: str) -> list[RefusedMessage]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(RefusedMessage)
                .where(RefusedMessage.device_id == device_id)
                .order_by(RefusedMessage.id)
            )
        )


def test_a_device_flooding_alerts_does_not_hold_up_another_devices_alert(svc: Running) -> None:
    svc.restart(urgent_per_device=1000)  # the whole flood waits in line, none is refused
    flooder, f = svc.badge("badge-flood")
    victim, v = svc.badge("badge-victim")
    flood = 300
    for i in range(flood):
        body = {"v": 1, "ts": now_ms(), "id": f"flood-{i:05d}", "type": "test"}
        flooder.publish_raw("alert", json.dumps(body), qos=1)
    time.sleep(0.2)  # the flood is at the broker before the victim's alert
    alert_id = victim.raise_alert(type="red")
    victim.wait_for("alert_received", alert_id=alert_id, timeout=60)

    def flood_ids() -> list[int]:
        with svc.store.session() as db:
            return list(db.scalars(select(Alert.id).where(Alert.device_id == f.device_id)))

    wait_until(lambda: len(flood_ids()) == flood, timeout=120, what="the whole flood stored")
    with svc.store.session() as db:
        victims = db.scalars(select(Alert.id).where(Alert.device_id == v.device_id)).all()
    # Stored in the order taken: with turns, the victim's alert went ahead of most of the
    # flood; first in, first out, it would have come after all of it.
    after = [i for i in flood_ids() if i > victims[0]]
    assert len(after) > flood // 2, f"only {len(after)} of the flood came after the victim"


def test_refusals_in_a_loop_become_counted_rows(svc: Running) -> None:
    badge, b = svc.badge("badge-junk")
    started = time.monotonic()
    for _ in range(200):
        badge.publish_raw("alert", b'{"v":1}', qos=1)

    wait_until(
        lambda: sum(r.repeats for r in refused_rows(svc, b.device_id)) == 200,
        timeout=30,
        what="200 refusals recorded",
    )
    rows = refused_rows(svc, b.device_id)
    assert len(rows) < 50, f"{len(rows)} rows for one device's 200 copies of one refusal"
    assert all(r.reason.startswith("ts: Field required") for r in rows)
    # Told, but not 200 times: at most five `rejected` a second.
    told = [c for c in badge.commands if c.type == "rejected"]
    assert 1 <= len(told) <= 5 * (int(time.monotonic() - started) + 2)
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)


def retained_on_broker(svc: Running, topic: str) -> bytes | None:
    """What a new subscriber gets for `topic` as a retained message, if anything."""
    got: list[bytes] = []
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
    c.username_pw_set(SERVICE_USER, SERVICE_PASSWORD)
    marker = b"marker-" + uuid.uuid4().hex.encode()
    c.on_message = lambda client, userdata, msg: got.append(bytes(msg.payload))
    c.on_subscribe = lambda *args: subscribed.set()
    c.connect(svc.broker.host, svc.broker.service_port)
    c.loop_start()
    try:
        c.subscribe(topic, qos=1)
        assert subscribed.wait(5)
        # A retained message comes before anything published after the subscription.
        c.publish(topic, marker, qos=1)
        wait_until(lambda: marker in got, timeout=5, what="the marker")
    finally:
        c.loop_stop()
        c.disconnect()
    before = got[: got.index(marker)]
    return before[0] if before else None


def received(svc: Running, suffix: str) -> float:
    """Messages of this type the service has taken in (process-wide)."""
    text = svc.http.get("/metrics").text
    m = re.search(rf'vigil_device_messages_total{{suffix="{re.escape(suffix)}"}} ([0-9.e+]+)', text)
    return float(m.group(1)) if m else 0.0


def test_a_retained_alert_and_cancel_are_handled_once_across_restarts(svc: Running) -> None:
    badge, b = svc.badge("badge-retain")
    alert_id = uuid.uuid4().hex
    body = {"v": 1, "ts": now_ms(), "id": alert_id, "type": "red"}
    badge.publish_raw("alert", json.dumps(body), qos=1, retain=True)
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    cancel = {"v": 1, "ts": now_ms(), "alert_id": alert_id, "pin": b.duress_pin}
    badge.publish_raw("alert/cancel", json.dumps(cancel), qos=1, retain=True)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    alerts_in, cancels_in = received(svc, "alert"), received(svc, "alert/cancel")

    for _ in range(2):
        svc.restart()
        # A new alert answered after the restart: the subscriptions are renewed and whatever
        # the broker sent at subscribe time has been handled before it.
        after = badge.raise_alert(type="test")
        badge.wait_for("alert_received", alert_id=after, timeout=10)

    assert received(svc, "alert") == alerts_in + 2, "only the two new alerts came in"
    assert received(svc, "alert/cancel") == cancels_in
    with svc.store.session() as db:
        alerts = db.scalars(select(Alert).where(Alert.device_id == b.device_id)).all()
        assert sorted(a.type for a in alerts) == ["red", "test", "test"]
        assert [a.duress for a in alerts if a.type == "red"] == [True]
    for suffix in ("alert", "alert/cancel"):
        assert retained_on_broker(svc, f"vigil/v1/{b.device_id}/{suffix}") is None
