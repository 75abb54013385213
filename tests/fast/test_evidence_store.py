"""The evidence store (a local directory, or S3 on moto's server), the chain of custody,
`vigil evidence verify` and `purge`, and holds on incidents."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from click.testing import Result
from moto.server import ThreadedMotoServer
from sqlalchemy import select, update
from typer.testing import CliRunner

from monitor.alerts.models import Alert, AlertEvent
from monitor.audit.models import AuditEntry
from monitor.broker import free_port
from monitor.cli import app
from monitor.db import utcnow
from monitor.evidence.models import Evidence, EvidenceCustody
from monitor.users.models import Role
from monitor.visits.models import Visit
from tests.fast.handlers import FastDevice as SimDevice
from tests.fast.handlers import Handlers as Running
from tests.fast.handlers import fast_settings
from tests.support import Badge, wait_until

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

AUDIO = os.urandom(300_000)  # more than one chunk of playback
PREFIX = "vigil/evidence/"


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[str]:
    """A local S3 (moto's server) on a loopback port; boto3 is given throwaway credentials
    and kept away from any configuration of this machine's."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.delenv("AWS_PROFILE", raising=False)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@dataclass
class Stored:
    """A running service and a look at its evidence store from outside Vigil."""

    svc: Running
    s3: S3Client | None = None
    bucket: str = ""

    def objects(self) -> dict[str, bytes]:
        """Every stored object, by its key in Vigil's terms (the evidence's stored_path)."""
        if self.s3 is None:
            root = Path(self.svc.settings.evidence_dir)
            files = root.rglob("*") if root.exists() else iter(())
            return {str(p.relative_to(root)): p.read_bytes() for p in files if p.is_file()}
        listed = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {
            o["Key"].removeprefix(PREFIX): self.s3.get_object(Bucket=self.bucket, Key=o["Key"])[
                "Body"
            ].read()
            for o in listed
        }

    def overwrite(self, key: str, data: bytes) -> None:
        """Change a clip behind Vigil's back."""
        if self.s3 is None:
            (Path(self.svc.settings.evidence_dir) / key).write_bytes(data)
        else:
            self.s3.put_object(Bucket=self.bucket, Key=PREFIX + key, Body=data)

    def remove(self, key: str) -> None:
        if self.s3 is None:
            (Path(self.svc.settings.evidence_dir) / key).unlink()
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=PREFIX + key)


@pytest.fixture(params=["local", "s3"])
def stored(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[Stored]:
    extra: dict[str, Any] = {}
    s3 = None
    bucket = ""
    if request.param == "s3":
        endpoint = request.getfixturevalue("moto_s3")
        bucket = f"vigil-{uuid.uuid4().hex[:12]}"
        s3 = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        extra = {
            "evidence_store": "s3",
            "evidence_s3_bucket": bucket,
            "evidence_s3_endpoint_url": endpoint,
            "evidence_s3_region": "us-east-1",
            "evidence_s3_prefix": PREFIX.rstrip("/"),  # the slash is added when missing
        }
    svc = Running(fast_settings(tmp_path / "data", db_url, **extra))
    try:
        svc.start()
        yield Stored(svc, s3, bucket)
    finally:
        svc.close()


def vigil(svc: Running, *args: str, ok: bool = True) -> Result:
    """The `vigil` command, configured as the running service is (the same Settings)."""
    s = svc.settings
    env = {
        "VIGIL_DATA_DIR": str(s.data_dir),
        "VIGIL_DATABASE_URL": s.database_url,
        "VIGIL_EVIDENCE_STORE": s.evidence_store,
        "VIGIL_EVIDENCE_S3_BUCKET": s.evidence_s3_bucket,
        "VIGIL_EVIDENCE_S3_ENDPOINT_URL": s.evidence_s3_endpoint_url,
        "VIGIL_EVIDENCE_S3_REGION": s.evidence_s3_region,
        "VIGIL_EVIDENCE_S3_PREFIX": s.evidence_s3_prefix,
        "VIGIL_EVIDENCE_RETENTION_DAYS": str(s.evidence_retention_days),
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert (result.exit_code == 0) == ok, result.output
    return result


def _evidence(svc: Running, pk: int) -> Evidence:
    with svc.store.session() as db:
        ev = db.get(Evidence, pk)
        assert ev is not None
        return ev


def _find(svc: Running, device_id: str, evidence_id: str) -> Evidence | None:
    with svc.store.session() as db:
        return db.scalar(
            select(Evidence).where(
                Evidence.device_id == device_id, Evidence.evidence_id == evidence_id
            )
        )


def raise_alert(svc: Running, badge: SimDevice) -> tuple[str, int]:
    """(the device's alert id, the stored alert's id)."""
    device_alert = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    with svc.store.session() as db:
        pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert))
    assert pk is not None
    return device_alert, pk


