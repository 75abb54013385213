"""Evidence: references over MQTT, uploads over HTTP checked against their sha256."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from sqlalchemy import select

from monitor.evidence.models import Evidence
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until

AUDIO = os.urandom(48_211)


def _ev(svc: Running, device_id: str) -> Evidence | None:
    with svc.store.session() as db:
        return db.scalar(select(Evidence).where(Evidence.device_id == device_id))


def test_reference_then_upload_ties_clip_to_alert(svc: Running) -> None:
    badge, b = svc.badge("badge-e1")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    badge.send_evidence("clip-77", alert_id=alert_id, data=AUDIO)
    ev = wait_until(lambda: _ev(svc, b.device_id), timeout=10, what="evidence reference")
    assert ev.sha256 == hashlib.sha256(AUDIO).hexdigest() and ev.alert_id is not None

    r = svc.http.put(
        f"/api/v1/devices/{b.device_id}/evidence/clip-77",
        content=AUDIO,
        auth=(b.device_id, b.secret),
    )
    assert r.status_code == 200, r.text
    assert r.json()["uploaded_at"] is not None
    ev = _ev(svc, b.device_id)
    assert ev is not None and ev.stored_path is not None
    stored = Path(svc.settings.evidence_dir) / ev.stored_path
    assert stored.read_bytes() == AUDIO

    ops = svc.user()
    detail = svc.http.get(f"/api/v1/alerts/{ev.alert_id}", headers=ops).json()
    assert [e["kind"] for e in detail["timeline"]].count("evidence") == 2
    (clip,) = detail["evidence"]

    played = svc.http.get(f"/api/v1/evidence/{clip['id']}/audio", headers=ops)
    assert played.status_code == 200 and played.content == AUDIO
    assert svc.http.get(f"/api/v1/evidence/{clip['id']}/audio").status_code == 401
    timeline = svc.http.get(f"/api/v1/alerts/{ev.alert_id}", headers=ops).json()["timeline"]
    (access,) = [e for e in timeline if e["kind"] == "evidence_accessed"]
    assert access["actor"] == "user:op1" and access["data"]["evidence"] == "clip-77"


def test_upload_with_wrong_bytes_is_refused_and_changes_nothing(svc: Running) -> None:
    badge, b = svc.badge("badge-e2")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    badge.send_evidence("clip-78", alert_id=alert_id, data=AUDIO)
    wait_until(lambda: _ev(svc, b.device_id), timeout=10, what="evidence reference")

    r = svc.http.put(
        f"/api/v1/devices/{b.device_id}/evidence/clip-78",
        content=AUDIO[:-1] + bytes([AUDIO[-1] ^ 1]),  # never the same bytes by chance
        auth=(b.device_id, b.secret),
    )
    assert r.status_code == 422 and "sha256" in r.json()["detail"]
    ev = _ev(svc, b.device_id)
    assert ev is not None and ev.uploaded_at is None and ev.stored_path is None
    assert not list(Path(svc.settings.evidence_dir).rglob("*.bin"))


def test_upload_first_then_mismatching_reference_is_refused(svc: Running) -> None:
    badge, b = svc.badge("badge-e3")
    r = svc.http.put(
        f"/api/v1/devices/{b.device_id}/evidence/clip-79",
        content=AUDIO,
        auth=(b.device_id, b.secret),
    )
    assert r.status_code == 200
    msg = {
        "v": 1,
        "ts": int(time.time() * 1000),
        "id": "clip-79",
        "visit_id": "visit-1",
        "kind": "audio",
        "codec": "opus",
        "sha256": "0" * 64,
        "bytes": len(AUDIO),
    }
    badge.publish_raw("evidence", json.dumps(msg))
    cmd = badge.wait_for("rejected", ref="evidence", timeout=10)
    assert "sha256" in cmd.payload["reason"]
    assert _ev(svc, b.device_id) is None
    assert not list(Path(svc.settings.evidence_dir).rglob("*.bin"))


def test_upload_needs_the_device_secret(svc: Running) -> None:
    _, b = svc.badge("badge-e4")
    url = f"/api/v1/devices/{b.device_id}/evidence/clip-80"
    assert svc.http.put(url, content=AUDIO, auth=(b.device_id, "wrong")).status_code == 401
    assert svc.http.put(url, content=AUDIO).status_code == 401
    _, other = svc.badge("badge-e5")
    assert svc.http.put(url, content=AUDIO, auth=(other.device_id, other.secret)).status_code == 401
    assert _ev(svc, b.device_id) is None


def test_an_evidence_id_the_protocol_refuses_is_refused_in_the_upload_url(svc: Running) -> None:
    _, b = svc.badge("badge-e-nul")
    # A NUL (which SQLite would store and PostgreSQL refuse), and an id over 128 characters:
    # the evidence message refuses both, and so does the upload's URL, on either database.
    for bad in ("clip%0081", "clip-" + "9" * 124):
        url = f"/api/v1/devices/{b.device_id}/evidence/{bad}"
        r = svc.http.put(url, content=AUDIO, auth=(b.device_id, b.secret))
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["path", "evidence_id"]
    assert _ev(svc, b.device_id) is None
    # The longest id the protocol allows is taken.
    longest = "clip-" + "9" * 123
    r = svc.http.put(
        f"/api/v1/devices/{b.device_id}/evidence/{longest}",
        content=AUDIO,
        auth=(b.device_id, b.secret),
    )
    assert r.status_code == 200, r.text
    ev = _ev(svc, b.device_id)
    assert ev is not None and ev.evidence_id == longest
