"""Expired cautions deleted on a schedule: hidden from every read once past their expiry
date (reads.py), deleted VIGIL_CAUTION_KEEP_DAYS later, audited and counted."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor import metrics
from monitor.audit.service import audit
from monitor.places.models import Caution

BATCH = 500


def _cutoff(on: date, keep_days: int) -> date:
    return on - timedelta(days=keep_days)


def any_due(db: Session, on: date, keep_days: int) -> bool:
    """Whether a caution is due for deletion (one indexed look-up, for every tick)."""
    return (
        db.scalar(select(Caution.id).where(Caution.expires_on < _cutoff(on, keep_days)).limit(1))
        is not None
    )


def delete_expired(db: Session, on: date, keep_days: int, batch: int = BATCH) -> int:
    """Delete up to `batch` cautions whose expiry date is more than `keep_days` before
    `on`, with one audit entry naming them (not what they said); returns how many."""
    ids = list(
        db.scalars(
            select(Caution.id)
            .where(Caution.expires_on < _cutoff(on, keep_days))
            .order_by(Caution.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return 0
    db.execute(delete(Caution).where(Caution.id.in_(ids)))
    audit(
        db,
        "system",
        "cautions_expired",
        f"{len(ids)} caution{'s' if len(ids) != 1 else ''}",
        cautions=ids,
        keep_days=keep_days,
    )
    metrics.CAUTIONS_EXPIRED.inc(len(ids))
    return len(ids)
