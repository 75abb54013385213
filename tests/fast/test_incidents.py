"""The safety lead's pages: the incident list and its filters, reports checked against figures
worked out by hand, the CSV and PDF exports, and what an account of one organisation sees."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pypdf import PdfReader
from sqlalchemy import select, update

from monitor.alerts import service as alerts
from monitor.alerts.models import Alert, AlertEvent
from monitor.alerts.states import AlertState, AlertType, priority
from monitor.audit.models import AuditEntry
from monitor.config import Settings
from monitor.devices.models import BatteryWarning, Device, LocationFix
from monitor.evidence.models import Evidence
from monitor.incidents import pdf, reports
from monitor.orgs.models import Team, Worker
from monitor.orgs.scope import Scope
from monitor.reads import alert_detail
from monitor.users.models import Role
from tests.fast.handlers import Handlers as Running
from tests.support import add_badge

ORG, OTHER = "Review Org", "Elsewhere Trust"
SINCE = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday: ISO week 2025-W10
UNTIL = datetime(2025, 3, 17, tzinfo=UTC)
PERIOD = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
CLIP_SHA = "75605bf312a456843b0d7d246ac3a50fc8a57d90b46b3a675991c4b93bd19d11"


def at(day: int, hour: int = 9, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


@dataclass
class Fleet:
    alerts: dict[int, int]  # the number in the table below -> the stored alert's id
    workers: dict[str, int]
    teams: dict[str, int]


# (number, device, raised, type, seconds to acknowledge, to resolve, outcome, cancelled after)
ALERTS: list[tuple[int, str, datetime, str, int | None, int | None, str | None, int | None]] = [
    # ISO week 2025-W10
    (1, "rv-a", at(3), "red", 4, 300, "genuine_emergency", None),
    (2, "rv-a", at(4, 10), "test", 8, 60, "test", None),
    (3, "rv-b", at(5, 11), "red", 12, 600, "false_alarm", None),
    (4, "rv-c", at(6, 12), "man_down", 30, 1200, "worker_safe", None),
    (5, "rv-b", at(7, 13), "red", None, None, None, 5),  # the worker cancelled it
    # 2025-W11
    (6, "rv-c", at(10), "red", 2, 900, "genuine_emergency", None),  # under duress
    (7, "rv-a", at(11), "no_motion", 50, 120, "accidental", None),
    (8, "rv-b", at(12), "visit_overdue", None, 20, "worker_safe", None),  # resolved, never acked
    (9, "rv-c", at(13), "red", 9, None, None, None),  # acknowledged, still open
    (10, "rv-a", at(14), "red", None, None, None, None),  # still waiting
    # outside the period, or of another organisation
    (11, "rv-b", at(20), "test", 5, 10, "test", None),
    (12, "rv-x", at(10, 15), "red", 100, 200, "false_alarm", None),
    (13, "rv-d", at(1, 9, month=2), "test", 3, 6, "test", None),
]
NOTES = {
    1: "Aggressive tenant at 12 Elm St 中",
    2: '=HYPERLINK("http://example.invalid")',
    9: "battery 100 percent",
}
TYPED = [
    (3, "note", "Pressed by mistake while DRIVING"),
    (6, "note", "Réfugiée à l'ÉTAGE, Łódź"),
    (7, "authorities_called", "Authorities called: Police, reference CAD 4471"),
]
BATTERY = {
    "rv-b": [at(3), at(8), at(15)],
    "rv-a": [at(5), at(12), at(1, month=2), at(2, month=2)],
    "rv-c": [at(10)],
    "rv-x": [at(4), at(5), at(6), at(7), at(8)],
}


def _store_alert(db: Any, device: Device, worker: Worker, row: tuple[Any, ...]) -> Alert:
    _, _, raised, kind, ack, resolve, outcome, cancel = row
    number = row[0]
    alert = Alert(
        org_id=worker.org_id,
        worker_id=worker.id,
        device_id=device.id,
        device_alert_id=uuid.uuid4().hex,
        type=kind,
        duress=number == 6,
        priority=priority(AlertType(kind), number == 6),
        note=NOTES.get(number),
        device_ts=raised - timedelta(seconds=1),
        raised_at=raised,
        lat=51.5072 if number == 1 else None,
        lon=-0.1276 if number == 1 else None,
        acc=6.0 if number == 1 else None,
    )
    db.add(alert)
    db.flush()
    alerts.record(db, alert, "raised", f"device:{device.id}", f"{kind} alert raised")
    if ack is not None:
        alert.state = AlertState.ACKNOWLEDGED.value
        alert.acknowledged_at = raised + timedelta(seconds=ack)
        alert.acknowledged_by = "user:op1"
        alerts.record(db, alert, "acknowledged", "user:op1", "Taken charge of (console)")
    if resolve is not None:
        alert.state = AlertState.RESOLVED.value
        alert.resolved_at = raised + timedelta(seconds=resolve)
        alert.resolved_by = "user:op1"
        alert.outcome = outcome
        alerts.record(db, alert, "resolved", "user:op1", f"Resolved: {outcome}")
    if cancel is not None:
        alert.state = AlertState.CANCELLED.value
        alert.cancelled_at = raised + timedelta(seconds=cancel)
        alerts.record(db, alert, "cancelled", f"device:{device.id}", "Cancelled by the worker")
    return alert


@pytest.fixture
def fleet(svc: Running) -> Fleet:
    """Six workers in two organisations; the alerts above, with known times and outcomes."""
    people = {
        "rv-a": ("Zoë Ångström", "Housing", ORG),
        "rv-b": ("Ben Ode", "Housing", ORG),
        "rv-c": ("Cara Díaz", "Nursing", ORG),
        "rv-d": ("Dev Patel", "Nursing", ORG),
        "rv-e": ("Eve Idle", "Nursing", ORG),
        "rv-x": ("Xavier Other", "Housing", OTHER),
    }
    for device_id, (name, team, org) in people.items():
        add_badge(svc.store, device_id, name=name, team=team, org=org)
    stored: dict[int, int] = {}
    with svc.store.begin() as db:
        db.execute(update(Device).where(Device.id == "rv-e").values(enabled=False))
        devices = {d.id: d for d in db.scalars(select(Device))}
        workers = {w.id: w for w in db.scalars(select(Worker))}
        for row in ALERTS:
            device = devices[row[1]]
            assert device.worker_id is not None
            alert = _store_alert(db, device, workers[device.worker_id], row)
            stored[row[0]] = alert.id
        for number, kind, text in TYPED:
            alerts.record(db, alerts.get(db, stored[number]), kind, "user:op1", text)
        for device_id, times in BATTERY.items():
            for when in times:
                db.add(
                    BatteryWarning(
                        worker_id=devices[device_id].worker_id,
                        device_id=device_id,
                        at=when,
                        level=9,
                    )
                )
        # Alert 1: a fix before it, and a clip with its hash.
        db.add(
            LocationFix(
                device_id="rv-a",
                worker_id=devices["rv-a"].worker_id,
                device_ts=at(3) - timedelta(minutes=5),
                received_at=at(3) - timedelta(minutes=5),
                lat=51.5068,
                lon=-0.1281,
                acc=9.0,
            )
        )
        db.add(
            Evidence(
                device_id="rv-a",
                evidence_id="clip-77",
                alert_id=stored[1],
                kind="audio",
                codec="opus",
                duration_ms=15000,
                size_bytes=48211,
                sha256=CLIP_SHA,
                referenced_at=at(3) + timedelta(seconds=40),
            )
        )
        names = {w.name: w.id for w in db.scalars(select(Worker))}
        teams = {
            t.name: t.id
            for t in db.scalars(
                select(Team).where(Team.org_id == workers[devices["rv-a"].worker_id].org_id)
            )
        }
    return Fleet(stored, names, teams)


def _numbers(fleet: Fleet, rows: list[dict[str, Any]]) -> list[int]:
    back = {pk: n for n, pk in fleet.alerts.items()}
    return [back[r["id"]] for r in rows]


def _list(svc: Running, who: dict[str, str], **query: Any) -> Any:
    r = svc.http.get("/api/v1/incidents", params=query, headers=who)
    assert r.status_code == 200, r.text
    return r.json()


def test_report_matches_the_figures_worked_out_by_hand(svc: Running, fleet: Fleet) -> None:
    lead = svc.user("lead", Role.SUPERVISOR, org=ORG)
    r = svc.http.get("/api/v1/reports", params=PERIOD, headers=lead)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["alerts"] == 10  # 1 to 10: not 11 (after), 12 (elsewhere), 13 (before)
    assert rep["types"] == ["red", "man_down", "no_motion", "test", "visit_overdue"]
    assert rep["weeks"] == [
        {
            "week": "2025-W10",
            "starts": "2025-03-03",
            "total": 5,
            "duress": 0,
            "by_type": {"red": 3, "test": 1, "man_down": 1},
        },
        {
            "week": "2025-W11",
            "starts": "2025-03-10",
            "total": 5,
            "duress": 1,
            "by_type": {"red": 3, "no_motion": 1, "visit_overdue": 1},
        },
    ]
    # Resolved: 1, 2, 3, 4, 6, 7, 8; false_alarm (3) or accidental (7): 2 of 7.
    assert rep["false_alarms"] == {"false_alarms": 2, "resolved": 7, "rate": 2 / 7}
    # Taken charge of after 4, 8, 12, 30, 2, 50, 20 (8: resolved unacknowledged), 9 s; 5 was
    # cancelled first; 10 is still waiting. Sorted: 2 4 8 9 12 20 30 50. Nearest rank:
    # p50 = 4th = 9, p90 = ceil(7.2) = 8th = 50.
    ack = rep["acknowledge"]
    assert (ack["count"], ack["waiting"]) == (8, 1)
    assert (ack["p50_s"], ack["p90_s"], ack["max_s"]) == (9, 50, 50)
    # Within 10 s: 2 4 8 9 of the 8 answered and the 1 waiting (for far longer than 10 s).
    assert ack["targets"] == [
        {
            "within_s": 10,
            "target_pct": 80,
            "counted": 9,
            "within": 4,
            "share_pct": pytest.approx(400 / 9),
            "met": False,
        },
        {
            "within_s": 40,
            "target_pct": 98.5,
            "counted": 9,
            "within": 7,
            "share_pct": pytest.approx(700 / 9),
            "met": False,
        },
    ]
    # Resolved after 300 60 600 1200 900 120 20 s. Sorted: 20 60 120 300 600 900 1200:
    # p50 = ceil(3.5) = 4th = 300, p90 = ceil(6.3) = 7th = 1200.
    assert rep["resolve"] == {"count": 7, "p50_s": 300, "p90_s": 1200, "max_s": 1200}
    # No test alert in the 30 days before 17 March: rv-b (its test of 20 March is after)
    # and rv-c never, rv-d last on 1 February; rv-e is disabled; rv-a tested on 4 March.
    stale = rep["stale_test_devices"]
    assert stale["days"] == 30
    assert [(d["device_id"], d["last_test_at"]) for d in stale["devices"]] == [
        ("rv-b", None),
        ("rv-c", None),
        ("rv-d", "2025-02-01T09:00:00Z"),
    ]
    assert stale["devices"][0]["worker_name"] == "Ben Ode"
    # Warnings from 3 March on: Ben 3, Zoë 2 (her two in February are before), Cara 1.
    assert [(w["worker_name"], w["team"], w["warnings"]) for w in rep["low_battery"]] == [
        ("Ben Ode", "Housing", 3),
        ("Zoë Ångström", "Housing", 2),
        ("Cara Díaz", "Nursing", 1),
    ]
    assert rep["low_battery"][0]["last_at"] == "2025-03-15T09:00:00Z"


def test_report_of_a_team_and_other_targets(svc: Running, fleet: Fleet) -> None:
    nursing = svc.user("nurse-lead", Role.SUPERVISOR, org=ORG, team="Nursing")
    rep = svc.http.get("/api/v1/reports", params=PERIOD, headers=nursing).json()
    # Cara's alerts 4, 6, 9: taken charge of after 30, 2, 9 s; resolved after 1200, 900 s.
    assert rep["alerts"] == 3
    ack = rep["acknowledge"]
    assert (ack["count"], ack["p50_s"], ack["p90_s"], ack["max_s"]) == (3, 9, 30, 30)
    assert [(t["within"], t["counted"], t["met"]) for t in ack["targets"]] == [
        (2, 3, False),
        (3, 3, True),
    ]
    assert rep["resolve"] == {"count": 2, "p50_s": 900, "p90_s": 1200, "max_s": 1200}
    assert rep["false_alarms"] == {"false_alarms": 0, "resolved": 2, "rate": 0.0}
    assert [d["device_id"] for d in rep["stale_test_devices"]["devices"]] == ["rv-c", "rv-d"]
    assert [w["worker_name"] for w in rep["low_battery"]] == ["Cara Díaz"]

    # Targets are a setting; a target's seconds are inclusive (12 s counts within 12 s).
    with svc.store.session() as db:
        org_id = db.scalar(select(Worker.org_id).where(Worker.name == "Ben Ode"))
        rep2 = reports.build(
            db,
            Scope(org_id),
            since=SINCE,
            until=UNTIL,
            targets=[(12, 50), (60, 85)],
            test_days=7,
            now=datetime.now(UTC),
        )
    assert [(t.within, t.counted, t.met) for t in rep2.acknowledge.targets] == [
        (5, 9, True),
        (8, 9, True),
    ]
    # rv-a's test on 4 March is more than 7 days before 17 March.
    assert "rv-a" in {d.device_id for d in rep2.stale_test_devices.devices}


def test_targets_setting() -> None:
    assert Settings(ack_targets="40:98.5, 10:80").ack_target_list == [(10, 80), (40, 98.5)]
    assert Settings().ack_target_list == [(10, 80), (40, 98.5)]
    for bad in ("10", "10:80,", "x:80", "10:0", "10:101", "0:50", "nan:50"):
        with pytest.raises(ValidationError, match="ack_targets"):
            Settings(ack_targets=bad)


def test_filters_and_search_each_narrow_the_list(svc: Running, fleet: Fleet) -> None:
    lead = svc.user("lead", Role.SUPERVISOR, org=ORG)

    def found(**query: Any) -> list[int]:
        return _numbers(fleet, _list(svc, lead, **query))

    everything = found()
    assert everything == [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 13]  # newest first; not 12
    assert found(**PERIOD) == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert found(since="2025-03-10", until="2025-03-12T00:00:00") == [7, 6]
    assert found(team=fleet.teams["Nursing"]) == [9, 6, 4, 13]
    assert found(worker=fleet.workers["Ben Ode"]) == [11, 8, 5, 3]
    assert found(type="test") == [11, 2, 13]
    assert found(outcome="false_alarm") == [3]
    assert found(state="cancelled") == [5]
    assert found(duress="true") == [6]
    assert len(found(duress="false")) == 11
    assert found(type="red", worker=fleet.workers["Cara Díaz"]) == [9, 6]
    assert found(limit=2, offset=3) == [8, 7]
    # Text: the alert's own note and what people typed in its timeline, any case.
    assert found(q="driving") == [3]
    assert found(q="ELM st") == [1]
    assert found(q="étage") == [6]  # É and é: a Unicode-aware lower() on both databases
    assert found(q="cad 4471") == [7]
    assert found(q="100%") == [] and found(q="10_") == []  # % and _ are just characters
    assert found(q="100 per") == [9]
    assert found(q="") == everything

    rows = {r["id"]: r for r in _list(svc, lead)}
    assert rows[fleet.alerts[1]]["time_to_acknowledge_s"] == 4
    assert rows[fleet.alerts[1]]["time_to_resolve_s"] == 300
    assert rows[fleet.alerts[8]]["time_to_acknowledge_s"] == 20  # resolved unacknowledged
    assert rows[fleet.alerts[5]]["time_to_acknowledge_s"] is None
    assert rows[fleet.alerts[1]]["worker_name"] == "Zoë Ångström"

    for bad in (
        {"since": "2025-03-10", "until": "2025-03-10"},
        {"type": "fire"},
        {"outcome": "fine"},
        {"team": 0},
        {"worker": 2**31},
        {"q": "a\x00b"},
        {"q": "x" * 201},
        {"duress": "maybe"},
        {"limit": 0},
        {"since": "yesterday"},
    ):
        r = svc.http.get("/api/v1/incidents", params=bad, headers=lead)
        assert r.status_code == 422, (bad, r.text)
        if "limit" not in bad:  # an export has no pages
            r = svc.http.get("/api/v1/incidents/export.csv", params=bad, headers=lead)
            assert r.status_code == 422, (bad, r.text)
    r = svc.http.get("/api/v1/reports", params={"since": "2025-03-10", "until": "2025-01-01"})
    assert r.status_code == 401
    r = svc.http.get(
        "/api/v1/reports", params={"since": "2025-03-10", "until": "2025-01-01"}, headers=lead
    )
    assert r.status_code == 422 and "since must be before until" in r.text
    # Near the ends of the calendar a report's arithmetic would overflow (found by the fuzz).
    for edge in ({"until": "0001-01-01T00:00:00Z"}, {"since": "9999-12-31T23:00:00"}):
        r = svc.http.get("/api/v1/reports", params=edge, headers=lead)
        assert r.status_code == 422 and "out of range" in r.text, (edge, r.text)


def test_csv_export_holds_the_filtered_rows(
    svc: Running, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead = svc.user("lead", Role.SUPERVISOR, org=ORG)
    monkeypatch.setattr(alerts, "NAMES_BATCH", 3)  # several batches of names, even here
    query = {**PERIOD, "team": fleet.teams["Housing"]}
    r = svc.http.get("/api/v1/incidents/export.csv", params=query, headers=lead)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="vigil-incidents-')
    assert r.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(r.text)))
    listed = _list(svc, lead, **query)
    assert [int(row["id"]) for row in rows] == [x["id"] for x in listed]
    assert _numbers(fleet, [{"id": int(row["id"])} for row in rows]) == [10, 8, 7, 5, 3, 2, 1]
    first = {int(row["id"]): row for row in rows}[fleet.alerts[1]]
    assert first["worker_name"] == "Zoë Ångström" and first["team"] == "Housing"
    assert first["type"] == "red" and first["outcome"] == "genuine_emergency"
    assert first["raised_at"] == "2025-03-03T09:00:00+00:00"
    assert (first["time_to_acknowledge_s"], first["time_to_resolve_s"]) == ("4.0", "300.0")
    assert (first["lat"], first["lon"]) == ("51.5072", "-0.1276")
    assert first["note"] == NOTES[1]
    # A note that a spreadsheet would run as a formula is kept as text.
    second = {int(row["id"]): row for row in rows}[fleet.alerts[2]]
    assert second["note"] == "'" + NOTES[2]
    cancelled = {int(row["id"]): row for row in rows}[fleet.alerts[5]]
    assert cancelled["outcome"] == "" and cancelled["time_to_acknowledge_s"] == ""
    assert cancelled["state"] == "cancelled"
    (taken,) = _audited(svc, "incidents_exported")
    assert taken.actor == "user:lead" and taken.target == f"{len(rows)} incidents"
    assert taken.details["filters"]["team_id"] == fleet.teams["Housing"]


def _audited(svc: Running, action: str) -> list[AuditEntry]:
    with svc.store.session() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _pdf_text(body: bytes) -> str:
    assert body.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def test_pdf_export_of_one_incident(svc: Running, fleet: Fleet) -> None:
    lead = svc.user("lead", Role.SUPERVISOR, org=ORG)
    pk = fleet.alerts[1]
    r = svc.http.get(f"/api/v1/incidents/{pk}/report.pdf", headers=lead)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="vigil-incident-{pk}.pdf"'
    (taken,) = _audited(svc, "incident_exported")
    assert (taken.actor, taken.target) == ("user:lead", f"alert {pk}")
    text = _pdf_text(r.content)
    for expected in (
        f"Incident report #{pk}",
        "Zoë Ångström",
        "Housing",
        ORG,
        "Outcome Genuine emergency",  # in words, from monitor.alerts.labels
        "Type Panic",
        "2025-03-03 09:00:00.000 UTC",  # received
        "2025-03-03 08:59:59.000 UTC",  # the device's time
        "51.507200, -0.127600",
        "51.506800, -0.128100",  # the fix five minutes before
        "clip-77",
        CLIP_SHA,
        "Aggressive tenant at 12 Elm St <U+4E2D>",  # a character DejaVu lacks, shown
    ):
        assert expected in text, expected
    with svc.store.session() as db:
        entries = db.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == pk).order_by(AlertEvent.seq)
        ).all()
    assert len(entries) == 3
    for entry in entries:
        assert f"hash {entry.hash}" in text
        assert entry.text in text
    assert f"head {entries[-1].hash}" in text
    # In the order of the chain.
    assert text.index(entries[0].hash) < text.index(entries[1].hash) < text.index(entries[2].hash)

    # Without DejaVu the built-in fonts print Latin-1, and the rest as code points.
    with svc.store.session() as db:
        detail = alert_detail.detail(db, alerts.get(db, fleet.alerts[6]))
    body = pdf.render(
        detail,
        org=ORG,
        ack_s=2,
        resolve_s=900,
        exported_by="user:lead",
        now=datetime.now(UTC),
        font_dir=Path("/nonexistent"),
    )
    text = _pdf_text(body)
    assert "Cara Díaz" in text and "duress" in text
    assert "Réfugiée" in text and "<U+0141>ód<U+017A>" in text
    assert "2 characters the font has no glyph for" in text


def test_an_organisation_sees_only_its_own(svc: Running, fleet: Fleet) -> None:
    ours = svc.user("lead", Role.SUPERVISOR, org=ORG)
    theirs = svc.user("other-lead", Role.ADMIN, org=OTHER)
    centre = svc.user("centre", Role.SUPERVISOR)
    operator = svc.user("op", Role.OPERATOR)

    assert _numbers(fleet, _list(svc, theirs)) == [12]
    assert 12 not in _numbers(fleet, _list(svc, ours))
    assert len(_list(svc, centre)) == 13
    csv_rows = list(
        csv.DictReader(
            io.StringIO(svc.http.get("/api/v1/incidents/export.csv", headers=theirs).text)
        )
    )
    assert [int(r["id"]) for r in csv_rows] == [fleet.alerts[12]]
    rep = svc.http.get("/api/v1/reports", params=PERIOD, headers=theirs).json()
    assert rep["alerts"] == 1 and rep["false_alarms"]["rate"] == 1.0
    assert [(w["worker_name"], w["warnings"]) for w in rep["low_battery"]] == [("Xavier Other", 5)]
    assert [d["device_id"] for d in rep["stale_test_devices"]["devices"]] == ["rv-x"]
    everyone = svc.http.get("/api/v1/reports", params=PERIOD, headers=centre).json()
    assert everyone["alerts"] == 11
    assert everyone["low_battery"][0]["worker_name"] == "Xavier Other"

    ours_pk, theirs_pk = fleet.alerts[1], fleet.alerts[12]
    assert svc.http.get(f"/api/v1/incidents/{ours_pk}/report.pdf", headers=theirs).status_code == (
        404
    )
    assert svc.http.get(f"/api/v1/incidents/{theirs_pk}/report.pdf", headers=ours).status_code == (
        404
    )
    assert svc.http.get(
        f"/api/v1/incidents/{theirs_pk}/report.pdf", headers=theirs
    ).status_code == (200)
    for url in (
        "/api/v1/incidents",
        "/api/v1/incidents/export.csv",
        "/api/v1/reports",
        f"/api/v1/incidents/{ours_pk}/report.pdf",
    ):
        assert svc.http.get(url, headers=operator).status_code == 403, url


def test_exports_follow_holds_purges_and_who_may_see_positions(svc: Running, fleet: Fleet) -> None:
    lead = svc.user("lead", Role.SUPERVISOR, org=ORG)
    pk = fleet.alerts[1]
    r = svc.http.post(
        f"/api/v1/alerts/{pk}/hold", json={"reason": "Police investigation 4471"}, headers=lead
    )
    assert r.status_code == 200, r.text
    with svc.store.begin() as db:
        db.execute(
            update(Evidence).where(Evidence.evidence_id == "clip-77").values(purged_at=at(12))
        )
    text = _pdf_text(svc.http.get(f"/api/v1/incidents/{pk}/report.pdf", headers=lead).content)
    assert "Police investigation 4471" in text and "On hold" in text
    assert "audio deleted 2025-03-12 09:00:00.000 UTC" in text and CLIP_SHA in text
    rows = csv.DictReader(
        io.StringIO(svc.http.get("/api/v1/incidents/export.csv", headers=lead).text)
    )
    assert {int(row["id"]): row["hold"] for row in rows}[pk] == "true"

    # Supervisors who see positions only while an alert is active (docs/privacy.md) get none
    # of an incident that is over, in the list, the CSV or the PDF.
    svc.restart(supervisor_positions="active")
    listed = {r["id"]: r for r in _list(svc, lead)}
    assert (listed[pk]["lat"], listed[pk]["lon"], listed[pk]["acc"]) == (None, None, None)
    rows = csv.DictReader(
        io.StringIO(svc.http.get("/api/v1/incidents/export.csv", headers=lead).text)
    )
    assert {int(row["id"]): row["lat"] for row in rows}[pk] == ""
    text = _pdf_text(svc.http.get(f"/api/v1/incidents/{pk}/report.pdf", headers=lead).content)
    assert "Withheld: positions are shown only while an alert is active." in text
    assert "51.50" not in text and CLIP_SHA in text