def clip(
    svc: Running,
    badge: SimDevice,
    b: Badge,
    evidence_id: str,
    *,
    alert_id: str | None = None,
    visit_id: str | None = None,
    data: bytes = AUDIO,
) -> int:
    """Reference a recording over MQTT, upload its bytes; returns the evidence record's id."""
    badge.send_evidence(evidence_id, alert_id=alert_id, visit_id=visit_id, data=data)
    wait_until(
        lambda: (ev := _find(svc, b.device_id, evidence_id)) and (ev.alert_id or ev.visit_id),
        timeout=10,
        what=f"evidence {evidence_id} tied to its alert or visit",
    )
    r = svc.http.put(
        f"/api/v1/devices/{b.device_id}/evidence/{evidence_id}",
        content=data,
        auth=(b.device_id, b.secret),
    )
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def custody(svc: Running, pk: int) -> list[EvidenceCustody]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(EvidenceCustody)
                .where(EvidenceCustody.evidence_pk == pk)
                .order_by(EvidenceCustody.id)
            )
        )


def timeline_kinds(svc: Running, alert_pk: int) -> list[str]:
    with svc.store.session() as db:
        return list(
            db.scalars(
                select(AlertEvent.kind)
                .where(AlertEvent.alert_id == alert_pk)
                .order_by(AlertEvent.seq)
            )
        )


def test_upload_and_playback_through_each_store(stored: Stored) -> None:
    svc = stored.svc
    badge, b = svc.badge("badge-st1")
    device_alert, alert_pk = raise_alert(svc, badge)
    pk = clip(svc, badge, b, "clip-1", alert_id=device_alert)

    ev = _evidence(svc, pk)
    assert ev.stored_path is not None and ev.stored_path.startswith(f"{b.device_id}/")
    assert stored.objects() == {ev.stored_path: AUDIO}
    if stored.s3 is not None:
        # In the bucket, under the prefix, and nothing in the local directory.
        assert not Path(svc.settings.evidence_dir).exists()

    ops = svc.user()
    played = svc.http.get(f"/api/v1/evidence/{pk}/audio", headers=ops)
    assert played.status_code == 200 and played.content == AUDIO
    assert played.headers["content-type"] == "audio/ogg"
    assert played.headers["content-length"] == str(len(AUDIO))
    assert [(c.action, c.actor) for c in custody(svc, pk)] == [
        ("uploaded", f"device:{b.device_id}"),
        ("played", "user:op1"),
    ]
    assert timeline_kinds(svc, alert_pk).count("evidence_accessed") == 1


def test_mismatched_upload_is_refused_and_nothing_stored(stored: Stored) -> None:
    svc = stored.svc
    badge, b = svc.badge("badge-st2")
    device_alert, _ = raise_alert(svc, badge)
    badge.send_evidence("clip-2", alert_id=device_alert, data=AUDIO)
    wait_until(lambda: _find(svc, b.device_id, "clip-2"), timeout=10, what="the reference")

    r = svc.http.put(
        f"/api/v1/devices/{b.device_id}/evidence/clip-2",
        content=AUDIO[:-1] + bytes([AUDIO[-1] ^ 1]),  # never the same bytes by chance
        auth=(b.device_id, b.secret),
    )
    assert r.status_code == 422 and "sha256" in r.json()["detail"]
    ev = _find(svc, b.device_id, "clip-2")
    assert ev is not None and ev.stored_path is None and ev.uploaded_at is None
    assert stored.objects() == {}
    assert custody(svc, ev.id) == []


