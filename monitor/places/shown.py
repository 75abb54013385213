"""Reads of cautions for an alert, recorded in its hash-chained timeline: once per person
per alert, so that the record says who was shown what was known about the place."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts
from monitor.alerts.models import AlertEvent
from monitor.events import Kind

SHOWN = "cautions_shown"


def already_shown(db: Session, alert_id: int, actor: str) -> bool:
    return (
        db.scalar(
            select(AlertEvent.id)
            .where(
                AlertEvent.alert_id == alert_id,
                AlertEvent.kind == SHOWN,
                AlertEvent.actor == actor,
            )
            .limit(1)
        )
        is not None
    )


def record_shown(
    db: Session, alert_id: int, *, actor: str, who: str, place_id: int, caution_ids: list[int]
) -> bool:
    """Write the entry unless this person was shown the alert's cautions before; under the
    alert's row lock, as every writer of its timeline, so two reads at once write one."""
    alert = alerts.get(db, alert_id, for_update=True)
    if already_shown(db, alert_id, actor):
        return False
    text = f"Cautions at this address shown to {who}: {len(caution_ids)}"
    alerts.record(db, alert, SHOWN, actor, text, place_id=place_id, cautions=caution_ids)
    alerts.announce(db, Kind.ALERT_UPDATED, alert)
    return True
