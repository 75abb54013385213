"""The fleet map's positions (GET /api/v1/fleet/positions) keep to the privacy rules and to the
user's organisation or team; an alert's detail says why it has no position."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from device_sim import messages
from monitor.alerts.models import Alert
from monitor.users.models import Role
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until

NORTH, SOUTH = "North Council", "South Trust"


def _markers(svc: Running, who: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = svc.http.get("/api/v1/fleet/positions", headers=who)
    assert r.status_code == 200, r.text
    return {m["worker_name"]: m for m in r.json()}


def _alert_pk(svc: Running, device_alert_id: str) -> int:
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert_id))
    assert pk is not None
    return pk


def test_only_workers_on_a_visit_or_an_alert_and_only_in_scope(svc: Running) -> None:
    visiting, _ = svc.badge("fm-visit", org=NORTH, team="Housing", name="Vera Visit")
    alerting, _ = svc.badge("fm-alert", org=NORTH, team="Nursing", name="Alan Alert")
    idle, _ = svc.badge("fm-idle", org=NORTH, team="Housing", name="Ida Idle")
    south, _ = svc.badge("fm-south", org=SOUTH, team="Housing", name="Sam South")

    visiting.send_location(51.5101, -0.1201, acc=8.0)
    visiting.start_visit(duration_s=1800, note="12 Elm St")
    alerting.send_location(51.5202, -0.1302)
    alerting.start_visit(duration_s=1800, note="Ward 4")  # another team's visit: not the team's
    alert_id = alerting.raise_alert(type="red")
    idle.send_location(
        51.5303, -0.1403
    )  # reports a position, but is neither on a visit nor alerting
    idle.heartbeat(batt=80)
    south.raise_alert(type="man_down")
    alerting.wait_for("alert_received", alert_id=alert_id, timeout=10)

    centre = svc.user("centre-op", Role.OPERATOR)
    north = svc.user("north-lead", Role.SUPERVISOR, org=NORTH)
    housing = svc.user("housing-lead", Role.SUPERVISOR, org=NORTH, team="Housing")

    wait_until(lambda: len(_markers(svc, centre)) == 3, timeout=10, what="three markers")
    seen = _markers(svc, centre)
    # An operator sees the position of a worker on a visit or an alert, and nobody else's.
    assert set(seen) == {"Vera Visit", "Alan Alert", "Sam South"}
    vera, alan = seen["Vera Visit"], seen["Alan Alert"]
    assert (vera["lat"], vera["lon"], vera["acc"]) == (51.5101, -0.1201, 8.0)
    assert vera["status"] == "visit" and vera["visit"]["note"] == "12 Elm St"
    assert vera["alert"] is None and vera["fix_at"] is not None
    assert alan["status"] == "alert" and (alan["lat"], alan["lon"]) == (51.5202, -0.1302)
    assert alan["alert"]["id"] == _alert_pk(svc, alert_id) and alan["alert"]["type"] == "red"
    # One marker for the worker on a visit who raised an alert: the alert's.
    assert alan["open_alerts"] == 1 and alan["visit"]["note"] == "Ward 4"
    # Most pressing first: the alerts (the panic before the man down), then the visit.
    assert [
        m["worker_name"] for m in svc.http.get("/api/v1/fleet/positions", headers=centre).json()
    ] == [
        "Alan Alert",
        "Sam South",
        "Vera Visit",
    ]
    # Taken, the panic goes below the man down nobody has taken, as in the queue.
    r = svc.http.post(f"/api/v1/alerts/{_alert_pk(svc, alert_id)}/acknowledge", headers=centre)
    assert r.status_code == 200, r.text
    assert [
        m["worker_name"] for m in svc.http.get("/api/v1/fleet/positions", headers=centre).json()
    ] == ["Sam South", "Alan Alert", "Vera Visit"]

    assert set(_markers(svc, north)) == {"Vera Visit", "Alan Alert"}
    assert set(_markers(svc, housing)) == {"Vera Visit"}
    assert svc.http.get("/api/v1/fleet/positions").status_code == 401


def test_a_worker_leaves_the_map_when_the_alert_is_over(svc: Running) -> None:
    badge, _ = svc.badge("fm-over", name="Olga Over")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user("op-over", Role.OPERATOR)
    assert set(_markers(svc, ops)) == {"Olga Over"}
    pk = _alert_pk(svc, alert_id)
    r = svc.http.post(
        f"/api/v1/alerts/{pk}/resolve", headers=ops, json={"outcome": "false_alarm", "note": "ok"}
    )
    assert r.status_code == 200, r.text
    assert _markers(svc, ops) == {}


def test_the_detail_says_why_there_is_no_position(svc: Running) -> None:
    badge, _ = svc.badge("fm-why", name="Pia Position")
    badge.send_location(51.5, -0.12, acc=5.0)
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user("op-why", Role.OPERATOR)
    lead = svc.user("lead-why", Role.SUPERVISOR)
    pk = _alert_pk(svc, alert_id)

    live = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    assert live["position_missing"] is None
    assert live["position"]["lat"] == 51.5 and live["position"]["at"] is not None

    r = svc.http.post(
        f"/api/v1/alerts/{pk}/resolve", headers=ops, json={"outcome": "false_alarm", "note": "ok"}
    )
    assert r.status_code == 200, r.text
    over = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    assert over["position"] is None and over["lat"] is None
    assert over["position_missing"] == "withheld"
    # A supervisor sees it (VIGIL_SUPERVISOR_POSITIONS=always, the default).
    kept = svc.http.get(f"/api/v1/alerts/{pk}", headers=lead).json()
    assert kept["position_missing"] is None and kept["position"]["lon"] == -0.12

    # A device that never reported a position: said so, not "withheld".
    blind, _ = svc.badge("fm-blind", name="Ben Blind")
    # It has no fix to give: not even in answer to the service's `locate` after the alert.
    blind.send_location = lambda *args, **kwargs: None  # type: ignore[method-assign]
    blind_id = str(uuid.uuid4())
    body = messages.alert(blind_id, "red", trigger="button", position=None, batt=50, note=None)
    blind._send_alert(blind_id, body)
    blind.wait_for("alert_received", alert_id=blind_id, timeout=10)
    unknown = svc.http.get(f"/api/v1/alerts/{_alert_pk(svc, blind_id)}", headers=ops).json()
    assert unknown["position"] is None and unknown["position_missing"] == "not_reported"
