"""Evidence service functions: references from devices, uploads checked against their sha256."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.db import Store, utcnow
from monitor.devices.models import Device
from monitor.events import AlertAside, Kind, emit
from monitor.evidence import custody
from monitor.evidence.models import Evidence, EvidenceCustody, EvidenceOut
from monitor.evidence.storage import EvidenceStore, new_key
from monitor.protocol import EvidenceMsg
from monitor.visits.models import Visit

log = logging.getLogger(__name__)


class EvidenceRefused(Exception):
    """The evidence cannot be accepted; the message says why. Nothing was changed."""

    def __init__(self, reason: str, *, discard_upload: bool = False) -> None:
        super().__init__(reason)
        # The bytes uploaded earlier are not what the device now declares: keep neither.
        self.discard_upload = discard_upload


def _find(db: Session, device_id: str, evidence_id: str) -> Evidence | None:
    return db.scalar(
        select(Evidence)
        .where(Evidence.device_id == device_id, Evidence.evidence_id == evidence_id)
        .with_for_update()
    )


def _link(db: Session, ev: Evidence) -> None:
    """Tie the clip to its alert or visit, if that has arrived; tell the alert's timeline."""
    if ev.alert_id is None and ev.device_alert_id is not None:
        alert = alerts.find_device_alert(db, ev.device_id, ev.device_alert_id)
        if alert is not None:
            ev.alert_id = alert.id
    if ev.visit_id is None and ev.device_visit_id is not None:
        ev.visit_id = db.scalar(
            select(Visit.id).where(
                Visit.device_id == ev.device_id, Visit.device_visit_id == ev.device_visit_id
            )
        )


def announce(db: Session, ev: Evidence, what: str, actor: str | None = None) -> None:
    """The clip in its alert's timeline, by `actor` (the device that sent it, unless said)."""
    db.flush()
    if ev.alert_id is None:
        return  # a visit's clip: shown with the alert the visit may yet have
    alert = alerts.get(db, ev.alert_id)
    alerts.record(
        db,
        alert,
        "evidence",
        actor or f"device:{ev.device_id}",
        f"Audio {ev.evidence_id} {what}",
        evidence=ev.evidence_id,
        sha256=ev.sha256,
        duration_ms=ev.duration_ms,
    )
    scope = alerts.scope_keys(db, alert)
    details = {"evidence_id": ev.id, "alert_id": ev.alert_id, "visit_id": ev.visit_id}
    emit(
        db,
        AlertAside(
            kind=Kind.ALERT_EVIDENCE,
            org_id=scope["org_id"],
            team_id=scope["team_id"],
            details=details,
        ),
    )


def reference(db: Session, *, device: Device, msg: EvidenceMsg, received_at: datetime) -> Evidence:
    """Record a device's evidence message. Raises EvidenceRefused on a hash mismatch."""
    ev = _find(db, device.id, msg.id)
    digest = msg.sha256.lower()
    if ev is not None and ev.sha256 is not None:
        if ev.sha256 != digest:
            raise EvidenceRefused(f"evidence {msg.id} was already recorded with another sha256")
        return ev  # a resent copy
    if ev is not None and ev.uploaded_sha256 is not None and ev.uploaded_sha256 != digest:
        raise EvidenceRefused(
            "sha256 does not match the uploaded bytes; upload them again", discard_upload=True
        )
    if ev is None:
        ev = Evidence(device_id=device.id, evidence_id=msg.id)
        db.add(ev)
    ev.device_alert_id, ev.device_visit_id = msg.alert_id, msg.visit_id
    ev.kind, ev.codec, ev.duration_ms = msg.kind, msg.codec, msg.duration_ms
    ev.size_bytes, ev.sha256, ev.uri = msg.bytes, digest, msg.uri
    ev.device_ts, ev.referenced_at = msg.at, received_at
    _link(db, ev)
    announce(db, ev, "recorded" + (" (uploaded)" if ev.uploaded_at else ""))
    return ev


def link_to_alert(db: Session, alert: Alert) -> None:
    """Evidence that arrived before its alert is tied to it when the alert comes."""
    if alert.device_alert_id is None:
        return
    for ev in db.scalars(
        select(Evidence).where(
            Evidence.device_id == alert.device_id,
            Evidence.device_alert_id == alert.device_alert_id,
            Evidence.alert_id.is_(None),
        )
    ):
        ev.alert_id = alert.id
        announce(db, ev, "recorded")


def link_to_visit(db: Session, device_id: str, device_visit_id: str) -> None:
    """A voice memo sent before its visit started is tied to the visit when it starts."""
    visit_id = db.scalar(
        select(Visit.id).where(
            Visit.device_id == device_id, Visit.device_visit_id == device_visit_id
        )
    )
    if visit_id is None:
        return
    for ev in db.scalars(
        select(Evidence).where(
            Evidence.device_id == device_id,
            Evidence.device_visit_id == device_visit_id,
            Evidence.visit_id.is_(None),
        )
    ):
        ev.visit_id = visit_id


