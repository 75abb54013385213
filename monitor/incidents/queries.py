"""Finding incidents: one filtered query for the list and the CSV export, and their timings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts
from monitor.alerts.models import Alert, AlertEvent
from monitor.alerts.states import AlertState, AlertType, Outcome
from monitor.incidents.models import IncidentOut
from monitor.orgs.scope import Scope

# The timeline entries whose text a person typed: notes, a resolution's note, the
# authorities' reference. The text search looks in these and in the alert's own note.
TYPED_KINDS = ("note", "resolved", "authorities_called")


@dataclass(frozen=True)
class IncidentFilter:
    since: datetime | None = None  # raised at or after
    until: datetime | None = None  # raised before
    team_id: int | None = None
    worker_id: int | None = None
    type: AlertType | None = None
    outcome: Outcome | None = None
    state: AlertState | None = None
    duress: bool | None = None
    text: str | None = None


def incident_query(scope: Scope, f: IncidentFilter) -> Select[Alert]:
    """The alerts `scope` covers that match `f`, newest first."""
    q = select(Alert).where(scope.covers(Alert.worker_id, Alert.org_id))
    if f.since is not None:
        q = q.where(Alert.raised_at >= f.since)
    if f.until is not None:
        q = q.where(Alert.raised_at < f.until)
    if f.team_id is not None:
        # The team as it is now, as scopes are: a worker's history moves with them.
        q = q.where(Scope(team_id=f.team_id).covers(Alert.worker_id))
    if f.worker_id is not None:
        q = q.where(Alert.worker_id == f.worker_id)
    if f.type is not None:
        q = q.where(Alert.type == f.type.value)
    if f.outcome is not None:
        q = q.where(Alert.outcome == f.outcome.value)
    if f.state is not None:
        q = q.where(Alert.state == f.state.value)
    if f.duress is not None:
        q = q.where(Alert.duress.is_(f.duress))
    if f.text:
        # lower(...) LIKE '%' || lower(:text) || '%', with % and _ in the text escaped: the
        # same on SQLite and PostgreSQL (monitor/db.py gives SQLite a Unicode-aware lower).
        typed = select(AlertEvent.alert_id).where(
            AlertEvent.kind.in_(TYPED_KINDS), AlertEvent.text.icontains(f.text, autoescape=True)
        )
        q = q.where(or_(Alert.note.icontains(f.text, autoescape=True), Alert.id.in_(typed)))
    return q.order_by(Alert.raised_at.desc(), Alert.id.desc())


def answered_at(alert: Alert) -> datetime | None:
    """When someone took charge: acknowledged, or else resolved (which takes charge and
    closes at once). An alert the worker cancelled before that was never answered."""
    if alert.acknowledged_at is not None:
        return alert.acknowledged_at
    if alert.state == AlertState.RESOLVED.value:
        return alert.resolved_at
    return None


def seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


def with_timings(db: Session, found: list[Alert]) -> list[IncidentOut]:
    return [
        IncidentOut(
            **row.model_dump(),
            time_to_acknowledge_s=seconds(alert.raised_at, answered_at(alert)),
            time_to_resolve_s=seconds(alert.raised_at, alert.resolved_at),
        )
        for alert, row in zip(found, alerts.to_out_many(db, found), strict=True)
    ]


def find(
    db: Session, scope: Scope, f: IncidentFilter, *, limit: int, offset: int = 0
) -> list[IncidentOut]:
    rows = db.scalars(incident_query(scope, f).limit(limit).offset(offset)).all()
    return with_timings(db, list(rows))
