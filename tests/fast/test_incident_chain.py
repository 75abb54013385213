"""The incident log is hash-chained: `vigil audit verify` passes on what Vigil wrote and
names the first entry changed or removed behind its back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.alerts.models import Alert, AlertEvent
from monitor.cli import app
from monitor.db import Store, UTCDateTime
from monitor.migrate import upgrade
from monitor.users.models import Role
from tests.escalation_support import load
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until


def verify(url: str, monkeypatch: pytest.MonkeyPatch, *, ok: bool = True) -> str:
    monkeypatch.setenv("VIGIL_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def digest(output: str) -> str:
    m = re.search(r"digest of every chain's head: ([0-9a-f]{64})", output)
    assert m is not None, output
    return m[1]


def an_incident(svc: Running) -> int:
    """A red alert taken, noted, reported to the police and resolved: a whole timeline."""
    badge, _ = svc.badge("chain")
    device_alert = badge.raise_alert(type="red", note="stairwell B")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert))
    assert pk is not None
    ops = svc.user(f"op-{device_alert[:8]}", Role.OPERATOR)
    base = f"/api/v1/alerts/{pk}"
    assert svc.http.post(f"{base}/acknowledge", headers=ops).status_code == 200
    assert svc.http.post(f"{base}/notes", json={"text": "on the phone"}, headers=ops).is_success
    r = svc.http.post(
        f"{base}/authorities", json={"service": "police", "reference": "CAD-7"}, headers=ops
    )
    assert r.is_success
    body = {"outcome": "genuine_emergency", "note": "police attended"}
    assert svc.http.post(f"{base}/resolve", json=body, headers=ops).is_success
    return pk


def test_timeline_entries_are_chained_and_verified(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    pk = an_incident(svc)
    ops = svc.user("reader", Role.OPERATOR)
    timeline = svc.http.get(f"/api/v1/alerts/{pk}", headers=ops).json()["timeline"]
    kinds = [e["kind"] for e in timeline]
    for kind in ("raised", "acknowledged", "note", "authorities_called", "resolved"):
        assert kind in kinds
    assert kinds.index("raised") == 0 and kinds[-1] == "resolved"
    assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert len({e["hash"] for e in timeline}) == len(timeline)

    out = verify(svc.settings.database_url, monkeypatch)
    assert f"incident log intact: incidents 1, entries {len(timeline)}" in out


DEFAULT_POLICY = Path(__file__).parents[2] / "escalation" / "default_policy.yaml"
AUDIO = b"OggS" + bytes(range(200))


def test_a_whole_incident_is_in_its_timeline_in_order(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(svc, DEFAULT_POLICY.read_text())
    badge, b = svc.badge("whole")
    device_alert = badge.raise_alert(type="red", note="stairwell B")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    badge.send_evidence("clip-w", alert_id=device_alert, data=AUDIO)
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert))
    base = f"/api/v1/alerts/{pk}"
    sup = svc.user("whole-lead", Role.SUPERVISOR)

    def kinds() -> list[str]:
        return [e["kind"] for e in svc.http.get(base, headers=sup).json()["timeline"]]

    wait_until(
        lambda: {"evidence", "notification"} <= set(kinds()),
        timeout=15,
        what="the clip and the backup's SMS in the timeline",
    )
    r = svc.http.put(
        f"/api/v1/devices/{b.device_id}/evidence/clip-w",
        content=AUDIO,
        auth=(b.device_id, b.secret),
    )
    assert r.status_code == 200
    assert svc.http.post(f"{base}/acknowledge", headers=sup).status_code == 200
    svc.http.post(f"{base}/notes", json={"text": "police on the way"}, headers=sup)
    svc.http.post(
        f"{base}/authorities", json={"service": "police", "reference": "CAD-9"}, headers=sup
    )
    body = {"outcome": "genuine_emergency", "note": "worker safe"}
    assert svc.http.post(f"{base}/resolve", json=body, headers=sup).status_code == 200
    wait_until(lambda: "escalation_stopped" in kinds(), timeout=10, what="escalation to stop")

    timeline = svc.http.get(base, headers=sup).json()["timeline"]
    order = [e["kind"] for e in timeline]
    steps = [
        "raised",
        "escalation_started",
        "notification",
        "acknowledged",
        "note",
        "authorities_called",
        "positions",
        "resolved",
    ]
    firsts = [order.index(k) for k in steps]
    assert firsts == sorted(firsts), order
    assert "evidence" in order and "escalation_stopped" in order
    ats = [e["at"] for e in timeline]
    assert ats == sorted(ats)
    by_kind = {e["kind"]: e for e in timeline}
    raised = by_kind["raised"]["data"]
    assert raised["device_ts"] and raised["received_at"] and raised["loc"]["lat"]
    assert by_kind["acknowledged"]["actor"] == "user:whole-lead"
    assert by_kind["acknowledged"]["data"] == {"via": "console"}
    assert by_kind["authorities_called"]["data"] == {"service": "police", "reference": "CAD-9"}
    assert by_kind["resolved"]["data"]["outcome"] == "genuine_emergency"
    fixes = by_kind["positions"]["data"]["fixes"]
    assert fixes and all(f["device_ts"] <= by_kind["resolved"]["at"] for f in fixes)
    sms = [e for e in timeline if e["kind"] == "notification"]
    assert sms and all("status" in e["data"] for e in sms)
    assert "incident log intact" in verify(svc.settings.database_url, monkeypatch)


def the_note(svc: Running, alert_id: int) -> tuple[int, int]:
    """The row id and chain position of the incident's note."""
    with svc.store.session() as db:
        note = db.scalar(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id, AlertEvent.kind == "note")
        )
        assert note is not None
        return note.id, note.seq


