"""The device's evidence upload: PUT the bytes, checked against the declared sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.deps import (
    CurrentDevice,
    CurrentUser,
    RowId,
    ScopeDep,
    SessionDep,
    SettingsDep,
    StoreDep,
)
from monitor.evidence import service
from monitor.evidence.models import Evidence, EvidenceOut
from monitor.orgs.scope import Scope
from monitor.visits.models import Visit

router = APIRouter(prefix="/api/v1/devices", tags=["evidence"])

DevicePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
EvidencePath = Annotated[str, Path(min_length=1, max_length=128)]


@router.put("/{device_id}/evidence/{evidence_id}")
async def upload(
    device_id: DevicePath,
    evidence_id: EvidencePath,
    request: Request,
    device: CurrentDevice,
    settings: SettingsDep,
    store: StoreDep,
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

    store_dir = FsPath(settings.evidence_dir)
    digest = hashlib.sha256(data).hexdigest()

    def keep() -> EvidenceOut:
        rel = service.save_bytes(store_dir, device.id, data)
        kept = False
        try:
            with store.begin() as db:
                ev, fresh = service.record_upload(
                    db,
                    device=device,
                    evidence_id=evidence_id,
                    digest=digest,
                    size=len(data),
                    rel=rel,
                )
                out = EvidenceOut.model_validate(ev)
            kept = fresh  # only once committed
            return out
        finally:
            if not kept:
                (store_dir / rel).unlink(missing_ok=True)

    try:
        return await run_in_threadpool(keep)
    except service.EvidenceRefused as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e


AUDIO_TYPES = {
    "opus": "audio/ogg",
    "ogg": "audio/ogg",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "amr": "audio/amr",
}


def _in_scope(db: Session, ev: Evidence, scope: Scope) -> bool:
    """A clip belongs to the alert or visit it was recorded for; one tied to neither yet
    is heard by the whole service's people only."""
    if scope.service_wide:
        return True
    if ev.alert_id is not None:
        q = select(Alert.id).where(
            Alert.id == ev.alert_id, scope.covers(Alert.worker_id, Alert.org_id)
        )
    elif ev.visit_id is not None:
        q = select(Visit.id).where(
            Visit.id == ev.visit_id, scope.covers(Visit.worker_id, Visit.org_id)
        )
    else:
        return False
    return db.scalar(q) is not None


playback = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])


@playback.get("/{evidence_pk}/audio")
def audio(
    evidence_pk: RowId,
    db: SessionDep,
    user: CurrentUser,
    scope: ScopeDep,
    settings: SettingsDep,
) -> FileResponse:
    """The uploaded recording, for playback in the console."""
    ev = db.get(Evidence, evidence_pk)
    if ev is None or ev.stored_path is None or not _in_scope(db, ev, scope):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no uploaded audio for this evidence")
    media = AUDIO_TYPES.get((ev.codec or "").lower(), "application/octet-stream")
    if ev.alert_id is not None:
        # Every access to evidence is on the record: who, when, which clip.
        alert = alerts.get(db, ev.alert_id)
        alerts.record(
            db,
            alert,
            "evidence_accessed",
            f"user:{user.username}",
            f"Audio {ev.evidence_id} played or downloaded",
            evidence=ev.evidence_id,
        )
    return FileResponse(FsPath(settings.evidence_dir) / ev.stored_path, media_type=media)
