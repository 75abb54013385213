"""REST routes for timed visits."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from monitor.deps import ReadSessionDep, ScopeDep
from monitor.privacy import positions
from monitor.visits.models import Visit, VisitOut, VisitState

router = APIRouter(prefix="/api/v1/visits", tags=["visits"])


@router.get("")
def list_visits(
    db: ReadSessionDep,
    scope: ScopeDep,
    state: Literal["open", "all"] = "open",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[VisitOut]:
    """Open visits soonest-due first, or every visit newest first."""
    q = select(Visit).where(scope.covers(Visit.worker_id, Visit.org_id))
    if state == "open":
        q = q.where(Visit.state == VisitState.OPEN.value).order_by(Visit.due_at)
    else:
        q = q.order_by(Visit.started_at.desc())
    return [
        positions.visit(VisitOut.model_validate(v), scope.positions_always)
        for v in db.scalars(q.limit(limit))
    ]
