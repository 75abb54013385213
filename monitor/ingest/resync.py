"""A device that comes online is sent the current state of its alerts and visits again.

A command the broker has acknowledged is marked sent, but a broker that crashes before its
next save loses it. Commands are idempotent, so on every `online` status the device is told
again where each of its open alerts and visits stands, and how each that ended since it was
last heard from ended: its view converges whatever the broker lost. The commands go through
the outbox in the transaction that stores the status, so they are published until the
broker has them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts.device_view import device_view
from monitor.alerts.models import Alert, AlertEvent
from monitor.devices.commands import queue_command
from monitor.visits.models import Visit, VisitState
from monitor.visits.service import started_fields


def _after(ended_at: datetime | None, since: datetime | None) -> bool:
    return ended_at is None or since is None or ended_at > since


def resync(db: Session, returned: dict[str, datetime | None]) -> int:
    """Queue the state commands for devices that came online, each with when it was last
    heard from before (None if never). Returns how many commands were queued."""
    if not returned:
        return 0
    ids = sorted(returned)
    known = [s for s in returned.values() if s is not None]
    # Ended alerts and visits are looked up from the earliest of the devices' last contact. A
    # device never heard from before has nothing that ended since: it sets no floor (a
    # mass reconnect with one new device among them must not load every device's history).
    floor = min(known) if known else None
    queued = 0

    ended_alert = (
        or_(Alert.resolved_at > floor, Alert.cancelled_at > floor)
        if floor is not None
        else Alert.id.is_not(None)
    )
    ended_visit = Visit.ended_at > floor if floor is not None else Visit.id.is_not(None)
    alerts = db.scalars(
        select(Alert)
        .where(
            Alert.device_id.in_(ids),
            # Alerts the service raised itself were never the device's to hear of.
            Alert.device_alert_id.is_not(None),
            or_(
                rules.is_open_sql(),
                rules.under_duress_sql(),
                ended_alert,
            ),
        )
        .order_by(Alert.id)
    ).all()
    duress_ids = [a.id for a in alerts if rules.under_duress(a)]
    duress_at: dict[int, datetime] = {}
    if duress_ids:
        for alert_id, at in db.execute(
            select(AlertEvent.alert_id, AlertEvent.at)
            .where(AlertEvent.alert_id.in_(duress_ids), AlertEvent.kind == "duress")
            .order_by(AlertEvent.seq.desc())
        ):
            duress_at[alert_id] = at  # the earliest entry wins: rows come newest first
    for alert in alerts:
        told = device_view(alert, duress_at.get(alert.id))
        if _after(told.ended_at, returned[alert.device_id]):
            queue_command(db, alert.device_id, told.command, alert_id=alert.device_alert_id)
            queued += 1

    visits = db.scalars(
        select(Visit)
        .where(
            Visit.device_id.in_(ids),
            or_(Visit.state == VisitState.OPEN.value, ended_visit),
        )
        .order_by(Visit.id)
    ).all()
    for visit in visits:
        if visit.state != VisitState.OPEN.value:
            if _after(visit.ended_at, returned[visit.device_id]):
                queue_command(db, visit.device_id, "visit_ended", visit_id=visit.device_visit_id)
                queued += 1
            continue
        # `visit_due` once the device has been told the time is up; `visit_started` before,
        # as it was first sent (with the place and its cautions).
        if visit.due_notified_at is not None:
            due_ts = int(visit.due_at.timestamp() * 1000)
            queue_command(
                db, visit.device_id, "visit_due", visit_id=visit.device_visit_id, due_ts=due_ts
            )
        else:
            queue_command(db, visit.device_id, "visit_started", **started_fields(db, visit))
        queued += 1
    return queued
