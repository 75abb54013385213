"""An alert's handling: operators' acknowledge and resolve told to the device, and a device
asked to locate when its alert came without a position."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from monitor.devices.models import LocationFix
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until


def test_acknowledge_and_resolve_tell_the_device(svc: Running) -> None:
    badge, _ = svc.badge("badge-ack")
    alert_id = badge.raise_alert(type="man_down", trigger="fall")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user()
    (row,) = svc.http.get("/api/v1/alerts", headers=ops).json()

    r = svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["acknowledged_by"] == "user:op1"
    badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)

    again = svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops)
    assert again.status_code == 409

    note = svc.http.post(
        f"/api/v1/alerts/{row['id']}/notes",
        headers=ops,
        json={"text": "Called the worker: fell on stairs"},
    )
    assert note.status_code == 201

    r = svc.http.post(
        f"/api/v1/alerts/{row['id']}/resolve", headers=ops, json={"outcome": "genuine_emergency"}
    )
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    badge.wait_for("alert_closed", alert_id=alert_id, timeout=10)

    detail = svc.http.get(f"/api/v1/alerts/{row['id']}", headers=ops).json()
    kinds = [e["kind"] for e in detail["timeline"]]
    # Escalation's own entries (the default: no policy, operators only) come in between.
    assert [k for k in kinds if not k.startswith("escalation")] == [
        "raised",
        "acknowledged",
        "note",
        "positions",
        "resolved",
    ]
    assert kinds[1] == "escalation_started" and "escalation_stopped" in kinds
    assert svc.http.get("/api/v1/alerts?state=active", headers=ops).json() == []
    assert len(svc.http.get("/api/v1/alerts?state=all", headers=ops).json()) == 1


def test_alert_without_position_asks_the_device_to_locate(svc: Running) -> None:
    badge, b = svc.badge("badge-loc")
    body = {"v": 1, "ts": int(time.time() * 1000), "id": "no-position-1", "type": "red"}
    badge.publish_raw("alert", json.dumps(body))
    badge.wait_for("alert_received", alert_id="no-position-1", timeout=10)
    badge.wait_for("locate", timeout=10)  # the simulated badge answers with a location

    def located() -> bool:
        with svc.store.session() as db:
            return (
                db.scalar(
                    select(func.count())
                    .select_from(LocationFix)
                    .where(LocationFix.device_id == b.device_id)
                )
                == 1
            )

    wait_until(located, timeout=10, what="the location sent in answer")
