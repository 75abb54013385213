"""Retention: the bytes of a clip are deleted a set time after its incident closed, unless
the incident is on hold; the record, its sha256 and its custody stay."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts.models import Alert
from monitor.audit.service import audit
from monitor.db import Store, utcnow
from monitor.evidence import custody
from monitor.evidence.models import Evidence
from monitor.evidence.storage import EvidenceStore
from monitor.visits.models import Visit


@dataclass
class Decision:
    evidence_pk: int
    label: str
    where: str
    # What the clip is evidence of, e.g. "alert 12 closed 2026-01-05".
    incident: str
    # Why it stays (a hold, an open incident, not yet old enough); None when it goes.
    kept: str | None = None
    # Why deleting it failed; nothing was changed for it.
    failed: str | None = None


def candidates(db: Session, cutoff: datetime) -> list[int]:
    """Clips whose alert, or (for a clip of a visit only) visit, closed before `cutoff`.
    Each is looked at again, under lock, before anything is deleted."""
    closed_at = func.coalesce(Alert.resolved_at, Alert.cancelled_at)
    closed_alerts = select(Alert.id).where(closed_at < cutoff)
    ended_visits = select(Visit.id).where(Visit.ended_at < cutoff)
    q = select(Evidence.id).where(
        Evidence.stored_path.is_not(None),
        Evidence.purged_at.is_(None),
        or_(
            Evidence.alert_id.in_(closed_alerts),
            and_(Evidence.alert_id.is_(None), Evidence.visit_id.in_(ended_visits)),
        ),
    )
    return list(db.scalars(q.order_by(Evidence.id)))


def _alerts_of(db: Session, ev: Evidence, visit: Visit | None, lock: bool) -> list[Alert]:
    """Every alert the clip is evidence for. A visit's clip (its memo) is shown with the
    alerts raised about the visit or during it, so each of those must have closed too."""
    conds = []
    if ev.alert_id is not None:
        conds.append(Alert.id == ev.alert_id)
    if visit is not None:
        during = and_(
            Alert.device_id == visit.device_id,
            Alert.raised_at >= visit.started_at,
            Alert.raised_at <= (visit.ended_at or utcnow()),
        )
        conds.append(or_(Alert.visit_id == visit.id, during))
    if not conds:
        return []
    # The alerts' row locks: a hold placed at the same moment waits for this decision, or
    # this decision sees it (monitor/alerts/holds.py takes the same lock).
    q = select(Alert).where(or_(*conds)).order_by(Alert.id)
    return list(db.scalars(q.with_for_update() if lock else q))


def decide(db: Session, ev: Evidence, cutoff: datetime, *, lock: bool) -> tuple[str, str | None]:
    """(what the clip is evidence of, why it is kept or None when it is due)."""
    visit = db.get(Visit, ev.visit_id) if ev.visit_id is not None else None
    alerts = _alerts_of(db, ev, visit, lock)
    if not alerts and visit is None:
        return "nothing", "tied to no alert or visit"
    closed: list[datetime] = []
    for alert in alerts:
        if alert.hold:
            return f"alert {alert.id}", f"alert {alert.id} is on hold: {alert.hold_reason}"
        end = alert.resolved_at or alert.cancelled_at
        if rules.is_open(alert) or end is None:
            return f"alert {alert.id}", f"alert {alert.id} is still open"
        closed.append(end)
    if visit is not None:
        if visit.ended_at is None:
            return f"visit {visit.id}", f"visit {visit.id} is still open"
        closed.append(visit.ended_at)
    last = max(closed)
    what = f"alert {ev.alert_id}" if ev.alert_id is not None else f"visit {ev.visit_id}"
    incident = f"{what} closed {last:%Y-%m-%d}"
    if last >= cutoff:
        return incident, "closed too recently"
    return incident, None


def purge(
    store: Store,
    evidence: EvidenceStore,
    *,
    days: int,
    dry_run: bool = False,
    actor: str = "cli",
) -> Iterator[Decision]:
    """Delete the bytes of every clip past retention, one clip per transaction; yield what
    was decided for each clip looked at."""
    now = utcnow()
    cutoff = now - timedelta(days=days)
    with store.session() as db:
        ids = candidates(db, cutoff)
    for pk in ids:
        if dry_run:
            with store.session() as db:
                decision = _one(db, pk, cutoff, evidence, lock=False)
        else:
            decision = _purge_one(store, evidence, pk, cutoff, now, days, actor)
        if decision is not None:
            yield decision


def _one(
    db: Session, pk: int, cutoff: datetime, evidence: EvidenceStore, *, lock: bool
) -> Decision | None:
    ev = db.get(Evidence, pk, with_for_update=lock)
    if ev is None or ev.stored_path is None or ev.purged_at is not None:
        return None  # purged by a run at the same moment
    incident, kept = decide(db, ev, cutoff, lock=lock)
    return Decision(pk, custody.label(ev), evidence.describe(ev.stored_path), incident, kept)


def _purge_one(
    store: Store,
    evidence: EvidenceStore,
    pk: int,
    cutoff: datetime,
    now: datetime,
    days: int,
    actor: str,
) -> Decision | None:
    decision = None
    try:
        with store.begin() as db:
            decision = _one(db, pk, cutoff, evidence, lock=True)
            if decision is None or decision.kept is not None:
                return decision
            ev = db.get(Evidence, pk)
            assert ev is not None and ev.stored_path is not None
            details: dict[str, Any] = {
                "where": decision.where,
                "sha256": ev.uploaded_sha256,
                "incident": decision.incident,
                "retention_days": days,
            }
            ev.purged_at = now
            custody.record(db, ev, actor, "purged", **details)
            audit(db, actor, "evidence_purged", decision.label, **details)
            db.flush()
            # Deleted last, under the locks: if the deletion fails, nothing above is kept.
            evidence.delete(ev.stored_path)
    except Exception as e:
        if decision is None:
            raise
        decision.failed = f"{type(e).__name__}: {e}"
    return decision
