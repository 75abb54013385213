"""A call to the worker line, recorded by Twilio: the recording fetched
(escalation.recordings), kept as the alert's audio evidence (evidence.keep_upload: sha256,
custody), then referenced by an `evidence` message of the line device, as the worker app's
clips are uploaded and then referenced, so ingest ties it to the alert and the console plays
it like any other."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import HTTPException
from sqlalchemy import select

from escalation.inbound import first_time
from escalation.models import TwilioRequestSeen
from escalation.recordings import FetchFailed, fetch
from gateways.line_workers import KIND
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.config import Settings
from monitor.db import Store
from monitor.devices.models import Device
from monitor.events import Kind
from monitor.evidence import service as evidence
from monitor.evidence.storage import EvidenceStore, StoreUnavailable

Submit = Callable[[str, str, dict[str, Any]], None]


def _note(store: Store, alert_id: int, text: str, recording_sid: str, key: str | None) -> None:
    with store.begin() as db:
        if key is not None:
            first_time(db, key)
        alert = alerts.get(db, alert_id, for_update=True)
        alerts.record(db, alert, "recording", "twilio", text, recording=recording_sid)
        alerts.announce(db, Kind.ALERT_UPDATED, alert)


def take(
    store: Store,
    evidence_store: EvidenceStore,
    settings: Settings,
    *,
    submit: Submit,
    recording_sid: str,
    call_sid: str,
    status: str,
    duration_s: str,
) -> None:
    """Twilio says a recording of a call to the line is ready (or has no audio)."""
    key = f"recording:{recording_sid}"
    with store.session() as db:
        if db.get(TwilioRequestSeen, key) is not None:
            raise HTTPException(409, "this request was received before: a replay")
        row = db.execute(
            select(Alert.id, Device)
            .join(Device, Device.id == Alert.device_id)
            .where(Alert.device_alert_id == f"call-{call_sid}", Device.kind == KIND)
        ).first()
        if row is None:
            raise HTTPException(404, "no alert of the worker line was raised by this call")
        alert_id, device = row
        db.expunge(device)
    if status != "completed":
        _note(
            store, alert_id, f"Recording {recording_sid} of the call: {status}", recording_sid, key
        )
        return
    try:
        data, codec, duration = fetch(settings, recording_sid, call_sid)
    except FetchFailed as why:
        # Twilio does not send the status again: the timeline keeps the recording's sid, by
        # which it can still be found in Twilio's console.
        _note(store, alert_id, f"Recording {recording_sid} not fetched: {why}", recording_sid, None)
        raise HTTPException(502, f"the recording was not fetched: {why}") from why
    evidence_id = f"rec-{recording_sid}"
    source = {"twilio_recording": recording_sid, "call": call_sid}
    try:
        evidence.keep_upload(
            store, evidence_store, device=device, evidence_id=evidence_id, data=data, source=source
        )
    except StoreUnavailable as exc:
        raise HTTPException(503, "the evidence store is unavailable") from exc
    except evidence.EvidenceRefused as exc:
        raise HTTPException(422, str(exc)) from exc
    seconds = (
        duration if duration is not None else int(duration_s) if duration_s.isdigit() else None
    )
    body: dict[str, Any] = {
        "id": evidence_id,
        "alert_id": f"call-{call_sid}",
        "kind": "audio",
        "codec": codec,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    if seconds is not None:
        body["duration_ms"] = seconds * 1000
    submit(device.id, "evidence", body)
    with store.begin() as db:
        first_time(db, key)
