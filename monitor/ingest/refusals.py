"""Recording refused device messages: the row operators see, the metric, the `rejected` reply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from monitor.events import emit
from monitor.ingest.messages import Refusal
from monitor.ingest.models import RefusedMessage

EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Refused:
    refusal: Refusal
    topic: str
    payload: bytes
    at: datetime


def excerpt(payload: bytes) -> str:
    text = payload[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL


def row(r: Refused) -> dict[str, Any]:
    return {
        "at": r.at,
        "topic": r.topic[:300],
        "device_id": r.refusal.device_id,
        "reason": r.refusal.reason,
        "excerpt": excerpt(r.payload),
        "size_bytes": len(r.payload),
    }


def record(db: Session, r: Refused) -> None:
    db.add(RefusedMessage(**row(r)))


def reply(r: Refused) -> tuple[str, dict[str, Any]] | None:
    """The `rejected` command for the device, where the device can be told."""
    if r.refusal.device_id is None or r.refusal.suffix is None:
        return None
    fields = {"ref": r.refusal.suffix, "reason": r.refusal.reason}
    if r.refusal.ref_id is not None:
        fields["id"] = r.refusal.ref_id
    return r.refusal.device_id, fields


def refuse(db: Session, r: Refused) -> list[tuple[str, dict[str, Any]]]:
    """Record a refusal (counted once committed); returns the `rejected` reply, if any."""
    record(db, r)
    emit(db, "device.refused", code=r.refusal.code, device_id=r.refusal.device_id)
    answer = reply(r)
    return [] if answer is None else [answer]
