"""Timed visits: start, extend, check in, end (with PINs), visit_due, and the overdue alert."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlalchemy import select, update

from monitor.alerts.models import Alert
from monitor.ingest.models import WaitingMessage
from monitor.orgs.models import Organisation
from monitor.users.models import Role
from monitor.visits.models import Visit, VisitEvent
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until


def held(svc: Running) -> int:
    with svc.store.session() as db:
        return len(db.scalars(select(WaitingMessage)).all())


def _visit(device, visit_id: str, action: str, ago_s: float = 0, **fields) -> None:  # type: ignore[no-untyped-def]
    msg = {
        "v": 1,
        "ts": int((time.time() - ago_s) * 1000),
        "id": visit_id,
        "action": action,
        **fields,
    }
    device.publish_raw("visit", json.dumps(msg), qos=1)


def test_start_extend_checkin_end(svc: Running) -> None:
    badge, _ = svc.badge("badge-v1")
    _visit(
        badge,
        "visit-1",
        "start",
        duration_s=1800,
        note="Home visit, 12 Elm St, flat 3",
        loc={"lat": 51.5, "lon": -0.12, "acc": 8},
    )
    started = badge.wait_for("visit_started", visit_id="visit-1", timeout=10)
    due1 = started.payload["due_ts"]
    assert abs(due1 - (time.time() + 1800) * 1000) < 5000

    _visit(badge, "visit-1", "extend", duration_s=3600)
    extended = wait_until(
        lambda: [
            c
            for c in badge.commands
            if c.type == "visit_started" and c.payload["due_ts"] > due1 + 1_000_000
        ],
        timeout=10,
        what="visit_started for the extension",
    )
    assert abs(extended[0].payload["due_ts"] - (time.time() + 3600) * 1000) < 5000

    ops = svc.user()
    (open_visit,) = svc.http.get("/api/v1/visits", headers=ops).json()
    assert open_visit["note"] == "Home visit, 12 Elm St, flat 3"
    assert open_visit["duration_s"] == 3600

    _visit(badge, "visit-1", "end")
    badge.wait_for("visit_ended", visit_id="visit-1", timeout=10)
    assert svc.http.get("/api/v1/visits", headers=ops).json() == []
    (ended,) = svc.http.get("/api/v1/visits?state=all", headers=ops).json()
    assert ended["state"] == "ended" and ended["end_reason"] == "ended"
    # The visit's own timeline, in the order things happened.
    with svc.store.session() as db:
        events = db.scalars(select(VisitEvent).order_by(VisitEvent.at, VisitEvent.id))
        assert [(e.kind, e.text) for e in events] == [
            ("started", "Started for 30 min"),
            ("extended", "Extended for 60 min"),
            ("ended", "Ended"),
        ]


def test_visit_due_then_overdue_alert(svc: Running) -> None:
    badge, _ = svc.badge("badge-v2")
    # Started 58 s ago on the device for 60 s: due in about 2 s.
    _visit(
        badge,
        "visit-2",
        "start",
        ago_s=58,
        duration_s=60,
        note="Flat 9, Oak Rd",
        memo="clip-9",
        loc={"lat": 51.51, "lon": -0.13},
    )
    badge.wait_for("visit_started", visit_id="visit-2", timeout=10)
    badge.wait_for("visit_due", visit_id="visit-2", timeout=15)

    def overdue() -> Alert | None:
        with svc.store.session() as db:
            return db.scalar(select(Alert).where(Alert.type == "visit_overdue"))

    alert = wait_until(overdue, timeout=20, what="visit_overdue alert")
    with svc.store.session() as db:
        visit = db.scalar(select(Visit))
        assert visit is not None and visit.due_notified_at is not None
        # Not before the grace period that follows visit_due.
        assert alert.raised_at >= visit.due_at + timedelta(seconds=svc.settings.visit_grace_s)
    assert alert.note == "Flat 9, Oak Rd"
    assert (alert.lat, alert.lon) == (51.51, -0.13)
    ops = svc.user()
    detail = svc.http.get(f"/api/v1/alerts/{alert.id}", headers=ops).json()
    assert detail["timeline"][0]["data"]["memo"] == "clip-9"
    events = detail["visit"]["events"]
    assert [e["kind"] for e in events] == ["started", "due", "overdue"]
    assert events[2]["actor"] == "system" and events[2]["data"] == {"alert_id": alert.id}
    time.sleep(1.0)
    with svc.store.session() as db:
        assert len(db.scalars(select(Alert)).all()) == 1  # raised once only


def test_overdue_while_service_down_fires_at_restart(svc: Running) -> None:
    badge, _ = svc.badge("badge-v3")
    _visit(badge, "visit-3", "start", ago_s=57, duration_s=60, note="Late visit")
    badge.wait_for("visit_started", visit_id="visit-3", timeout=10)
    svc.stop()
    time.sleep(svc.settings.visit_grace_s + 5)
    with svc.store.session() as db:
        assert db.scalars(select(Alert)).all() == []
    svc.restart()

    def overdue() -> Alert | None:
        with svc.store.session() as db:
            return db.scalar(select(Alert).where(Alert.type == "visit_overdue"))

    alert = wait_until(overdue, timeout=10, what="visit_overdue alert after restart")
    assert alert.note == "Late visit"
    badge.wait_for("visit_due", visit_id="visit-3", timeout=15)


def test_checkin_restarts_the_timer(svc: Running) -> None:
    badge, _ = svc.badge("badge-v4")
    # Started 57 s ago for 60 s: its first deadline is 3 s away.
    _visit(badge, "visit-4", "start", ago_s=57, duration_s=60)
    first = badge.wait_for("visit_started", visit_id="visit-4", timeout=10)
    _visit(badge, "visit-4", "checkin")
    later = wait_until(
        lambda: [
            c
            for c in badge.commands
            if c.type == "visit_started" and c.payload["due_ts"] > first.payload["due_ts"] + 40_000
        ],
        timeout=10,
        what="visit_started after check-in",
    )
    assert abs(later[0].payload["due_ts"] - (time.time() + 60) * 1000) < 5000
    time.sleep(5)  # past the first deadline
    assert not [c for c in badge.commands if c.type == "visit_due"]


def test_end_with_duress_pin_raises_silent_duress_alert(svc: Running) -> None:
    badge, b = svc.badge("badge-v5")
    _visit(
        badge, "visit-5", "start", duration_s=1800, note="Flat 2", loc={"lat": 51.52, "lon": -0.1}
    )
    badge.wait_for("visit_started", visit_id="visit-5", timeout=10)
    _visit(badge, "visit-5", "end", pin=b.duress_pin)
    ended = badge.wait_for("visit_ended", visit_id="visit-5", timeout=10)
    assert set(ended.payload) == {"v", "ts", "type", "visit_id"}

    def duress() -> Alert | None:
        with svc.store.session() as db:
            return db.scalar(select(Alert).where(Alert.duress.is_(True)))

    alert = wait_until(duress, timeout=10, what="duress alert")
    assert alert.type == "duress" and alert.priority == 0 and alert.state == "raised"
    assert (alert.lat, alert.lon) == (51.52, -0.1)


def test_organisation_requiring_pin_refuses_end_without_it(svc: Running) -> None:
    badge, b = svc.badge("badge-v6")
    with svc.store.begin() as db:
        db.execute(update(Organisation).values(require_visit_end_pin=True))
    _visit(badge, "visit-6", "start", duration_s=600)
    badge.wait_for("visit_started", visit_id="visit-6", timeout=10)
    _visit(badge, "visit-6", "end")
    badge.wait_for("visit_end_rejected", visit_id="visit-6", timeout=10)
    _visit(badge, "visit-6", "end", pin="5555")
    wait_until(
        lambda: len([c for c in badge.commands if c.type == "visit_end_rejected"]) == 2,
        timeout=10,
        what="second visit_end_rejected",
    )
    with svc.store.session() as db:
        assert db.scalar(select(Visit.state)) == "open"
    _visit(badge, "visit-6", "end", pin=b.cancel_pin)
    badge.wait_for("visit_ended", visit_id="visit-6", timeout=10)
    with svc.store.session() as db:
        assert db.scalar(select(Visit.state)) == "ended"
        assert db.scalars(select(Alert)).all() == []


def test_message_for_unknown_visit_is_refused_and_recorded(svc: Running) -> None:
    badge, b = svc.badge("badge-v7")
    _visit(badge, "visit-nope", "checkin")
    cmd = badge.wait_for("rejected", ref="visit", timeout=10)
    assert cmd.payload == {
        "v": 1,
        "ts": cmd.payload["ts"],
        "type": "rejected",
        "ref": "visit",
        "reason": "unknown visit visit-nope",
        "id": "visit-nope",
    }
    sup = svc.user("lead", Role.SUPERVISOR)
    (row,) = svc.http.get(f"/api/v1/refused?device_id={b.device_id}", headers=sup).json()
    assert row["reason"] == "unknown visit visit-nope"


def test_checkin_that_overtakes_its_start_is_applied_after_it(svc: Running) -> None:
    badge, _ = svc.badge("badge-v8")
    _visit(badge, "visit-8", "extend", duration_s=7200)
    wait_until(lambda: held(svc) == 1, timeout=10, what="the extension to be held")
    _visit(badge, "visit-8", "start", ago_s=1, duration_s=600, note="Flat 1")
    wait_until(
        lambda: len([c for c in badge.commands if c.type == "visit_started"]) == 2,
        timeout=10,
        what="answers to the start and the held extension",
    )
    last = [c for c in badge.commands if c.type == "visit_started"][-1]
    assert abs(last.payload["due_ts"] - (time.time() + 7200) * 1000) < 10_000
    assert not [c for c in badge.commands if c.type == "rejected"]