def test_verify_passes_then_finds_what_changed_behind_vigils_back(stored: Stored) -> None:
    svc = stored.svc
    badge, b = svc.badge("badge-st3")
    device_alert, _ = raise_alert(svc, badge)
    first = clip(svc, badge, b, "clip-3a", alert_id=device_alert)
    second = clip(svc, badge, b, "clip-3b", alert_id=device_alert, data=AUDIO[:1000])

    out = vigil(svc, "evidence", "verify").output
    assert "2 stored clips checked" in out and "FAILED" not in out
    assert [c.action for c in custody(svc, first)][-1] == "verified"

    changed = _evidence(svc, first).stored_path
    gone = _evidence(svc, second).stored_path
    assert changed is not None and gone is not None
    # The last byte flipped: a fixed byte would change nothing when the random clip ends in it.
    stored.overwrite(changed, AUDIO[:-1] + bytes([AUDIO[-1] ^ 1]))
    stored.remove(gone)
    out = vigil(svc, "evidence", "verify", ok=False).output
    assert f"FAILED evidence {first} ({b.device_id} clip-3a)" in out
    assert "sha256 is " in out and changed in out
    assert f"FAILED evidence {second} ({b.device_id} clip-3b)" in out and "missing" in out
    assert "2 of 2 stored clips failed" in out
    failed = custody(svc, first)[-1]
    assert failed.action == "verify_failed" and failed.actor == "cli"
    assert "sha256 is" in failed.details["problem"]

    # One clip at a time; an unknown one is a clear error.
    stored.overwrite(changed, AUDIO)
    assert "1 stored clips checked" in vigil(svc, "evidence", "verify", "--id", str(first)).output
    assert (
        "no evidence 999999" in vigil(svc, "evidence", "verify", "--id", "999999", ok=False).output
    )


def test_playback_custody_route_for_safety_leads(svc: Running) -> None:
    badge, b = svc.badge("badge-st4")
    device_alert, alert_pk = raise_alert(svc, badge)
    pk = clip(svc, badge, b, "clip-4", alert_id=device_alert)
    ops = svc.user("op4")
    lead = svc.user("lead4", Role.SUPERVISOR)
    assert svc.http.get(f"/api/v1/evidence/{pk}/audio", headers=ops).status_code == 200

    r = svc.http.get(f"/api/v1/evidence/{pk}/custody", headers=lead)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["evidence"]["evidence_id"] == "clip-4" and body["evidence"]["purged_at"] is None
    assert [(e["action"], e["actor"]) for e in body["entries"]] == [
        ("uploaded", f"device:{b.device_id}"),
        ("played", "user:op4"),
    ]
    assert body["entries"][0]["details"]["sha256"] == body["evidence"]["sha256"]
    # The alert's timeline has it too, hash-chained with the rest.
    timeline = svc.http.get(f"/api/v1/alerts/{alert_pk}", headers=ops).json()["timeline"]
    (access,) = [e for e in timeline if e["kind"] == "evidence_accessed"]
    assert access["actor"] == "user:op4"
    assert svc.http.get(f"/api/v1/evidence/{pk}/custody", headers=ops).status_code == 403
    r = svc.http.get("/api/v1/evidence/999999/custody", headers=lead)
    assert r.status_code == 404 and r.json() == {"detail": "no evidence 999999"}


