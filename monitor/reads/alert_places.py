"""The place an alert happened at, and the other incidents at a place: read when someone
looks (never when the alert is stored), from the worker's visit or the alert's position."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from monitor.alerts.models import Alert
from monitor.alerts.states import ACTIVE_STATES
from monitor.db import shifted
from monitor.devices.models import LocationFix
from monitor.orgs.models import Worker
from monitor.orgs.scope import Scope
from monitor.places import matching
from monitor.places import reads as place_reads
from monitor.places.matching import Match
from monitor.places.models import Place
from monitor.places.schemas import AlertCautions, IncidentAtPlace, PlaceRef
from monitor.visits.models import Visit

# Alerts near or at a place looked at to find its incidents, newest first.
CANDIDATES = 50
PREVIOUS = 10
# An alert that came without a position (a phone indoors has no fix at the press, and one
# a few seconds later) was raised where its device's fix nearest in time, this near, was.
NEAR_IN_TIME = timedelta(minutes=2)


def visit_of(db: Session, alert: Alert) -> Visit | None:
    """The visit that raised the alert (overdue, duress end), or else the one its worker
    had open when it was raised."""
    if alert.visit_id is not None:
        return db.get(Visit, alert.visit_id)
    if alert.worker_id is None:
        return None
    return db.scalar(
        select(Visit)
        .where(
            Visit.worker_id == alert.worker_id,
            Visit.started_at <= alert.raised_at,
            or_(Visit.ended_at.is_(None), Visit.ended_at >= alert.raised_at),
        )
        .order_by(Visit.started_at.desc(), Visit.id.desc())
        .limit(1)
    )


def raised_where(db: Session, alert: Alert) -> tuple[float, float] | None:
    """Where the alert was raised: the position it came with or, failing that, its device's
    fix nearest in time to it within NEAR_IN_TIME either side."""
    if alert.lat is not None and alert.lon is not None:
        return alert.lat, alert.lon
    fixes = select(LocationFix.lat, LocationFix.lon, LocationFix.device_ts).where(
        LocationFix.device_id == alert.device_id,
        LocationFix.device_ts.between(
            alert.raised_at - NEAR_IN_TIME, alert.raised_at + NEAR_IN_TIME
        ),
    )
    before = db.execute(
        fixes.where(LocationFix.device_ts <= alert.raised_at)
        .order_by(LocationFix.device_ts.desc())
        .limit(1)
    ).first()
    after = db.execute(
        fixes.where(LocationFix.device_ts > alert.raised_at)
        .order_by(LocationFix.device_ts)
        .limit(1)
    ).first()
    found = [f for f in (before, after) if f is not None]
    if not found:
        return None
    nearest = min(found, key=lambda f: abs((f.device_ts - alert.raised_at).total_seconds()))
    return nearest.lat, nearest.lon


def place_of(db: Session, alert: Alert, within_m: float) -> Match | None:
    """The alert's place: its visit's, or the nearest of its organisation's within
    `within_m` of where it was raised."""
    if alert.org_id is None:
        return None
    where = raised_where(db, alert)
    visit = visit_of(db, alert)
    if visit is not None and visit.place_id is not None:
        place = db.get(Place, visit.place_id)
        if place is not None and place.org_id == alert.org_id:
            d = None
            if where is not None and place.lat is not None:
                assert place.lon is not None
                d = matching.distance_m(*where, place.lat, place.lon)
            return Match(place, visit.place_match or matching.POSITION, d)
    if where is None:
        return None
    return matching.nearest(db, alert.org_id, *where, within_m)


def incidents_at(
    db: Session,
    place: Place,
    scope: Scope,
    within_m: float,
    *,
    leave_out: int | None = None,
    limit: int = PREVIOUS,
) -> list[IncidentAtPlace]:
    """Alerts whose place (as `place_of` finds it) is `place`, within `scope`, newest first.
    Candidates come from the visits matched to the place and from a box around it; each is
    then matched as its own page would match it, so both always agree."""
    at_visit = exists().where(
        Visit.place_id == place.id,
        Visit.worker_id == Alert.worker_id,
        Visit.started_at <= Alert.raised_at,
        or_(Visit.ended_at.is_(None), Visit.ended_at >= Alert.raised_at),
    )
    raised_by_visit = Alert.visit_id.in_(select(Visit.id).where(Visit.place_id == place.id))
    near = [at_visit, raised_by_visit]
    if place.lat is not None and place.lon is not None and within_m > 0:
        box = matching.box(place.lat, place.lon, within_m)
        near.append(
            and_(
                Alert.lat.between(box.south, box.north),
                Alert.lon.between(box.west, box.east),
            )
        )
        # An alert that came without a fix is where its device's fixes near it in time were.
        fix_near = exists().where(
            LocationFix.device_id == Alert.device_id,
            LocationFix.device_ts.between(
                shifted(db, Alert.raised_at, -NEAR_IN_TIME),
                shifted(db, Alert.raised_at, NEAR_IN_TIME),
            ),
            LocationFix.lat.between(box.south, box.north),
            LocationFix.lon.between(box.west, box.east),
        )
        near.append(and_(Alert.lat.is_(None), fix_near))
    q = (
        select(Alert)
        .where(
            Alert.org_id == place.org_id,
            or_(*near),
            scope.covers(Alert.worker_id, Alert.org_id),
        )
        .order_by(Alert.raised_at.desc(), Alert.id.desc())
        .limit(CANDIDATES)
    )
    if leave_out is not None:
        q = q.where(Alert.id != leave_out)
    found: list[Alert] = []
    for alert in db.scalars(q):
        match = place_of(db, alert, within_m)
        if match is not None and match.place.id == place.id:
            found.append(alert)
            if len(found) >= limit:
                break
    ids = {a.worker_id for a in found if a.worker_id is not None}
    names = (
        {i: n for i, n in db.execute(select(Worker.id, Worker.name).where(Worker.id.in_(ids)))}
        if ids
        else {}
    )
    return [
        IncidentAtPlace(
            alert_id=a.id,
            raised_at=a.raised_at,
            type=a.type,
            duress=a.duress,
            outcome=a.outcome,
            state=a.state,
            worker=names.get(a.worker_id) if a.worker_id is not None else None,
        )
        for a in found
    ]


def alert_cautions(db: Session, alert: Alert, scope: Scope, within_m: float) -> AlertCautions:
    """What the operator is shown as "Cautions at this address": the alert's place, the
    current cautions there that `scope` sees, and the other incidents there."""
    match = place_of(db, alert, within_m)
    if match is None:
        return AlertCautions(place=None, matched_by=None, distance_m=None, cautions=[], previous=[])
    place = match.place
    # Once the alert is over, whoever may not see its position is not shown the place's
    # (the address is what the cautions are about, and stays).
    show_position = scope.positions_always or alert.state in ACTIVE_STATES
    return AlertCautions(
        place=PlaceRef(
            id=place.id,
            address=place.address,
            lat=place.lat if show_position else None,
            lon=place.lon if show_position else None,
        ),
        matched_by=match.by,
        distance_m=(
            round(match.distance_m, 1) if match.distance_m is not None and show_position else None
        ),
        cautions=place_reads.caution_out(db, place_reads.cautions_at(db, place.id, scope=scope)),
        previous=incidents_at(db, place, scope, within_m, leave_out=alert.id),
    )
