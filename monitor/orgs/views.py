"""REST routes for workers."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from monitor.deps import ReadSessionDep, ScopeDep
from monitor.orgs.models import Team, Worker, WorkerOut

router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


@router.get("")
def list_workers(db: ReadSessionDep, scope: ScopeDep) -> list[WorkerOut]:
    rows = db.execute(
        select(Worker, Team.name)
        .outerjoin(Team, Team.id == Worker.team_id)
        .where(scope.covers(Worker.id, Worker.org_id))
        .order_by(Worker.name)
    )
    out = []
    for worker, team in rows:
        w = WorkerOut.model_validate(worker)
        w.team = team
        out.append(w)
    return out
