"""REST routes for alerts: the queue, one alert with its timeline, and operator actions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status
from sqlalchemy import select

from monitor.alerts import service
from monitor.alerts.models import Alert, AlertDetail, AlertOut, AuthoritiesIn, NoteIn, ResolveIn
from monitor.alerts.states import ACTIVE_STATES, IllegalTransition
from monitor.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**62)]


def _actor(user: CurrentUser) -> str:
    return f"user:{user.username}"


@router.get("")
def list_alerts(
    db: SessionDep,
    user: CurrentUser,
    state: Literal["active", "all"] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AlertOut]:
    """Active alerts most urgent first, then oldest first; or every alert, newest first."""
    q = select(Alert)
    if state == "active":
        q = q.where(Alert.state.in_([s.value for s in ACTIVE_STATES])).order_by(
            Alert.priority, Alert.raised_at, Alert.id
        )
    else:
        q = q.order_by(Alert.raised_at.desc(), Alert.id.desc())
    return [service.to_out(db, a) for a in db.scalars(q.limit(limit).offset(offset))]


@router.get("/{alert_id}")
def get_alert(alert_id: AlertId, db: SessionDep, user: CurrentUser) -> AlertDetail:
    return service.detail(db, _get(db, alert_id))


def _get(db: SessionDep, alert_id: int) -> Alert:
    try:
        return service.get(db, alert_id)
    except service.AlertNotFound as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e


def _conflict(e: IllegalTransition) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, str(e))


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: AlertId, db: SessionDep, user: CurrentUser) -> AlertOut:
    """Take charge of the alert: escalation stops and the worker hears help is coming."""
    _get(db, alert_id)
    try:
        alert = service.acknowledge(db, alert_id, actor=_actor(user), via="console")
    except IllegalTransition as e:
        raise _conflict(e) from e
    return service.to_out(db, alert)


@router.post("/{alert_id}/notes", status_code=status.HTTP_201_CREATED)
def add_note(alert_id: AlertId, body: NoteIn, db: SessionDep, user: CurrentUser) -> AlertOut:
    _get(db, alert_id)
    return service.to_out(db, service.add_note(db, alert_id, actor=_actor(user), text=body.text))


@router.post("/{alert_id}/resolve")
def resolve(alert_id: AlertId, body: ResolveIn, db: SessionDep, user: CurrentUser) -> AlertOut:
    _get(db, alert_id)
    try:
        alert = service.resolve(
            db, alert_id, actor=_actor(user), outcome=body.outcome, note=body.note
        )
    except IllegalTransition as e:
        raise _conflict(e) from e
    return service.to_out(db, alert)


@router.post("/{alert_id}/authorities", status_code=status.HTTP_201_CREATED)
def authorities_called(
    alert_id: AlertId, body: AuthoritiesIn, db: SessionDep, user: CurrentUser
) -> AlertOut:
    """Record that the emergency services were called: which, and their reference."""
    _get(db, alert_id)
    alert = service.record_authorities(
        db, alert_id, actor=_actor(user), service=body.service, reference=body.reference
    )
    return service.to_out(db, alert)
