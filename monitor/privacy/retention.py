"""Location history outside alerts and visits is deleted once older than the retention time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor.alerts.models import Alert
from monitor.alerts.service import TRAIL_BEFORE
from monitor.devices.models import LocationFix
from monitor.visits.models import Visit

BATCH = 5000

Window = tuple[datetime, datetime | None]  # from, to (None: still open)


@dataclass
class Batch:
    doomed: list[int]  # ids of fixes to delete
    settled: int  # every fix up to this id is deleted with this batch or kept for good


def expired(
    db: Session, now: datetime, keep: timedelta, after: int = 0, batch: int = BATCH
) -> Iterator[Batch]:
    """The fixes, after id `after`, received before the retention time that belong to no
    alert and no visit, a batch at a time, oldest first.

    An alert keeps the trail its page shows (from TRAIL_BEFORE before it was raised) until
    it is resolved or cancelled; a visit keeps its fixes from start to end; open ones keep
    theirs whatever their age. A fix kept once is kept for good: a window that covers it now
    still will when it closes. Age counts from when the fix was received: a device's clock
    may be wrong, the service's is not. Windows are compared here rather than in SQL, whose
    date arithmetic differs between SQLite and PostgreSQL.

    Fixes are walked in id order, the order they were stored, and the walk stops at the
    first one still within the retention time. A caller that remembers `settled` starts
    the next walk there, so kept history is not read again and again."""
    cutoff = now - keep
    while True:
        rows = db.execute(
            select(
                LocationFix.id,
                LocationFix.device_id,
                LocationFix.device_ts,
                LocationFix.received_at,
            )
            .where(LocationFix.id > after)
            .order_by(LocationFix.id)
            .limit(batch)
        ).all()
        old = []
        for r in rows:
            if r.received_at >= cutoff:
                break
            old.append(r)
        if not old:
            return
        windows = _windows(db, {r.device_id for r in old})
        doomed = [
            r.id
            for r in old
            if not any(_within(r.device_ts, w) for w in windows.get(r.device_id, ()))
        ]
        after = old[-1].id
        yield Batch(doomed, after)
        if len(old) < len(rows) or len(rows) < batch:
            return


def _windows(db: Session, device_ids: set[str]) -> dict[str, list[Window]]:
    found: dict[str, list[Window]] = defaultdict(list)
    for device_id, raised, resolved, cancelled in db.execute(
        select(Alert.device_id, Alert.raised_at, Alert.resolved_at, Alert.cancelled_at).where(
            Alert.device_id.in_(device_ids)
        )
    ):
        found[device_id].append((raised - TRAIL_BEFORE, resolved or cancelled))
    for device_id, started, ended in db.execute(
        select(Visit.device_id, Visit.started_at, Visit.ended_at).where(
            Visit.device_id.in_(device_ids)
        )
    ):
        found[device_id].append((started, ended))
    return found


def _within(at: datetime, window: Window) -> bool:
    start, end = window
    return start <= at and (end is None or at <= end)


def delete_fixes(db: Session, ids: list[int]) -> int:
    if ids:
        db.execute(delete(LocationFix).where(LocationFix.id.in_(ids)))
    return len(ids)
