"""REST routes for the read models that join several domains: the fleet map."""

from __future__ import annotations

from fastapi import APIRouter

from monitor.deps import ReadSessionDep, ScopeDep
from monitor.reads import fleet
from monitor.reads.fleet import Marker

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"])


@router.get("/positions")
def fleet_positions(db: ReadSessionDep, scope: ScopeDep) -> list[Marker]:
    """Every worker in the user's organisation or team with an active alert or an open
    visit, with their last position: the console's fleet map, for operators too."""
    return fleet.markers(db, scope)
