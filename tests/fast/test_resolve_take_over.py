"""Resolving an alert another person has taken charge of: refused unless the resolver says
they take it over, and the take-over goes in the timeline."""

from __future__ import annotations

from monitor.users.models import Role
from tests.fast.handlers import Handlers as Running


def test_resolving_someone_elses_alert_needs_take_over(svc: Running) -> None:
    badge, _ = svc.badge("badge-held")
    device_alert = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    alice = svc.user("alice")
    lead = svc.user("lead", Role.SUPERVISOR)
    (row,) = svc.http.get("/api/v1/alerts", headers=alice).json()
    url = f"/api/v1/alerts/{row['id']}"
    assert svc.http.post(f"{url}/acknowledge", headers=alice).status_code == 200

    body = {"outcome": "worker_safe", "note": "Spoke to the worker"}
    refused = svc.http.post(f"{url}/resolve", headers=lead, json=body)
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("alice has taken charge of this alert")
    assert svc.http.get(url, headers=lead).json()["state"] == "acknowledged"

    taken = svc.http.post(f"{url}/resolve", headers=lead, json={**body, "take_over": True})
    assert taken.status_code == 200 and taken.json()["resolved_by"] == "user:lead"
    entries = [
        (e["kind"], e["actor"], e["text"])
        for e in svc.http.get(url, headers=lead).json()["timeline"]
    ]
    assert ("taken_over", "user:lead", "Taken over from alice to resolve") in entries
    kinds = [k for k, _, _ in entries]
    assert kinds.index("taken_over") < kinds.index("resolved")


def test_the_holder_and_an_untaken_alert_resolve_without_take_over(svc: Running) -> None:
    badge, _ = svc.badge("badge-own")
    for _ in range(2):
        badge.wait_for("alert_received", alert_id=badge.raise_alert(type="red"), timeout=10)
    alice = svc.user("alice")
    bob = svc.user("bob")
    first, second = svc.http.get("/api/v1/alerts", headers=alice).json()
    svc.http.post(f"/api/v1/alerts/{first['id']}/acknowledge", headers=alice)
    body = {"outcome": "false_alarm"}
    # Her own alert, and one nobody has taken yet.
    for pk, who in ((first["id"], alice), (second["id"], bob)):
        r = svc.http.post(f"/api/v1/alerts/{pk}/resolve", headers=who, json=body)
        assert r.status_code == 200, r.text
        timeline = svc.http.get(f"/api/v1/alerts/{pk}", headers=who).json()["timeline"]
        assert "taken_over" not in [e["kind"] for e in timeline]