def discard_upload(db: Session, device_id: str, evidence_id: str, store: EvidenceStore) -> None:
    """Forget an upload its evidence message disowned (another sha256): the bytes were never
    evidence of anything, so they go, with their record and its custody."""
    ev = _find(db, device_id, evidence_id)
    if ev is None:
        return
    if ev.stored_path:
        store.delete(ev.stored_path)
    db.execute(delete(EvidenceCustody).where(EvidenceCustody.evidence_pk == ev.id))
    db.delete(ev)


def record_upload(
    db: Session,
    *,
    device: Device,
    evidence_id: str,
    digest: str,
    size: int,
    key: str,
    where: str,
    source: dict[str, Any] | None = None,
    actor: str | None = None,
) -> tuple[Evidence, bool]:
    """Record bytes saved in the evidence store under `key` (at `where`) against the
    evidence, checked against the sha256 the device declared (if it has). Returns
    (evidence, False) when the same bytes were already uploaded, in which case the object
    at `key` is not needed. Raises EvidenceRefused on a mismatch. `source` says where bytes
    the device did not upload itself came from (a call recording fetched from Twilio), and
    `actor` who brought them (custody and timeline), if not the device itself."""
    ev = _find(db, device.id, evidence_id)
    if ev is not None and ev.sha256 is not None and ev.sha256 != digest:
        raise EvidenceRefused(
            f"sha256 of the uploaded bytes is {digest}, but the evidence message says {ev.sha256}"
        )
    if ev is not None and ev.uploaded_sha256 is not None:
        if ev.uploaded_sha256 != digest:
            raise EvidenceRefused(f"evidence {evidence_id} was already uploaded with other bytes")
        return ev, False
    if ev is None:
        ev = Evidence(device_id=device.id, evidence_id=evidence_id)
        db.add(ev)
    ev.uploaded_at = utcnow()
    ev.uploaded_sha256 = digest
    ev.stored_path = key
    if ev.size_bytes is None:
        ev.size_bytes = size
    db.flush()
    details: dict[str, Any] = {"sha256": digest, "bytes": size, "where": where}
    if source:
        details["source"] = source
    custody.record(db, ev, actor or f"device:{device.id}", "uploaded", **details)
    if ev.sha256 is not None:
        announce(db, ev, "uploaded and verified", actor)
    return ev, True


def keep_upload(
    store: Store,
    evidence: EvidenceStore,
    *,
    device: Device,
    evidence_id: str,
    data: bytes,
    source: dict[str, Any] | None = None,
    actor: str | None = None,
) -> EvidenceOut:
    """Store a recording's bytes and record them against the evidence (`record_upload`), in
    a transaction of its own. It blocks (hashing, storing): never call it on the event loop.
    Raises EvidenceRefused on a mismatch, storage.StoreUnavailable when the bytes cannot be
    written."""
    digest = hashlib.sha256(data).hexdigest()
    key = new_key(device.id)
    # The bytes are stored before the transaction that records them: a record never points
    # at bytes that are not there.
    evidence.put(key, data)
    kept = False
    try:
        with store.begin() as db:
            ev, fresh = record_upload(
                db,
                device=device,
                evidence_id=evidence_id,
                digest=digest,
                size=len(data),
                key=key,
                where=evidence.describe(key),
                source=source,
                actor=actor,
            )
            out = EvidenceOut.model_validate(ev)
        kept = fresh  # only once committed
        return out
    finally:
        if not kept:
            _forget(evidence, key)


def keep_for_alert(
    store: Store,
    evidence: EvidenceStore,
    *,
    alert_id: int,
    evidence_id: str,
    data: bytes,
    codec: str,
    duration_ms: int | None,
    source: dict[str, Any],
    actor: str,
) -> EvidenceOut:
    """Audio the service itself recorded about an alert (a call an operator placed), kept
    (`keep_upload`: stored, hashed, custody) under the alert's device and tied to the alert
    at once, as a device's clip is once referenced: the timeline says so with its sha256.
    Custody and timeline name `actor` (the user who placed the call), not the device: the
    worker's device did not send it."""
    with store.session() as db:
        alert = alerts.get(db, alert_id)
        device = db.get(Device, alert.device_id)
        assert device is not None  # an alert's device is never deleted
        db.expunge(device)
    out = keep_upload(
        store,
        evidence,
        device=device,
        evidence_id=evidence_id,
        data=data,
        source=source,
        actor=actor,
    )
    with store.begin() as db:
        ev = _find(db, device.id, evidence_id)
        assert ev is not None
        if ev.sha256 is None:  # not a second copy of the same bytes
            ev.alert_id, ev.kind, ev.codec = alert_id, "audio", codec
            ev.duration_ms, ev.sha256, ev.referenced_at = duration_ms, ev.uploaded_sha256, utcnow()
            announce(db, ev, "recorded (uploaded)", actor)
        out = EvidenceOut.model_validate(ev)
    return out


def _forget(evidence: EvidenceStore, key: str) -> None:
    """Remove bytes no record points at; failing that, say so (nothing else will find them)."""
    try:
        evidence.delete(key)
    except Exception:
        log.exception("could not delete unrecorded evidence at %s", evidence.describe(key))
