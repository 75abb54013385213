"""An alert with everything an operator needs: its worker, visit, evidence, timeline and trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import false, select
from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert, AlertEventOut, AlertOut, TrailPoint
from monitor.devices.models import Device
from monitor.evidence.models import Evidence, EvidenceOut
from monitor.orgs.models import Worker
from monitor.visits import service as visits
from monitor.visits.models import Visit, VisitEventOut


class WorkerBrief(BaseModel):
    """What a responder needs to know about the worker."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    phone: str
    responder_notes: str
    low_battery: bool


class VisitBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_visit_id: str
    state: str
    note: str | None
    memo: str | None
    started_at: datetime
    due_at: datetime
    # The visit's timeline: its start, deadlines and end, and places the worker's phone
    # reported arriving at or leaving (OwnTracks regions).
    events: list[VisitEventOut] = []


class Position(BaseModel):
    """Where the worker was last known to be during the alert, and when that fix was taken."""

    lat: float
    lon: float
    acc: float | None
    # None for a position the service gave an alert it raised itself, of unknown age.
    at: datetime | None


class AlertDetail(AlertOut):
    timeline: list[AlertEventOut]
    worker: WorkerBrief | None = None
    visit: VisitBrief | None = None
    evidence: list[EvidenceOut] = []
    trail: list[TrailPoint] = []
    position: Position | None = None
    # Why `position` is missing: "withheld" by the privacy rules (monitor/privacy/positions.py)
    # or "not_reported" by the device; None when there is one.
    position_missing: Literal["withheld", "not_reported"] | None = None


def detail(db: Session, alert: Alert, *, history: bool = True) -> AlertDetail:
    """The alert with everything an operator needs: worker, visit, evidence, its newest
    position, and (with `history`) its timeline and recent trail, which a summary for a
    phone does without."""
    out = AlertDetail(
        **alerts.to_out(db, alert).model_dump(),
        timeline=alerts.timeline_of(db, alert.id) if history else [],
    )
    if alert.worker_id is not None:
        worker = db.get(Worker, alert.worker_id)
        if worker is not None:
            out.worker = WorkerBrief.model_validate(worker)
    visit = (
        db.get(Visit, alert.visit_id)
        if alert.visit_id is not None
        else db.scalar(
            # An alert raised during a visit: the visit's note says where the worker is.
            select(Visit)
            .where(
                Visit.device_id == alert.device_id,
                Visit.started_at <= alert.raised_at,
                (Visit.ended_at.is_(None)) | (Visit.ended_at >= alert.raised_at),
            )
            .order_by(Visit.started_at.desc())
            .limit(1)
        )
    )
    if visit is not None:
        out.visit = VisitBrief.model_validate(visit)
    out.evidence = [
        EvidenceOut.model_validate(e)
        for e in db.scalars(
            select(Evidence)
            .where(
                (Evidence.alert_id == alert.id)
                | ((Evidence.visit_id == visit.id) if visit is not None else false())
            )
            .order_by(Evidence.id)
        )
    ]
    if history:
        out.trail = alerts.trail_of(db, alert)
        if out.visit is not None:
            out.visit.events = visits.timeline_of(db, out.visit.id)
    # A summary too: whom an escalation reaches is told where the worker is now, which is
    # not where the alert was raised once they move, nor unknown when a fix came after it.
    out.position = _newest_position(db, alert, out.trail)
    out.position_missing = None if out.position is not None else "not_reported"
    return out


def _newest_position(db: Session, alert: Alert, trail: list[TrailPoint]) -> Position | None:
    """The newest fix of: the alert's own position as the device sent it, the trail's last,
    and, while the alert is open, the device's last (after it closes, where the worker went
    is none of the incident's business). Failing all three, the position the service gave an
    alert it raised itself (an overdue visit's), whose time it did not keep."""
    found: list[Position] = []
    if alert.lat is not None and alert.lon is not None and alert.device_ts is not None:
        found.append(Position(lat=alert.lat, lon=alert.lon, acc=alert.acc, at=alert.device_ts))
    if trail:
        last = trail[-1]
        found.append(Position(lat=last.lat, lon=last.lon, acc=last.acc, at=last.device_ts))
    device = db.get(Device, alert.device_id) if rules.is_open(alert) else None
    if device is not None and device.last_lat is not None and device.last_lon is not None:
        found.append(
            Position(
                lat=device.last_lat, lon=device.last_lon, acc=device.last_acc, at=device.last_fix_at
            )
        )
    if found:
        return max(found, key=lambda p: p.at or datetime.min.replace(tzinfo=UTC))
    if alert.lat is not None and alert.lon is not None:
        return Position(lat=alert.lat, lon=alert.lon, acc=alert.acc, at=None)
    return None