def test_a_changed_entry_is_caught_and_named(svc: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    pk = an_incident(svc)
    url = svc.settings.database_url
    before = digest(verify(url, monkeypatch))
    note_id, note_seq = the_note(svc, pk)

    # Someone with database access rewrites what the operator wrote.
    with svc.store.engine.begin() as conn:
        conn.execute(
            sa.update(AlertEvent).where(AlertEvent.id == note_id).values(text="nothing happened")
        )
    out = verify(url, monkeypatch, ok=False)
    assert f"alert {pk}, entry {note_seq} (row {note_id}, note) was changed" in out

    # Put back, the chain holds again, with the same digest as before.
    with svc.store.engine.begin() as conn:
        conn.execute(
            sa.update(AlertEvent).where(AlertEvent.id == note_id).values(text="on the phone")
        )
    assert digest(verify(url, monkeypatch)) == before

    # A timestamp moved is a change too.
    with svc.store.engine.begin() as conn:
        moved = sa.update(AlertEvent).where(AlertEvent.id == note_id)
        conn.execute(moved.values(at=datetime.now(UTC) - timedelta(hours=1)))
    assert f"entry {note_seq} (row {note_id}, note) was changed" in verify(
        url, monkeypatch, ok=False
    )


def test_a_removed_entry_is_caught(svc: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    pk = an_incident(svc)
    url = svc.settings.database_url
    before = digest(verify(url, monkeypatch))
    with svc.store.session() as db:
        entries = db.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == pk).order_by(AlertEvent.seq)
        ).all()
        middle, last = entries[1], entries[-1]
        middle_seq, last_id = middle.seq, last.id
    with svc.store.engine.begin() as conn:
        conn.execute(sa.delete(AlertEvent).where(AlertEvent.id == last_id))
    # The newest entry gone leaves a consistent chain: only the recorded digest tells.
    assert digest(verify(url, monkeypatch)) != before

    with svc.store.engine.begin() as conn:
        conn.execute(sa.delete(AlertEvent).where(AlertEvent.id == middle.id))
    out = verify(url, monkeypatch, ok=False)
    assert f"alert {pk}, entry {middle_seq} " in out and f"entry {middle_seq} is missing" in out


