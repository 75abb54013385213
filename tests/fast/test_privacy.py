"""Privacy: location history outside alerts and visits is deleted after the retention time,
and positions are shown to operators only while an alert or visit is open."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.alerts.models import Alert
from monitor.devices.models import LocationFix
from monitor.privacy import positions, retention
from monitor.users.models import Role
from monitor.visits.models import Visit
from tests.escalation_support import load
from tests.fast.handlers import FastDevice as SimDevice
from tests.fast.handlers import Handlers as Running
from tests.support import add_badge, bearer, console_socket, wait_until

DEFAULT_POLICY = Path(__file__).parents[2] / "escalation" / "default_policy.yaml"
NOW = datetime.now(UTC)
DAY = timedelta(days=1)


def _fix(device_id: str, at: datetime, received: datetime | None = None) -> LocationFix:
    return LocationFix(
        device_id=device_id, device_ts=at, received_at=received or at, lat=51.5, lon=-0.12
    )


def _history(svc: Running) -> dict[str, int]:
    """Fixes of every kind the retention rule tells apart, by name to id."""
    b = add_badge(svc.store, "privacy-badge")
    # An alert still open keeps every fix of its device since: it gets a device of its own.
    other = add_badge(svc.store, "privacy-other", name="Other Worker")
    with svc.store.begin() as db:
        old_alert = Alert(
            device_id=b.device_id,
            type="red",
            priority=1,
            state="resolved",
            raised_at=NOW - 9 * DAY,
            resolved_at=NOW - 9 * DAY + timedelta(hours=1),
        )
        open_alert = Alert(
            device_id=other.device_id,
            type="man_down",
            priority=2,
            state="raised",
            raised_at=NOW - 20 * DAY,
        )
        visit = Visit(
            device_id=b.device_id,
            device_visit_id="v-old",
            state="ended",
            started_at=NOW - 12 * DAY,
            duration_s=3600,
            due_at=NOW - 12 * DAY + timedelta(hours=1),
            ended_at=NOW - 12 * DAY + timedelta(minutes=50),
        )
        db.add_all([old_alert, open_alert, visit])
        fixes = {
            "expired": _fix(b.device_id, NOW - 8 * DAY),
            "expired, received late": _fix(b.device_id, NOW - 30 * DAY, NOW - 8 * DAY),
            "recent": _fix(b.device_id, NOW - 6 * DAY),
            "before the alert's trail": _fix(b.device_id, NOW - 9 * DAY - timedelta(minutes=20)),
            "the alert's trail": _fix(b.device_id, NOW - 9 * DAY - timedelta(minutes=10)),
            "during the alert": _fix(b.device_id, NOW - 9 * DAY + timedelta(minutes=30)),
            "after the alert": _fix(b.device_id, NOW - 9 * DAY + timedelta(hours=2)),
            "during the visit": _fix(b.device_id, NOW - 12 * DAY + timedelta(minutes=10)),
            "after the visit": _fix(b.device_id, NOW - 12 * DAY + timedelta(hours=2)),
            "during the open alert": _fix(other.device_id, NOW - 15 * DAY),
            "another device's, expired": _fix(other.device_id, NOW - 25 * DAY),
        }
        # Stored in the order they were received, as the service stores them.
        db.add_all(sorted(fixes.values(), key=lambda f: f.received_at))
        db.flush()
        return {name: f.id for name, f in fixes.items()}


DELETED = {
    "expired",
    "another device's, expired",
    "expired, received late",
    "before the alert's trail",
    "after the alert",
    "after the visit",
}


def _left(svc: Running, fixes: dict[str, int]) -> set[str]:
    with svc.store.session() as db:
        ids = set(db.scalars(select(LocationFix.id).where(LocationFix.id.in_(fixes.values()))))
    return {name for name, pk in fixes.items() if pk in ids}


def test_the_scheduler_deletes_expired_history_and_keeps_alerts_and_visits(
    svc: Running,
) -> None:
    fixes = _history(svc)
    svc.restart(location_purge_every_s=0.2)
    kept = set(fixes) - DELETED
    wait_until(lambda: _left(svc, fixes) == kept, timeout=10, what="the expired fixes to go")


def test_kept_history_is_not_walked_again(svc: Running) -> None:
    """The scheduler starts each purge where the last one settled everything before it."""
    svc.stop()
    fixes = _history(svc)
    keep = timedelta(days=7)
    with svc.store.session() as db:
        first = list(retention.expired(db, NOW, keep))
        assert {pk for b in first for pk in b.doomed} == {fixes[n] for n in DELETED}
        settled = first[-1].settled
        assert list(retention.expired(db, NOW, keep, after=settled)) == []
    # Two days on, the fix that was recent has expired: it alone is found.
    with svc.store.session() as db:
        (later,) = retention.expired(db, NOW + 2 * DAY, keep, after=settled)
        assert later.doomed == [fixes["recent"]]


def test_the_purge_command(svc: Running, vigil: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    svc.stop()  # the command alone, not the scheduler as well
    fixes = _history(svc)
    monkeypatch.setenv("VIGIL_DATABASE_URL", svc.settings.database_url)
    assert (
        f"would delete {len(DELETED)} location fixes"
        in vigil("locations", "purge", "--dry-run").output
    )
    assert _left(svc, fixes) == set(fixes)
    assert f"deleted {len(DELETED)} location fixes" in vigil("locations", "purge").output
    assert _left(svc, fixes) == set(fixes) - DELETED
    monkeypatch.setenv("VIGIL_LOCATION_RETENTION_DAYS", "0")
    assert "kept for ever" in vigil("locations", "purge", ok=False).output


def _resolved_alert(svc: Running) -> tuple[int, int, SimDevice]:
    """An alert resolved, and another still raised: their ids, and the first one's badge."""
    ids, badges = [], []
    for prefix in ("pos-done", "pos-open"):
        badge, _ = svc.badge(prefix)
        badges.append(badge)
        device_alert = badge.raise_alert(type="red")
        badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
        with svc.store.session() as db:
            ids.append(db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert)))
    sup = svc.user("pos-resolver", Role.SUPERVISOR)
    r = svc.http.post(f"/api/v1/alerts/{ids[0]}/resolve", json={"outcome": "test"}, headers=sup)
    assert r.status_code == 200
    return ids[0], ids[1], badges[0]