def test_a_clip_of_a_visit_only_has_custody_too(svc: Running) -> None:
    badge, b = svc.badge("badge-st5")
    visit = badge.start_visit(duration_s=3600, note="12 Elm St")
    badge.wait_for("visit_started", visit_id=visit, timeout=10)
    pk = clip(svc, badge, b, "memo-5", visit_id=visit)
    ev = _evidence(svc, pk)
    assert ev.alert_id is None and ev.visit_id is not None

    ops = svc.user("op5")
    played = svc.http.get(f"/api/v1/evidence/{pk}/audio", headers=ops)
    assert played.status_code == 200 and played.content == AUDIO
    assert [(c.action, c.actor) for c in custody(svc, pk)] == [
        ("uploaded", f"device:{b.device_id}"),
        ("played", "user:op5"),
    ]


def _hold(svc: Running, alert_pk: int, who: dict[str, str], **body: Any) -> Any:
    return svc.http.post(f"/api/v1/alerts/{alert_pk}/hold", json=body, headers=who)


def test_hold_and_release(svc: Running) -> None:
    badge, _ = svc.badge("badge-st6", org="North Council")
    _, alert_pk = raise_alert(svc, badge)
    lead = svc.user("lead6", Role.SUPERVISOR)
    url = f"/api/v1/alerts/{alert_pk}/hold"

    for bad in ({}, {"reason": "   "}, {"reason": "x" * 1001}, {"reason": "ok", "until": "x"}):
        assert _hold(svc, alert_pk, lead, **bad).status_code == 422, bad
    assert svc.http.post(url, json={"reason": "x"}, headers=svc.user("op6")).status_code == 403

    r = _hold(svc, alert_pk, lead, reason="Police investigation 4471")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["hold"] is True and out["hold_reason"] == "Police investigation 4471"
    assert out["held_by"] == "user:lead6" and out["held_at"] is not None
    r = _hold(svc, alert_pk, lead, reason="again")
    assert r.status_code == 409 and "already on hold" in r.json()["detail"]

    # Outside the organisation, the alert does not exist; nothing changes.
    svc.badge("badge-st6s", org="South Trust")  # makes the organisation
    south = svc.user("south-lead", Role.ADMIN, org="South Trust")
    r = svc.http.delete(url, headers=south)
    assert r.status_code == 404 and r.json() == {"detail": f"no alert {alert_pk}"}
    assert _hold(svc, alert_pk, south, reason="mine").status_code == 404

    r = svc.http.delete(url, headers=lead)
    assert r.status_code == 200 and r.json()["hold"] is False and r.json()["hold_reason"] is None
    r = svc.http.delete(url, headers=lead)
    assert r.status_code == 409 and r.json() == {"detail": f"alert {alert_pk} is not on hold"}

    kinds = timeline_kinds(svc, alert_pk)
    assert kinds.count("hold_placed") == 1 and kinds.count("hold_released") == 1
    with svc.store.session() as db:
        audited = db.execute(
            select(AuditEntry.action, AuditEntry.actor, AuditEntry.details)
            .where(AuditEntry.target == f"alert {alert_pk}")
            .order_by(AuditEntry.id)
        ).all()
    assert [(a, who) for a, who, _ in audited] == [
        ("hold_placed", "user:lead6"),
        ("hold_released", "user:lead6"),
    ]
    assert audited[1][2]["reason"] == "Police investigation 4471"
    assert vigil(svc, "audit", "verify").exit_code == 0  # the chain holds after all of it


def _close(svc: Running, alert_pk: int, days_ago: float) -> None:
    """Move an alert's closing back in time (resolved or cancelled, as it was)."""
    at = utcnow() - timedelta(days=days_ago)
    with svc.store.begin() as db:
        alert = db.get(Alert, alert_pk)
        assert alert is not None and alert.state in ("resolved", "cancelled")
        if alert.resolved_at is not None:
            alert.resolved_at = at
        else:
            alert.cancelled_at = at


