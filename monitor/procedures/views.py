"""REST routes for an alert's checklist: the procedure that applies, and ticking its steps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from monitor.alerts import service as alerts
from monitor.deps import CurrentUser, RowId, ScopeDep, SessionDep, StoreDep
from monitor.procedures import service
from monitor.procedures.models import AlertProcedure, TickIn

router = APIRouter(prefix="/api/v1/alerts", tags=["procedures"])


@router.get("/{alert_id}/procedure")
def get_procedure(alert_id: RowId, store: StoreDep, scope: ScopeDep) -> AlertProcedure:
    """The alert's checklist with each step's tick. The first time an open alert is shown,
    the procedure that fits it is applied and fixed in its timeline."""
    with store.session() as db:
        alerts.check_in_scope(db, alert_id, scope)
        checklist = service.shown(db, alerts.get(db, alert_id))
    if checklist is not None:
        return checklist
    # Only now a write: reading the checklist must not hold up an alert being stored.
    with store.begin() as db:
        return service.ensure(db, alerts.get(db, alert_id, for_update=True))


@router.put("/{alert_id}/procedure/steps/{step}")
def tick_step(
    alert_id: RowId,
    step: Annotated[int, Path(ge=0, le=1000, description="From 0, as listed.")],
    body: TickIn,
    db: SessionDep,
    user: CurrentUser,
    scope: ScopeDep,
) -> AlertProcedure:
    """Tick a step (`done: true`) or untick it (`done: false`): recorded in the timeline
    with who and when."""
    alerts.check_in_scope(db, alert_id, scope)
    try:
        return service.tick(db, alert_id, step, done=body.done, actor=f"user:{user.username}")
    except service.StepNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