def _positions(svc: Running, who: dict[str, str], alert_id: int) -> dict[str, Any]:
    detail = svc.http.get(f"/api/v1/alerts/{alert_id}", headers=who).json()
    listed = {a["id"]: a for a in svc.http.get("/api/v1/alerts?state=all", headers=who).json()}
    by_kind = {e["kind"]: e["data"] for e in detail["timeline"]}
    return {
        "detail": detail["lat"],
        "list": listed[alert_id]["lat"],
        "trail": len(detail["trail"]),
        "timeline": "loc" in by_kind["raised"] or "fixes" in by_kind.get("positions", {}),
    }


def test_operators_see_positions_only_while_the_alert_is_open(svc: Running) -> None:
    done, still_open, badge = _resolved_alert(svc)
    op = svc.user("pos-op", Role.OPERATOR)
    sup = svc.user("pos-sup", Role.SUPERVISOR)
    shown = _positions(svc, op, still_open)
    assert shown["detail"] is not None and shown["list"] is not None and shown["timeline"]
    assert shown["trail"] > 0
    assert _positions(svc, op, done) == {
        "detail": None,
        "list": None,
        "trail": 0,
        "timeline": False,
    }
    kept = _positions(svc, sup, done)
    assert kept["detail"] is not None and kept["list"] is not None and kept["timeline"]
    with svc.store.session() as db:
        stored = db.get(Alert, done)
        assert stored is not None and stored.lat is not None  # hidden, not deleted

    # Where the worker went after the alert is not part of it.
    def fixes_stored() -> int:
        with svc.store.session() as db:
            mine = LocationFix.device_id == badge.device_id
            return db.scalar(select(func.count()).select_from(LocationFix).where(mine)) or 0

    before = svc.http.get(f"/api/v1/alerts/{done}", headers=sup).json()
    stored = fixes_stored()
    badge.send_location()
    wait_until(lambda: fixes_stored() > stored, timeout=10, what="a fix after the alert")
    after = svc.http.get(f"/api/v1/alerts/{done}", headers=sup).json()
    assert after["trail"] == before["trail"]

    # Supervisors too, where the service is configured so.
    svc.restart(supervisor_positions="active")
    assert _positions(svc, svc.login("pos-sup"), done)["detail"] is None


