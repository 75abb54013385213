"""Holds: an incident under investigation keeps its evidence whatever the retention period."""

from __future__ import annotations

from sqlalchemy.orm import Session

from monitor.alerts.models import Alert
from monitor.alerts.service import announce, get, record
from monitor.audit.service import audit
from monitor.db import utcnow
from monitor.events import Kind


class HoldConflict(Exception):
    """The alert is already on hold, or is not on hold; nothing was changed."""


def place(db: Session, alert_id: int, *, actor: str, reason: str, address: str = "") -> Alert:
    # The alert's row lock: `vigil evidence purge` takes it too before it deletes a clip,
    # so a clip is never deleted under a hold placed at the same moment.
    alert = get(db, alert_id, for_update=True)
    if alert.hold:
        raise HoldConflict(f"alert {alert_id} is already on hold (since {alert.held_at:%Y-%m-%d})")
    alert.hold, alert.hold_reason = True, reason
    alert.held_at, alert.held_by = utcnow(), actor
    record(db, alert, "hold_placed", actor, f"Put on hold: {reason}", reason=reason)
    audit(db, actor, "hold_placed", f"alert {alert_id}", address=address, reason=reason)
    announce(db, Kind.ALERT_UPDATED, alert)
    return alert


def release(db: Session, alert_id: int, *, actor: str, address: str = "") -> Alert:
    alert = get(db, alert_id, for_update=True)
    if not alert.hold:
        raise HoldConflict(f"alert {alert_id} is not on hold")
    reason = alert.hold_reason
    alert.hold, alert.hold_reason, alert.held_at, alert.held_by = False, None, None, None
    # The timeline and the audit log keep the hold's history; the columns say what holds now.
    record(db, alert, "hold_released", actor, "Hold released", reason=reason)
    audit(db, actor, "hold_released", f"alert {alert_id}", address=address, reason=reason)
    announce(db, Kind.ALERT_UPDATED, alert)
    return alert
