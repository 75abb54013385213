"""A panic alert from a simulated badge, through a real Mosquitto, into the store and back."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from monitor.alerts.models import Alert, AlertEvent
from tests.support import Running, wait_until


def test_alert_is_stored_and_received_back(svc: Running) -> None:
    badge, b = svc.badge("badge-001")
    alert_id = badge.raise_alert(type="red", trigger="button", note="front door")

    cmd = badge.wait_for("alert_received", timeout=10, alert_id=alert_id)
    assert cmd.payload["v"] == 1 and isinstance(cmd.payload["ts"], int)
    assert badge.pending_alerts == []

    with svc.store.session() as db:
        alert = db.scalar(select(Alert).where(Alert.device_alert_id == alert_id))
        assert alert is not None
        assert (alert.device_id, alert.type, alert.trigger, alert.state) == (
            b.device_id,
            "red",
            "button",
            "raised",
        )
        assert alert.worker_id == b.worker_id
        assert alert.note == "front door"
        assert alert.lat is not None and alert.battery is not None
        kinds = db.scalars(select(AlertEvent.kind).where(AlertEvent.alert_id == alert.id)).all()
        # The escalation (entries of its own) may well have started by now.
        assert kinds[0] == "raised" and kinds.count("raised") == 1

    ops = svc.user()
    listed = svc.http.get("/api/v1/alerts", headers=ops).json()
    assert [a["device_alert_id"] for a in listed] == [alert_id]
    assert listed[0]["worker_name"] == "Alex Worker" and listed[0]["team"] == "Housing"


def test_copies_of_one_alert_make_one_alert(svc: Running) -> None:
    badge, _ = svc.badge("badge-dup")
    alert_id = "dup-alert-0001"
    payload = (
        '{"v":1,"ts":%d,"id":"%s","type":"red","trigger":"button","loc":{"lat":51.5,"lon":-0.12}}'
    )
    for _ in range(1000):
        badge.publish_raw("alert", payload % (int(time.time() * 1000), alert_id), qos=1)

    def all_answered() -> bool:
        return sum(1 for c in badge.commands if c.type == "alert_received") >= 1000

    wait_until(all_answered, timeout=60, what="1000 alert_received replies")
    with svc.store.session() as db:
        n = db.scalar(
            select(func.count()).select_from(Alert).where(Alert.device_alert_id == alert_id)
        )
        assert n == 1
