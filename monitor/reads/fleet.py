"""The fleet map: every worker with an active alert or an open visit, where they last were."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts.models import Alert
from monitor.alerts.states import AlertState, AlertType
from monitor.db import utcnow
from monitor.devices.models import Device
from monitor.orgs.models import Team, Worker
from monitor.orgs.scope import Scope
from monitor.visits.models import Visit, VisitState

# What a marker says, most pressing first: an active alert (coloured by its type), a visit
# past its deadline (its alert follows after the grace period), a silent device on a visit,
# a visit on time.
Status = Literal["alert", "overdue", "offline", "visit"]


class MarkerAlert(BaseModel):
    """The worker's most urgent active alert."""

    id: int
    type: AlertType
    duress: bool
    priority: int
    state: str
    raised_at: datetime
    acknowledged_by: str | None


class MarkerVisit(BaseModel):
    id: int
    note: str | None
    started_at: datetime
    due_at: datetime


class Marker(BaseModel):
    """One worker on the map. The position is their device's last fix and when it was
    taken (`fix_at`), else the one their alert or visit started with; none if neither."""

    worker_id: int | None
    worker_name: str | None
    team: str | None
    device_id: str
    online: bool
    status: Status
    lat: float | None
    lon: float | None
    acc: float | None
    fix_at: datetime | None
    alert: MarkerAlert | None
    # How many active alerts the worker has (the marker opens the most urgent).
    open_alerts: int
    visit: MarkerVisit | None


@dataclass
class _Worker:
    alerts: list[Alert] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)


def markers(db: Session, scope: Scope) -> list[Marker]:
    """Every worker in `scope` with an active alert or an open visit, most pressing first.

    Only these: an operator may see a worker's position only while one of the two lasts
    (docs/privacy.md), and the map is of the people who need watching now, for everyone."""
    by_worker: dict[int | str, _Worker] = {}
    for alert in db.scalars(
        select(Alert)
        .where(rules.is_open_sql(), scope.covers(Alert.worker_id, Alert.org_id))
        .order_by(Alert.priority, Alert.raised_at, Alert.id)
    ):
        by_worker.setdefault(alert.worker_id or alert.device_id, _Worker()).alerts.append(alert)
    for visit in db.scalars(
        select(Visit)
        .where(Visit.state == VisitState.OPEN.value, scope.covers(Visit.worker_id, Visit.org_id))
        .order_by(Visit.due_at, Visit.id)
    ):
        by_worker.setdefault(visit.worker_id or visit.device_id, _Worker()).visits.append(visit)
    if not by_worker:
        return []
    worker_ids = [k for k in by_worker if isinstance(k, int)]
    names: dict[int, tuple[str, str | None]] = {
        wid: (name, team)
        for wid, name, team in db.execute(
            select(Worker.id, Worker.name, Team.name)
            .outerjoin(Team, Team.id == Worker.team_id)
            .where(Worker.id.in_(worker_ids))
        )
    }
    wanted = {a.device_id for w in by_worker.values() for a in w.alerts}
    wanted |= {v.device_id for w in by_worker.values() for v in w.visits}
    devices = {d.id: d for d in db.scalars(select(Device).where(Device.id.in_(wanted)))}
    now = utcnow()
    out = [_marker(key, found, names, devices, now) for key, found in by_worker.items()]
    out.sort(key=_pressing)
    return out


_STATUS_ORDER = {"alert": 0, "overdue": 1, "offline": 2, "visit": 3}


def _pressing(m: Marker) -> tuple[int, bool, int, datetime | None]:
    """The queue's order (console/static/order.js): alerts nobody has taken charge of first,
    then by priority, then the oldest; then the visits by how pressing their state is."""
    if m.alert is None:
        return (_STATUS_ORDER[m.status], False, 0, None)
    taken = m.alert.state != AlertState.RAISED.value
    return (0, taken, m.alert.priority, m.alert.raised_at)


def _marker(
    key: int | str,
    found: _Worker,
    names: dict[int, tuple[str, str | None]],
    devices: dict[str, Device],
    now: datetime,
) -> Marker:
    alert = found.alerts[0] if found.alerts else None
    # The visit due first is the one that matters.
    visit = found.visits[0] if found.visits else None
    device_id = alert.device_id if alert is not None else visit.device_id if visit else str(key)
    device = devices.get(device_id)
    name, team = names.get(key, (None, None)) if isinstance(key, int) else (None, None)
    lat = lon = acc = None
    fix_at = None
    if device is not None and device.last_fix_at is not None:
        lat, lon, acc, fix_at = (
            device.last_lat,
            device.last_lon,
            device.last_acc,
            device.last_fix_at,
        )
    elif alert is not None and alert.lat is not None:
        lat, lon, acc, fix_at = alert.lat, alert.lon, alert.acc, alert.device_ts or alert.raised_at
    elif visit is not None and visit.lat is not None:
        lat, lon, acc, fix_at = visit.lat, visit.lon, visit.acc, visit.started_at
    online = bool(device is not None and device.online)
    status: Status = "visit"
    if alert is not None:
        status = "alert"
    elif visit is not None and visit.due_at < now:
        status = "overdue"
    elif not online:
        status = "offline"
    return Marker(
        worker_id=key if isinstance(key, int) else None,
        worker_name=name,
        team=team,
        device_id=device_id,
        online=online,
        status=status,
        lat=lat,
        lon=lon,
        acc=acc,
        fix_at=fix_at,
        alert=(
            MarkerAlert(
                id=alert.id,
                type=AlertType(alert.type),
                duress=alert.duress,
                priority=alert.priority,
                state=alert.state,
                raised_at=alert.raised_at,
                acknowledged_by=alert.acknowledged_by,
            )
            if alert is not None
            else None
        ),
        open_alerts=len(found.alerts),
        visit=(
            MarkerVisit(
                id=visit.id, note=visit.note, started_at=visit.started_at, due_at=visit.due_at
            )
            if visit is not None
            else None
        ),
    )
