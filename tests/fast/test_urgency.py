"""Urgency the console cannot miss, at the service: a duress on a taken alert raises it again,
an operator's silence goes in the timeline, test alerts close themselves, the order of
priorities, and what the console is told to draw them with."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from escalation.models import Escalation
from monitor.alerts import chain, service
from monitor.alerts.states import (
    AlertState,
    AlertType,
    IllegalTransition,
    check_transition,
    priority,
)
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until


def _kinds(svc: Running, pk: int, ops: dict[str, str]) -> list[str]:
    detail = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    return [e["kind"] for e in detail["timeline"]]


def _raise(svc: Running, device_id: str, type_: str = "red"):  # type: ignore[no-untyped-def]
    badge, b = svc.badge(device_id)
    alert_id = badge.raise_alert(type=type_)
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user("op-" + device_id)
    pk = next(
        a["id"]
        for a in svc.http.get("/api/v1/alerts?state=all", headers=ops).json()
        if a["device_alert_id"] == alert_id
    )
    return badge, b, alert_id, ops, pk


def test_priorities_put_duress_then_panic_and_man_down_then_overdue_first() -> None:
    order = [
        priority(AlertType.RED, True),
        priority(AlertType.RED, False),
        priority(AlertType.VISIT_OVERDUE, False),
        priority(AlertType.NO_MOTION, False),
        priority(AlertType.DEVICE_OFFLINE, False),
        priority(AlertType.TEST, False),
    ]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert priority(AlertType.MAN_DOWN, False) == priority(AlertType.RED, False)
    assert priority(AlertType.TEST, True) == priority(AlertType.DURESS, False) == 0


def test_duress_on_a_taken_alert_raises_it_again_for_everyone(svc: Running) -> None:
    badge, b, alert_id, ops, pk = _raise(svc, "badge-u1")
    assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
    badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)

    badge.cancel_alert(alert_id, b.duress_pin)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    alert = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    # Unanswered again, at the top, with nobody shown in charge: the consoles sound for it.
    assert (alert["state"], alert["duress"], alert["priority"]) == ("raised", True, 0)
    assert alert["acknowledged_by"] is None and alert["acknowledged_at"] is None
    again = [e for e in alert["timeline"] if e["kind"] == "raised_again"]
    assert len(again) == 1 and again[0]["data"]["taken_by"] == "user:op-badge-u1"
    assert "op-badge-u1 took charge" in again[0]["text"]
    kinds = [e["kind"] for e in alert["timeline"]]
    assert kinds.index("duress") < kinds.index("raised_again")
    # Escalation runs its duress burst for it.
    wait_until(lambda: "escalation_duress" in _kinds(svc, pk, ops), timeout=10)
    with svc.store.session() as db:
        esc = db.scalar(select(Escalation).where(Escalation.alert_id == pk))
        assert esc is not None and esc.duress and esc.state == "running"

    # Someone takes charge of the duress; the device, under duress, hears nothing of it.
    before = len(badge.commands)
    r = svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=svc.user("op-two"))
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "user:op-two"
    # A second duress PIN changes nothing more.
    badge.cancel_alert(alert_id, b.duress_pin)
    wait_until(lambda: len(badge.commands) > before, timeout=10)
    assert [c.type for c in badge.commands[before:]] == ["alert_cancelled"]
    assert svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()["state"] == "acknowledged"
    assert _kinds(svc, pk, ops).count("raised_again") == 1
    with svc.store.session() as db:
        assert chain.verify(db).broken is None


def test_only_duress_puts_a_taken_alert_back_in_the_queue(svc: Running) -> None:
    """The state machine's acknowledged -> raised is the duress PIN's alone: no other caller
    can take an alert away from the person who took it."""
    with pytest.raises(IllegalTransition, match="unless the worker is under duress"):
        check_transition(AlertState.ACKNOWLEDGED, AlertState.RAISED, duress=False)
    check_transition(AlertState.ACKNOWLEDGED, AlertState.RAISED, duress=True)
    with pytest.raises(IllegalTransition):  # the other edges are as they were, duress or not
        check_transition(AlertState.RESOLVED, AlertState.RAISED, duress=True)

    _, _, _, ops, pk = _raise(svc, "badge-u5")
    assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
    with pytest.raises(IllegalTransition), svc.store.begin() as db:
        alert = service.get(db, pk, for_update=True)
        service.transition(db, alert, AlertState.RAISED, actor="system", text="Raised again")
    alert_out = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    assert (alert_out["state"], alert_out["acknowledged_by"]) == (
        "acknowledged",
        "user:op-badge-u5",
    )
    assert "raised_again" not in _kinds(svc, pk, ops)


def test_duress_on_an_unanswered_alert_is_not_raised_again(svc: Running) -> None:
    badge, b, alert_id, ops, pk = _raise(svc, "badge-u2")
    badge.cancel_alert(alert_id, b.duress_pin)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    assert "raised_again" not in _kinds(svc, pk, ops)
    assert svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()["state"] == "raised"


def test_silencing_an_alert_is_written_to_its_timeline(svc: Running) -> None:
    _, _, _, ops, pk = _raise(svc, "badge-u3")
    r = svc.http.post(f"/api/v1/alerts/{pk}/silence", headers=ops, json={"minutes": 2})
    assert r.status_code == 201, r.text
    detail = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()
    (entry,) = [e for e in detail["timeline"] if e["kind"] == "sound_silenced"]
    assert entry["actor"] == "user:op-badge-u3" and entry["data"] == {"minutes": 2}
    assert entry["text"] == "Alarm sound silenced on op-badge-u3's console for 2 min"
    # Bounded, and only for what sounds: not an alert someone has taken.
    for minutes in (0, 61, "x"):
        r = svc.http.post(f"/api/v1/alerts/{pk}/silence", headers=ops, json={"minutes": minutes})
        assert r.status_code == 422
    svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops)
    r = svc.http.post(f"/api/v1/alerts/{pk}/silence", headers=ops, json={"minutes": 2})
    assert r.status_code == 409 and "not sounding" in r.json()["detail"]
    assert (
        svc.http.post("/api/v1/alerts/999999/silence", headers=ops, json={"minutes": 2}).status_code
        == 404
    )
    with svc.store.session() as db:
        assert chain.verify(db).broken is None


def test_a_test_alert_closes_itself_and_nothing_else_does(svc: Running) -> None:
    # 0.05 min: three seconds, for the test; ten minutes unless set.
    svc.restart(test_alert_close_min=0.05)
    quiet, _, quiet_id, ops, quiet_pk = _raise(svc, "badge-u4", "test")
    _, _, _, _, red_pk = _raise(svc, "badge-u5", "red")
    _, _, _, _, taken_pk = _raise(svc, "badge-u6", "test")
    svc.http.post(f"/api/v1/alerts/{taken_pk}/acknowledge", headers=ops)
    duress_badge, db_, duress_id, _, duress_pk = _raise(svc, "badge-u7", "test")
    duress_badge.cancel_alert(duress_id, db_.duress_pin)
    duress_badge.wait_for("alert_cancelled", alert_id=duress_id, timeout=10)

    quiet.wait_for("alert_closed", alert_id=quiet_id, timeout=15)
    alert = svc.http.get(f"/api/v1/alerts/{quiet_pk}", headers=ops).json()
    assert (alert["state"], alert["outcome"], alert["resolved_by"]) == (
        "resolved",
        "test",
        "system",
    )
    (entry,) = [e for e in alert["timeline"] if e["kind"] == "resolved"]
    assert entry["actor"] == "system"
    assert "a test alert nobody took charge of within 0.05 min" in entry["text"]
    # A panic, a test someone has taken, a test turned duress: left alone.
    states = {
        a["id"]: a["state"] for a in svc.http.get("/api/v1/alerts?state=all", headers=ops).json()
    }
    assert states[red_pk] == "raised"
    assert states[taken_pk] == "acknowledged"
    assert states[duress_pk] == "raised"


def test_test_alerts_never_close_with_zero(svc: Running) -> None:
    svc.restart(test_alert_close_min=0)
    _, _, _, ops, pk = _raise(svc, "badge-u8", "test")
    svc.scheduler.tick()
    assert svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()["state"] == "raised"


def test_the_console_is_told_its_alarm_settings(svc: Running) -> None:
    svc.restart(alarm_repeat_s=7, ack_targets="15:80,45:99")
    meta = svc.http.get("/api/v1/console/meta", headers=svc.user()).json()
    assert meta["alarm_repeat_s"] == 7
    assert meta["ack_target_s"] == [15, 45]
    assert meta["quiet_types"] == ["test"]
    # Back to raised is the worker's duress PIN, never a console's choice.
    assert meta["transitions"]["acknowledged"] == ["resolved", "cancelled"]