def test_an_entry_moved_to_another_incident_is_caught(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = an_incident(svc), an_incident(svc)
    note_id, _ = the_note(svc, first)
    with svc.store.session() as db:
        top = db.scalar(select(sa.func.max(AlertEvent.seq)).where(AlertEvent.alert_id == second))
    with svc.store.engine.begin() as conn:
        conn.execute(
            sa.update(AlertEvent)
            .where(AlertEvent.id == note_id)
            .values(alert_id=second, seq=(top or 0) + 1)
        )
    out = verify(svc.settings.database_url, monkeypatch, ok=False)
    assert f"alert {first}, entry" in out


def test_the_migration_chains_entries_already_stored(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before the chain: its timelines are chained in the order written."""
    db_url = empty_db_url
    store = Store(db_url)
    try:
        upgrade(store, "0003")
        raised = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        devices = sa.table(
            "devices",
            *(sa.column(c) for c in ("id", "kind", "secret_hash", "heartbeat_interval_s")),
            sa.column("enabled"),
            sa.column("online"),
            sa.column("created_at", UTCDateTime()),
        )
        alerts = sa.table(
            "alerts",
            *(sa.column(c) for c in ("id", "device_id", "device_alert_id", "type", "priority")),
            *(sa.column(c) for c in ("duress", "state")),
            sa.column("raised_at", UTCDateTime()),
        )
        events = sa.table(
            "alert_events",
            *(sa.column(c) for c in ("alert_id", "kind", "actor", "text")),
            sa.column("data", sa.JSON()),
            sa.column("at", UTCDateTime()),
        )
        with store.engine.begin() as conn:
            conn.execute(
                devices.insert().values(
                    id="old-badge",
                    kind="badge",
                    secret_hash="x",
                    heartbeat_interval_s=300,
                    enabled=True,
                    online=False,
                    created_at=raised,
                )
            )
            conn.execute(
                alerts.insert().values(
                    id=1,
                    device_id="old-badge",
                    device_alert_id="a-1",
                    type="red",
                    priority=1,
                    duress=False,
                    state="resolved",
                    raised_at=raised,
                )
            )
            for i, kind in enumerate(("raised", "acknowledged", "resolved")):
                conn.execute(
                    events.insert().values(
                        alert_id=1,
                        kind=kind,
                        actor="system",
                        text=kind,
                        data={"n": i, "b": 1.5},
                        at=raised + timedelta(seconds=i),
                    )
                )
        upgrade(store)
        with store.session() as db:
            seqs = db.scalars(select(AlertEvent.seq).order_by(AlertEvent.id)).all()
            assert seqs == [1, 2, 3]
        out = verify(db_url, monkeypatch)
        assert "incident log intact: incidents 1, entries 3" in out
    finally:
        store.dispose()


def test_the_head_is_kept_across_flushes_and_dropped_with_a_savepoint(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries added in one transaction look the head up once, however often the session
    flushes between them; one whose savepoint rolled back leaves no trace in the chain."""
    from monitor.alerts import service as alerts

    badge, _ = svc.badge("heads")
    device_alert = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    looked_up: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if "alert_events.seq" in statement and statement.lstrip().startswith("SELECT"):
            looked_up.append(statement)

    with svc.store.begin() as db:
        # This session's statements only: the escalation engine writes timelines meanwhile.
        sa.event.listen(db.connection(), "before_cursor_execute", count)
        alert = db.scalar(select(Alert).where(Alert.device_alert_id == device_alert))
        assert alert is not None
        for i in range(3):
            alerts.record(db, alert, "note", "system", f"note {i}")
            db.flush()
        assert len(looked_up) == 1
        savepoint = db.begin_nested()
        alerts.record(db, alert, "note", "system", "rolled back")
        db.flush()
        savepoint.rollback()
        alerts.record(db, alert, "note", "system", "after the savepoint")
        sa.event.remove(db.connection(), "before_cursor_execute", count)
    with svc.store.session() as db:
        texts = db.scalars(
            select(AlertEvent.text).where(AlertEvent.alert_id == alert.id).order_by(AlertEvent.seq)
        ).all()
    assert "rolled back" not in texts and texts[-1] == "after the savepoint"
    assert "incident log intact" in verify(svc.settings.database_url, monkeypatch)