def test_purge_respects_retention_and_holds(svc: Running) -> None:
    ops = svc.user("op7")
    lead = svc.user("lead7", Role.SUPERVISOR)
    clips: dict[str, int] = {}
    alerts: dict[str, int] = {}
    for name in ("old", "recent", "held", "open"):
        badge, b = svc.badge(f"badge-p-{name}")
        device_alert, alerts[name] = raise_alert(svc, badge)
        clips[name] = clip(svc, badge, b, f"clip-{name}", alert_id=device_alert)
        if name == "recent":  # cancelled by the worker, the other way an incident closes
            badge.cancel_alert(device_alert, b.cancel_pin)
            badge.wait_for("alert_cancelled", alert_id=device_alert, timeout=10)
        elif name != "open":
            r = svc.http.post(
                f"/api/v1/alerts/{alerts[name]}/resolve",
                json={"outcome": "false_alarm"},
                headers=ops,
            )
            assert r.status_code == 200, r.text
    _close(svc, alerts["old"], 91)
    _close(svc, alerts["recent"], 89)
    _close(svc, alerts["held"], 91)
    assert _hold(svc, alerts["held"], lead, reason="Tribunal").status_code == 200
    # A memo of a visit that ended 91 days ago, with no alert of its own.
    badge, b = svc.badge("badge-p-visit")
    visit = badge.start_visit(duration_s=3600)
    badge.wait_for("visit_started", visit_id=visit, timeout=10)
    clips["visit"] = clip(svc, badge, b, "memo-visit", visit_id=visit)
    badge.end_visit(visit)
    badge.wait_for("visit_ended", visit_id=visit, timeout=10)
    with svc.store.begin() as db:
        db.execute(
            update(Visit)
            .where(Visit.device_id == b.device_id)
            .values(
                started_at=utcnow() - timedelta(days=92), ended_at=utcnow() - timedelta(days=91)
            )
        )
    before = {name: _evidence(svc, pk).stored_path for name, pk in clips.items()}
    files = Path(svc.settings.evidence_dir)
    assert all((files / str(path)).is_file() for path in before.values())

    dry = vigil(svc, "evidence", "purge", "--dry-run").output
    assert f"would purge evidence {clips['old']} " in dry
    assert f"would purge evidence {clips['visit']} " in dry
    assert f"kept evidence {clips['held']} " in dry and "on hold: Tribunal" in dry
    assert "would purge 2 clips (retention 90 days)" in dry
    assert all((files / str(path)).is_file() for path in before.values())
    assert all(_evidence(svc, pk).purged_at is None for pk in clips.values())

    out = vigil(svc, "evidence", "purge").output
    assert "purged 2 clips (retention 90 days)" in out
    for name, pk in clips.items():
        ev = _evidence(svc, pk)
        gone = name in ("old", "visit")
        assert (files / str(before[name])).exists() is not gone, name
        assert (ev.purged_at is not None) is gone, name
        assert ev.sha256 is not None and ev.stored_path == before[name]  # the record stays
        last = custody(svc, pk)[-1]
        if gone:
            assert last.action == "purged" and last.actor == "cli"
            assert last.details["retention_days"] == 90 and last.details["sha256"] == ev.sha256
        else:
            assert last.action != "purged"
    with svc.store.session() as db:
        purged = db.scalars(
            select(AuditEntry.target).where(AuditEntry.action == "evidence_purged")
        ).all()
    assert sorted(purged) == sorted(
        f"evidence {clips[n]} ({_evidence(svc, clips[n]).device_id} {c})"
        for n, c in (("old", "clip-old"), ("visit", "memo-visit"))
    )

    r = svc.http.get(f"/api/v1/evidence/{clips['old']}/audio", headers=ops)
    assert r.status_code == 410 and "retention" in r.json()["detail"]
    assert svc.http.get(f"/api/v1/evidence/{clips['held']}/audio", headers=ops).status_code == 200

    # A second run finds nothing more; once the hold is released, the held clip goes.
    assert "purged 0 clips" in vigil(svc, "evidence", "purge").output
    assert svc.http.delete(f"/api/v1/alerts/{alerts['held']}/hold", headers=lead).status_code == 200
    assert "purged 1 clips" in vigil(svc, "evidence", "purge").output
    assert not (files / str(before["held"])).exists()
    # Verification skips what retention deleted.
    assert "2 stored clips checked" in vigil(svc, "evidence", "verify").output