def test_visits_and_devices_show_positions_while_open(svc: Running) -> None:
    busy, busy_badge = svc.badge("pos-visit")
    idle, idle_badge = svc.badge("pos-idle")
    busy.start_visit(duration_s=3600, note="flat 3")
    idle_visit = idle.start_visit(duration_s=3600, note="flat 9")
    for d in (busy, idle):
        d.send_location()
    op = svc.user("visit-op", Role.OPERATOR)
    wait_until(
        lambda: len(svc.http.get("/api/v1/visits", headers=op).json()) == 2,
        timeout=10,
        what="two open visits",
    )
    idle.end_visit(idle_visit)
    wait_until(
        lambda: len(svc.http.get("/api/v1/visits", headers=op).json()) == 1,
        timeout=10,
        what="the idle badge's visit to end",
    )
    visits = {
        v["device_id"]: v for v in svc.http.get("/api/v1/visits?state=all", headers=op).json()
    }
    assert visits[busy_badge.device_id]["lat"] is not None
    assert visits[idle_badge.device_id]["lat"] is None

    def last_fixes(who: dict[str, str]) -> dict[str, Any]:
        devices = svc.http.get("/api/v1/devices", headers=who).json()
        return {d["id"]: d["last_lat"] for d in devices}

    sup = svc.user("dev-sup", Role.SUPERVISOR)
    wait_until(
        lambda: all(v is not None for v in last_fixes(sup).values()),
        timeout=10,
        what="both devices' last fixes",
    )
    svc.restart(supervisor_positions="active")
    shown = last_fixes(svc.login("dev-sup"))
    assert shown[busy_badge.device_id] is not None and shown[idle_badge.device_id] is None


def test_the_console_hears_no_position_of_an_alert_that_is_over(svc: Running) -> None:
    badge, _ = svc.badge("pos-ws")
    headers = svc.user("ws-pos", Role.OPERATOR)
    with console_socket(svc.http, bearer(headers)) as ws:
        assert json.loads(ws.receive_text())["kind"] == "snapshot"
        badge.raise_alert(type="red")
        while True:
            msg = json.loads(ws.receive_text())
            if msg.get("kind") == "alert.raised":
                assert msg["alert"]["lat"] is not None
                alert_id = msg["alert"]["id"]
                break
        body = {"outcome": "false_alarm"}
        svc.http.post(f"/api/v1/alerts/{alert_id}/resolve", json=body, headers=headers)
        while True:
            msg = json.loads(ws.receive_text())
            if msg.get("kind") == "alert.resolved":
                assert msg["alert"]["lat"] is None and msg["alert"]["lon"] is None
                break


def test_messages_sent_say_where_and_are_withheld_with_the_position(svc: Running) -> None:
    load(svc, DEFAULT_POLICY.read_text())
    badge, _ = svc.badge("pos-sms")  # a Housing worker: the default policy texts the backup
    device_alert = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert))
    op = svc.user("sms-op", Role.OPERATOR)
    url = f"/api/v1/escalation/alerts/{pk}/notifications"
    (sms,) = wait_until(
        lambda: [n for n in svc.http.get(url, headers=op).json() if n["channel"] == "sms"],
        timeout=10,
        what="the backup's SMS",
    )
    assert sms["status"] == "outbox" and sms["body"] != positions.WITHHELD
    svc.http.post(f"/api/v1/alerts/{pk}/resolve", json={"outcome": "test"}, headers=op)

    sup = svc.user("sms-sup", Role.SUPERVISOR)
    for who, shown in ((op, False), (sup, True)):
        (after,) = [n for n in svc.http.get(url, headers=who).json() if n["channel"] == "sms"]
        assert (after["body"] == sms["body"]) is shown
        assert (after["body"] == positions.WITHHELD) is not shown
        outbox = svc.http.get("/api/v1/escalation/outbox", headers=who).json()
        assert [n["body"] for n in outbox if n["id"] == sms["id"]] == [after["body"]]
        timeline = svc.http.get(f"/api/v1/alerts/{pk}", headers=who).json()["timeline"]
        (entry,) = [e for e in timeline if e["data"].get("notification") == sms["id"]]
        assert ("body" in entry["data"]) is shown and sms["body"] not in entry["text"]
