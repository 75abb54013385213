"""Evidence routes: the device's upload (checked against the declared sha256), playback
and each clip's chain of custody."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from monitor.alerts import service as alerts
from monitor.deps import (
    CurrentDevice,
    CurrentUser,
    EvidenceStoreDep,
    ReadSessionDep,
    RowId,
    ScopeDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    Supervisor,
    client_address,
)
from monitor.evidence import custody, service, storage
from monitor.evidence.models import CustodyOut, Evidence, EvidenceOut
from monitor.orgs.scope import Scope
from monitor.protocol import RefId
from monitor.users.accounts import actor_of
from monitor.visits.models import Visit

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/devices", tags=["evidence"])

DevicePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# The evidence message's own rule for its id (no NUL, at most 128 characters): an id the
# protocol refuses is refused in the upload's URL too (422), on either database.
EvidencePath = Annotated[RefId, Path()]


@router.put("/{device_id}/evidence/{evidence_id}")
async def upload(
    device_id: DevicePath,
    evidence_id: EvidencePath,
    request: Request,
    device: CurrentDevice,
    settings: SettingsDep,
    store: StoreDep,
    evidence: EvidenceStoreDep,
) -> EvidenceOut:
    """Upload a recording's bytes (HTTP Basic auth: DEVICE and its secret)."""
    limit = settings.max_evidence_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"evidence is limited to {limit} bytes"
            )
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "no bytes in the request body")

    try:
        # On a worker thread: hashing up to VIGIL_MAX_EVIDENCE_BYTES on the event loop would
        # hold up the alert routes and every console meanwhile.
        return await run_in_threadpool(
            partial(
                service.keep_upload,
                store,
                evidence,
                device=device,
                evidence_id=evidence_id,
                data=data,
            )
        )
    except service.EvidenceRefused as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e
    except storage.StoreUnavailable as e:
        log.error("evidence upload from %s not stored: %s", device.id, e)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the evidence store is unavailable: upload again"
        ) from e


AUDIO_TYPES = {
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "amr": "audio/amr",
    # What browsers' MediaRecorder makes: the worker app's clips (Chrome, Firefox; Safari).
    "webm": "audio/webm",
    "mp4": "audio/mp4",
}


def _in_scope(db: Session, ev: Evidence, scope: Scope) -> bool:
    """A clip belongs to the alert or visit it was recorded for; one tied to neither yet
    is heard by the whole service's people only."""
    if scope.service_wide:
        return True
    if ev.alert_id is not None:
        return alerts.in_scope(db, ev.alert_id, scope)
    if ev.visit_id is not None:
        q = select(Visit.id).where(
            Visit.id == ev.visit_id, scope.covers(Visit.worker_id, Visit.org_id)
        )
        return db.scalar(q) is not None
    return False


playback = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])


def _visible(db: Session, evidence_pk: int, scope: Scope, unknown: str) -> Evidence:
    ev = db.get(Evidence, evidence_pk)
    if ev is None or not _in_scope(db, ev, scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, unknown)
    return ev


@playback.get("/{evidence_pk}/audio")
def audio(
    evidence_pk: RowId,
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    scope: ScopeDep,
    evidence: EvidenceStoreDep,
) -> StreamingResponse:
    """The uploaded recording, for playback in the console."""
    ev = _visible(db, evidence_pk, scope, "no uploaded audio for this evidence")
    if ev.purged_at is not None:
        raise HTTPException(
            status.HTTP_410_GONE,
            f"the audio was deleted on {ev.purged_at:%Y-%m-%d} under the retention policy; "
            "its record and sha256 are kept",
        )
    if ev.stored_path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no uploaded audio for this evidence")
    try:
        opened = evidence.open(ev.stored_path)
    except storage.MissingObject as e:
        log.error("%s: %s", custody.label(ev), e)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "the uploaded audio is missing from the evidence store"
        ) from e
    except storage.StoreUnavailable as e:
        log.error("%s: %s", custody.label(ev), e)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the evidence store is unavailable: try again"
        ) from e
    media = AUDIO_TYPES.get((ev.codec or "").lower(), "application/octet-stream")
    # Every access to evidence is on the record (who, when, which clip), committed before
    # the first byte goes out; a clip of an alert is on the alert's timeline too.
    custody.record(db, ev, actor_of(user), "played", address=client_address(request))
    if ev.alert_id is not None:
        alert = alerts.get(db, ev.alert_id)
        alerts.record(
            db,
            alert,
            "evidence_accessed",
            actor_of(user),
            f"Audio {ev.evidence_id} played or downloaded",
            evidence=ev.evidence_id,
        )
    return StreamingResponse(
        opened.chunks(), media_type=media, headers={"Content-Length": str(opened.size)}
    )


@playback.get("/{evidence_pk}/custody")
def custody_of(
    evidence_pk: RowId, db: ReadSessionDep, user: Supervisor, scope: ScopeDep
) -> CustodyOut:
    """The clip's chain of custody: its upload, every playback, check and deletion."""
    ev = _visible(db, evidence_pk, scope, f"no evidence {evidence_pk}")
    return CustodyOut(
        evidence=EvidenceOut.model_validate(ev), entries=custody.entries(db, evidence_pk)
    )
