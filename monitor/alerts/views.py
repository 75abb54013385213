"""REST routes for alerts: the queue, one alert with its timeline, and operator actions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import holds, rules, service, silence
from monitor.alerts.models import (
    Alert,
    AlertOut,
    AuthoritiesIn,
    HoldIn,
    NoteIn,
    ResolveIn,
    SilenceIn,
)
from monitor.db import MAX_ROW_ID
from monitor.deps import (
    CurrentUser,
    ReadSessionDep,
    RowId,
    ScopeDep,
    SessionDep,
    Supervisor,
    client_address,
)
from monitor.orgs.scope import Scope
from monitor.privacy import positions
from monitor.procedures import service as procedures
from monitor.reads import alert_detail
from monitor.reads.alert_detail import AlertDetail
from monitor.users.accounts import actor_of

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

AlertId = RowId


def _shown(db: Session, alert: Alert, scope: Scope) -> AlertOut:
    """The alert as the person who acted on it may see it (docs/privacy.md)."""
    return positions.alert(service.to_out(db, alert), scope.positions_always)


@router.get("")
def list_alerts(
    db: ReadSessionDep,
    scope: ScopeDep,
    state: Literal["active", "all"] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> list[AlertOut]:
    """Active alerts most urgent first, then oldest first; or every alert, newest first."""
    q = select(Alert).where(scope.covers(Alert.worker_id, Alert.org_id))
    if state == "active":
        q = q.where(rules.is_open_sql()).order_by(Alert.priority, Alert.raised_at, Alert.id)
    else:
        q = q.order_by(Alert.raised_at.desc(), Alert.id.desc())
    rows = service.to_out_many(db, db.scalars(q.limit(limit).offset(offset)).all())
    return [positions.alert(a, scope.positions_always) for a in rows]


@router.get("/{alert_id}")
def get_alert(alert_id: AlertId, db: ReadSessionDep, scope: ScopeDep) -> AlertDetail:
    service.check_in_scope(db, alert_id, scope)
    detail = alert_detail.detail(db, service.get(db, alert_id))
    return positions.alert(detail, scope.positions_always)


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: AlertId, db: SessionDep, user: CurrentUser, scope: ScopeDep) -> AlertOut:
    """Take charge of the alert: escalation stops and the worker hears help is coming."""
    service.check_in_scope(db, alert_id, scope)
    alert = service.acknowledge(db, alert_id, actor=actor_of(user), via="console")
    return _shown(db, alert, scope)


@router.post("/{alert_id}/notes", status_code=status.HTTP_201_CREATED)
def add_note(
    alert_id: AlertId, body: NoteIn, db: SessionDep, user: CurrentUser, scope: ScopeDep
) -> AlertOut:
    service.check_in_scope(db, alert_id, scope)
    alert = service.add_note(db, alert_id, actor=actor_of(user), text=body.text)
    return _shown(db, alert, scope)


@router.post("/{alert_id}/silence", status_code=status.HTTP_201_CREATED)
def silence_sound(
    alert_id: AlertId, body: SilenceIn, db: SessionDep, user: CurrentUser, scope: ScopeDep
) -> AlertOut:
    """Silence the alert's alarm sound on the caller's console for `minutes`: the console
    keeps the silence; the timeline says who and for how long (409 if it is not sounding)."""
    service.check_in_scope(db, alert_id, scope)
    alert = silence.silence(db, alert_id, actor=actor_of(user), minutes=body.minutes)
    return _shown(db, alert, scope)


@router.post("/{alert_id}/resolve")
def resolve(
    alert_id: AlertId, body: ResolveIn, db: SessionDep, user: CurrentUser, scope: ScopeDep
) -> AlertOut:
    """Close the alert with its outcome; one someone else holds only with `take_over`."""
    service.check_in_scope(db, alert_id, scope)
    actor = actor_of(user)
    alert = service.resolve(
        db,
        alert_id,
        actor=actor,
        outcome=body.outcome,
        note=body.note,
        take_over=body.take_over,
        # Steps of its procedure left unticked need a reason: the note (monitor.procedures).
        # Asked once the holder rule has passed, so a take-over is refused, or recorded,
        # before the procedure says anything.
        before_close=lambda _: procedures.check_resolve(db, alert_id, actor=actor, note=body.note),
    )
    return _shown(db, alert, scope)


@router.post("/{alert_id}/authorities", status_code=status.HTTP_201_CREATED)
def authorities_called(
    alert_id: AlertId, body: AuthoritiesIn, db: SessionDep, user: CurrentUser, scope: ScopeDep
) -> AlertOut:
    """Record that the emergency services were called: which, and their reference."""
    service.check_in_scope(db, alert_id, scope)
    alert = service.record_authorities(
        db, alert_id, actor=actor_of(user), service=body.service, reference=body.reference
    )
    return _shown(db, alert, scope)


@router.post("/{alert_id}/hold")
def place_hold(
    alert_id: AlertId,
    body: HoldIn,
    request: Request,
    db: SessionDep,
    user: Supervisor,
    scope: ScopeDep,
) -> AlertOut:
    """Put the incident on hold (under investigation): its evidence is never purged."""
    service.check_in_scope(db, alert_id, scope)
    alert = holds.place(
        db, alert_id, actor=actor_of(user), reason=body.reason, address=client_address(request)
    )
    return _shown(db, alert, scope)


@router.delete("/{alert_id}/hold")
def release_hold(
    alert_id: AlertId, request: Request, db: SessionDep, user: Supervisor, scope: ScopeDep
) -> AlertOut:
    """Release the hold: the incident's evidence follows the retention period again."""
    service.check_in_scope(db, alert_id, scope)
    alert = holds.release(db, alert_id, actor=actor_of(user), address=client_address(request))
    return _shown(db, alert, scope)
