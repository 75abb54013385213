"""An alert with everything an operator needs: its worker, visit, evidence, timeline and trail."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import false, select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts
from monitor.alerts.models import Alert, AlertEventOut, AlertOut, TrailPoint
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


class AlertDetail(AlertOut):
    timeline: list[AlertEventOut]
    worker: WorkerBrief | None = None
    visit: VisitBrief | None = None
    evidence: list[EvidenceOut] = []
    trail: list[TrailPoint] = []


def detail(db: Session, alert: Alert, *, history: bool = True) -> AlertDetail:
    """The alert with everything an operator needs: worker, visit, evidence, and (with
    `history`) its timeline and recent trail, which a summary for a phone does without."""
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
    if not history:
        return out
    out.trail = alerts.trail_of(db, alert)
    if out.visit is not None:
        out.visit.events = visits.timeline_of(db, out.visit.id)
    return out
