"""alert/cancel: the cancel PIN, the duress PIN and a wrong PIN, as PROTOCOL.md says."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from monitor.ingest.models import WaitingMessage
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until


def held(svc: Running) -> int:
    with svc.store.session() as db:
        return len(db.scalars(select(WaitingMessage)).all())


def _raise(svc: Running, device_id: str):  # type: ignore[no-untyped-def]
    badge, b = svc.badge(device_id)
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user()
    (row,) = svc.http.get("/api/v1/alerts?state=all", headers=ops).json()
    return badge, b, alert_id, ops, row["id"]


def test_cancel_pin_cancels(svc: Running) -> None:
    badge, b, alert_id, ops, pk = _raise(svc, "badge-c1")
    badge.cancel_alert(alert_id, b.cancel_pin)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)

    alert = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    assert alert["state"] == "cancelled" and alert["duress"] is False
    assert alert["cancelled_at"] is not None
    assert svc.http.get("/api/v1/alerts", headers=ops).json() == []


def test_wrong_pin_is_rejected_and_alert_goes_on(svc: Running) -> None:
    badge, _, alert_id, ops, pk = _raise(svc, "badge-c2")
    badge.cancel_alert(alert_id, "000000")
    badge.wait_for("cancel_rejected", alert_id=alert_id, timeout=10)

    alert = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    assert alert["state"] == "raised"
    assert "cancel_rejected" in [e["kind"] for e in alert["timeline"]]
    assert [a["id"] for a in svc.http.get("/api/v1/alerts", headers=ops).json()] == [pk]


def test_duress_pin_looks_cancelled_to_the_device_only(svc: Running) -> None:
    badge, b, alert_id, ops, pk = _raise(svc, "badge-c3")
    badge.cancel_alert(alert_id, b.duress_pin)
    cmd = badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    assert set(cmd.payload) == {"v", "ts", "type", "alert_id"}

    alert = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    assert alert["duress"] is True
    assert alert["state"] == "raised"
    assert alert["priority"] == 0
    active = svc.http.get("/api/v1/alerts", headers=ops).json()
    assert [a["id"] for a in active] == [pk]

    # Taking charge and resolving a duress alert must not tell the device anything.
    assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
    assert (
        svc.http.post(
            f"/api/v1/alerts/{pk}/resolve", headers=ops, json={"outcome": "genuine_emergency"}
        ).status_code
        == 200
    )
    # A later ordinary command proves the device's command stream is flowing.
    other = badge.raise_alert(type="test")
    badge.wait_for("alert_received", alert_id=other, timeout=10)
    seen = [(c.type, c.payload.get("alert_id")) for c in badge.commands]
    assert ("alert_acknowledged", alert_id) not in seen
    assert ("alert_closed", alert_id) not in seen


def test_cancel_of_unknown_alert_is_rejected(svc: Running) -> None:
    badge, b = svc.badge("badge-c4")
    badge.cancel_alert("no-such-alert-1", b.cancel_pin)
    cmd = badge.wait_for("rejected", ref="alert/cancel", timeout=10)
    assert "unknown alert" in cmd.payload["reason"]


def test_after_resolution_duress_and_cancel_answer_alike(svc: Running) -> None:
    badge, b, alert_id, ops, pk = _raise(svc, "badge-c5")
    svc.http.post(f"/api/v1/alerts/{pk}/resolve", headers=ops, json={"outcome": "false_alarm"})
    badge.wait_for("alert_closed", alert_id=alert_id, timeout=10)

    badge.cancel_alert(alert_id, b.cancel_pin)
    first = badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    badge.cancel_alert(alert_id, b.duress_pin)
    wait_until(
        lambda: len([c for c in badge.commands if c.type == "alert_cancelled"]) == 2,
        timeout=10,
        what="the answer to the duress PIN",
    )
    second = [c for c in badge.commands if c.type == "alert_cancelled"][1]
    assert set(first.payload) == set(second.payload)

    # The closed alert cannot be reopened, so the duress PIN raises a new duress alert, once,
    # however many copies of the message arrive.
    badge.cancel_alert(alert_id, b.duress_pin)
    wait_until(
        lambda: len([c for c in badge.commands if c.type == "alert_cancelled"]) == 3,
        timeout=10,
        what="the answer to the repeated duress PIN",
    )
    active = svc.http.get("/api/v1/alerts", headers=ops).json()
    assert [(a["type"], a["duress"], a["priority"]) for a in active] == [("duress", True, 0)]


def test_cancel_that_overtakes_its_alert_is_applied_when_the_alert_arrives(
    svc: Running,
) -> None:
    # With replicas sharing device traffic, a duress cancel can reach the store first.
    badge, b = svc.badge("badge-c6")
    ops = svc.user()
    alert_id = "overtaken-alert-1"
    now = int(time.time() * 1000)
    badge.publish_raw(
        "alert/cancel", json.dumps({"v": 1, "ts": now, "alert_id": alert_id, "pin": b.duress_pin})
    )
    wait_until(lambda: held(svc) == 1, timeout=10, what="the cancel to be held")
    assert svc.http.get("/api/v1/alerts", headers=ops).json() == []
    badge.publish_raw(
        "alert", json.dumps({"v": 1, "ts": now - 1000, "id": alert_id, "type": "red"})
    )
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    (alert,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    assert alert["duress"] is True and alert["state"] == "raised"
    assert not [c for c in badge.commands if c.type == "rejected"]
