"""Messages that arrived before what they are about: held, applied later, or refused.

With one replica a device's messages arrive in order. With several sharing the traffic, a
cancel can overtake its alert, or a check-in its visit's start, on the way to two replicas.
Such a message is held in the store rather than refused, and applied in the transaction
that stores the alert or visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from monitor.devices.commands import queue_command
from monitor.ingest import refusals
from monitor.ingest.models import WaitingMessage
from monitor.protocol import Parsed, Refusal, parse, ref_id_of


def hold(
    db: Session,
    *,
    device_id: str,
    suffix: str,
    ref_id: str,
    topic: str,
    payload: bytes,
    received_at: datetime,
) -> None:
    db.add(
        WaitingMessage(
            device_id=device_id,
            suffix=suffix,
            ref_id=ref_id,
            topic=topic,
            payload=payload.decode("utf-8"),
            received_at=received_at,
        )
    )


@dataclass(frozen=True)
class Held:
    parsed: Parsed
    topic: str
    payload: bytes
    received_at: datetime

    def refused(self, code: str, reason: str) -> refusals.Refused:
        p = self.parsed
        return refusals.Refused(
            Refusal(code, reason, p.device_id, p.suffix, ref_id_of(p.msg)),
            self.topic,
            self.payload,
            self.received_at,
        )


def count(db: Session, device_id: str) -> int:
    """Messages of this device waiting for what they are about."""
    n = db.scalar(
        select(func.count())
        .select_from(WaitingMessage)
        .where(WaitingMessage.device_id == device_id)
    )
    return n or 0


def take(db: Session, device_id: str, suffix: str, ref_id: str) -> list[Held]:
    """The messages waiting for (device, ref id), oldest first; removed from the store."""
    rows = db.scalars(
        select(WaitingMessage)
        .where(
            WaitingMessage.device_id == device_id,
            WaitingMessage.suffix == suffix,
            WaitingMessage.ref_id == ref_id,
        )
        .order_by(WaitingMessage.id)
        .with_for_update()
    ).all()
    out = []
    for row in rows:
        payload = row.payload.encode("utf-8")
        parsed = parse(row.topic, payload)
        if isinstance(parsed, Parsed):  # it was valid when held
            out.append(Held(parsed, row.topic, payload, row.received_at))
        db.delete(row)
    return out


def expire(db: Session, now: datetime, max_age_s: float) -> int:
    """Refuse what waited too long: what it was about never came."""
    rows = db.scalars(
        select(WaitingMessage)
        .where(WaitingMessage.received_at <= now - timedelta(seconds=max_age_s))
        .with_for_update(skip_locked=True)
        .limit(500)
    ).all()
    for row in rows:
        what = "alert" if row.suffix == "alert/cancel" else "visit"
        code = "unknown_alert" if what == "alert" else "visit_refused"
        refused = refusals.Refused(
            Refusal(code, f"unknown {what} {row.ref_id}", row.device_id, row.suffix, row.ref_id),
            row.topic,
            row.payload.encode("utf-8"),
            row.received_at,
        )
        for device_id, fields in refusals.refuse(db, refused):
            queue_command(db, device_id, "rejected", **fields)
    if rows:
        db.execute(delete(WaitingMessage).where(WaitingMessage.id.in_([r.id for r in rows])))
    return len(rows)
