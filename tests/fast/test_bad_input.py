"""Bad input is refused with its reason, recorded, counted and answered; nothing valid is lost."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from sqlalchemy import select

from monitor.alerts.models import Alert
from monitor.ingest.models import RefusedMessage
from monitor.users.models import Role
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until


def now_ms() -> int:
    return int(time.time() * 1000)


CASES = [
    ("alert", b"{not json", "not valid JSON", "invalid_json"),
    ("alert", b"[1, 2]", "must be a JSON object", "invalid_json"),
    ("alert", b"\xff\xfe{}", "not UTF-8", "invalid_json"),
    ("alert", json.dumps({"v": 1, "ts": now_ms(), "type": "red"}), "id: Field required", "invalid"),
    (
        "alert",
        json.dumps({"v": 1, "ts": str(now_ms()), "id": "abcdefgh1", "type": "red"}),
        "ts: Input should be a valid integer",
        "invalid",
    ),
    (
        "alert",
        json.dumps({"v": 2, "ts": now_ms(), "id": "abcdefgh1", "type": "red"}),
        "v:",
        "invalid",
    ),
    ("alert", json.dumps({"v": 1, "ts": now_ms(), "id": "short", "type": "red"}), "id:", "invalid"),
    (
        "alert",
        json.dumps({"v": 1, "ts": now_ms(), "id": "abcdefgh1", "type": "fire"}),
        "type:",
        "invalid",
    ),
    (
        "alert",
        json.dumps({"v": 1, "ts": now_ms(), "id": "abcdefgh1", "type": "red", "note": "x" * 17000}),
        "at most 16384",
        "too_large",
    ),
    (
        "location",
        json.dumps({"v": 1, "ts": now_ms(), "loc": {"lat": 95, "lon": 0}}),
        "loc.lat",
        "invalid",
    ),
    (
        "location",
        json.dumps({"v": 1, "ts": now_ms(), "loc": {"lat": True, "lon": 0}}),
        "loc.lat",
        "invalid",
    ),
    ("heartbeat", json.dumps({"v": 1, "ts": now_ms(), "batt": 101}), "batt:", "invalid"),
    (
        "visit",
        json.dumps({"v": 1, "ts": now_ms(), "id": "v-1", "action": "start"}),
        "duration_s is required",
        "invalid",
    ),
    (
        "visit",
        json.dumps({"v": 1, "ts": now_ms(), "id": "v-1", "action": "start", "duration_s": 30}),
        "duration_s:",
        "invalid",
    ),
    (
        "alert",
        # Parsers keep the last copy of a key: this would be stored as red, not as a test.
        f'{{"v":1,"ts":{now_ms()},"id":"abcdefgh1","type":"test","type":"red"}}',
        "key 'type' appears twice",
        "invalid",
    ),
    (
        "alert/cancel",
        json.dumps({"v": 1, "ts": now_ms(), "alert_id": "abcdefgh1", "pin": "12"}),
        "pin:",
        "invalid",
    ),
    (
        "evidence",
        json.dumps({"v": 1, "ts": now_ms(), "id": "c1", "kind": "audio", "sha256": "a" * 64}),
        "exactly one of alert_id or visit_id",
        "invalid",
    ),
]


@pytest.mark.parametrize(
    ("suffix", "payload", "reason", "code"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_refused_with_reason_and_valid_alert_after_arrives(
    svc: Running, suffix: str, payload: bytes | str, reason: str, code: str
) -> None:
    badge, b = svc.badge("badge-bad")
    before = refused_count(svc, code)
    badge.publish_raw(suffix, payload, qos=1)
    cmd = badge.wait_for("rejected", ref=suffix, timeout=10)
    assert reason in cmd.payload["reason"]

    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)

    def recorded() -> list[RefusedMessage]:
        # (Earlier tests' devices, unknown here, may have been refused too: their retained
        # status messages are still on the shared broker.)
        with svc.store.session() as db:
            return list(
                db.scalars(select(RefusedMessage).where(RefusedMessage.device_id == b.device_id))
            )

    # Refusals on the urgent path are recorded a batch at a time, within a second.
    (row,) = wait_until(recorded, timeout=5, what="the refusal to be recorded")
    with svc.store.session() as db:
        assert row.device_id == b.device_id
        assert row.topic == f"vigil/v1/{b.device_id}/{suffix}"
        assert reason in row.reason
        assert row.size_bytes == len(payload if isinstance(payload, bytes) else payload.encode())
        assert len(row.excerpt) <= 300
        alerts = db.scalars(select(Alert)).all()
        assert [a.device_alert_id for a in alerts] == [alert_id]

    sup = svc.user("lead", Role.SUPERVISOR)
    listed = svc.http.get(f"/api/v1/refused?device_id={b.device_id}", headers=sup).json()
    assert [r["reason"] for r in listed] == [row.reason]
    # (The counter is process-wide: earlier tests' refusals are in it too.)
    wait_until(
        lambda: refused_count(svc, code) == before + 1, timeout=5, what="the refusal to be counted"
    )


def refused_count(svc: Running, code: str) -> float:
    metrics = svc.http.get("/metrics").text
    m = re.search(rf'vigil_device_messages_refused_total{{code="{code}"}} ([0-9.e+]+)', metrics)
    return float(m.group(1)) if m else 0.0


def test_unknown_device_is_refused(svc: Running) -> None:
    ghost = "ghost-" + uuid.uuid4().hex[:6]
    payload = json.dumps({"v": 1, "ts": now_ms(), "id": "ghost-alert-1", "type": "red"})
    svc.device(ghost).publish_raw("alert", payload, qos=1)

    def refused() -> list[RefusedMessage]:
        with svc.store.session() as db:
            return list(db.scalars(select(RefusedMessage).where(RefusedMessage.device_id == ghost)))

    (row,) = wait_until(refused, timeout=10, what="refusal of the unknown device")
    assert row.device_id == ghost and row.reason == "unknown device"
    with svc.store.session() as db:
        assert db.scalars(select(Alert)).all() == []
