"""REST routes for places and cautions: their administration, an alert's "Cautions at this
address", an incident made a caution, and the devices' search as the worker types."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from monitor.alerts import service as alerts
from monitor.deps import (
    CurrentDevice,
    CurrentUser,
    ReadSessionDep,
    RowId,
    ScopeDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    Supervisor,
    client_address,
)
from monitor.incidents.cautions import caution_from_incident
from monitor.orgs.models import Worker
from monitor.orgs.scope import Scope
from monitor.places import reads, service, shown
from monitor.places.schemas import (
    AlertCautions,
    CautionChange,
    CautionIn,
    CautionOut,
    DeviceCaution,
    DevicePlace,
    IncidentCautionIn,
    PlaceChange,
    PlaceDetail,
    PlaceIn,
    PlaceOut,
    ReviewOut,
)
from monitor.reads import alert_places
from monitor.users.accounts import actor_of
from monitor.users.models import User

router = APIRouter(prefix="/api/v1", tags=["places"])

DevicePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Words = Annotated[str, Query(max_length=200, pattern=r"^[^\x00]*$")]
DEVICE_RESULTS = 10


def _by(user: User, scope: Scope, request: Request) -> service.Actor:
    return service.Actor(actor_of(user), scope, client_address(request))


def _detail(db: Session, place_id: int, scope: Scope, match_m: float) -> PlaceDetail:
    place = reads.get_place(db, place_id, scope)
    (out,) = reads.place_out(db, [place], scope)
    return PlaceDetail(
        **out.model_dump(),
        cautions=reads.caution_out(db, reads.cautions_at(db, place.id, scope=scope)),
        incidents=alert_places.incidents_at(db, place, scope, match_m),
    )


@router.get("/places")
def list_places(
    db: ReadSessionDep,
    scope: ScopeDep,
    user: Supervisor,
    q: Words = "",
    limit: Annotated[int, Query(ge=1, le=reads.SEARCH_LIMIT)] = 50,
) -> list[PlaceOut]:
    """Places in scope whose address has every word of `q`, in any order."""
    return reads.place_out(db, reads.search(db, q, scope=scope, limit=limit), scope)


@router.post("/places", status_code=status.HTTP_201_CREATED)
def add_place(
    data: PlaceIn,
    db: SessionDep,
    scope: ScopeDep,
    user: Supervisor,
    request: Request,
    settings: SettingsDep,
) -> PlaceDetail:
    place = service.add_place(db, data, by=_by(user, scope, request))
    return _detail(db, place.id, scope, settings.place_match_m)


@router.get("/places/{place_id}")
def get_place(
    place_id: RowId, db: ReadSessionDep, scope: ScopeDep, user: Supervisor, settings: SettingsDep
) -> PlaceDetail:
    return _detail(db, place_id, scope, settings.place_match_m)


@router.patch("/places/{place_id}")
def change_place(
    place_id: RowId,
    data: PlaceChange,
    db: SessionDep,
    scope: ScopeDep,
    user: Supervisor,
    request: Request,
    settings: SettingsDep,
) -> PlaceDetail:
    service.change_place(db, place_id, data, by=_by(user, scope, request))
    return _detail(db, place_id, scope, settings.place_match_m)


@router.delete("/places/{place_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_place(
    place_id: RowId, db: SessionDep, scope: ScopeDep, user: Supervisor, request: Request
) -> Response:
    service.delete_place(db, place_id, by=_by(user, scope, request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/places/{place_id}/cautions", status_code=status.HTTP_201_CREATED)
def add_caution(
    place_id: RowId,
    data: CautionIn,
    db: SessionDep,
    scope: ScopeDep,
    user: Supervisor,
    request: Request,
) -> CautionOut:
    caution = service.add_caution(db, place_id, data, by=_by(user, scope, request))
    return reads.caution_out(db, [caution])[0]


@router.get("/cautions/review")
def cautions_to_review(db: ReadSessionDep, scope: ScopeDep, user: Supervisor) -> list[ReviewOut]:
    """Cautions due for review (their review date has come, or they expire within 14
    days), the most pressing first."""
    rows = reads.review_list(db, scope)
    outs = reads.caution_out(db, [c for c, _ in rows])
    return [ReviewOut(**o.model_dump(), address=a) for o, (_, a) in zip(outs, rows, strict=True)]


@router.patch("/cautions/{caution_id}")
def change_caution(
    caution_id: RowId,
    data: CautionChange,
    db: SessionDep,
    scope: ScopeDep,
    user: Supervisor,
    request: Request,
) -> CautionOut:
    caution = service.change_caution(db, caution_id, data, by=_by(user, scope, request))
    return reads.caution_out(db, [caution])[0]


@router.delete("/cautions/{caution_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_caution(
    caution_id: RowId, db: SessionDep, scope: ScopeDep, user: Supervisor, request: Request
) -> Response:
    service.delete_caution(db, caution_id, by=_by(user, scope, request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/incidents/{alert_id}/caution", status_code=status.HTTP_201_CREATED)
def caution_from_alert(
    alert_id: RowId,
    data: IncidentCautionIn,
    db: SessionDep,
    scope: ScopeDep,
    user: Supervisor,
    request: Request,
    settings: SettingsDep,
) -> CautionOut:
    """The incident as a caution at its place (or at a new place named `address`)."""
    caution = caution_from_incident(
        db, alert_id, data, by=_by(user, scope, request), within_m=settings.place_match_m
    )
    return reads.caution_out(db, [caution])[0]


@router.get("/alerts/{alert_id}/cautions")
def alert_cautions(
    alert_id: RowId,
    db: ReadSessionDep,
    store: StoreDep,
    scope: ScopeDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> AlertCautions:
    """ "Cautions at this address" for the alert. The first time it shows this person any,
    the alert's timeline records it."""
    alerts.check_in_scope(db, alert_id, scope)
    found = alert_places.alert_cautions(db, alerts.get(db, alert_id), scope, settings.place_match_m)
    actor = actor_of(user)
    if found.cautions and found.place is not None and not shown.already_shown(db, alert_id, actor):
        # Read on a session that never writes; the entry is written in a short transaction
        # of its own, only the first time.
        with store.begin() as writing:
            shown.record_shown(
                writing,
                alert_id,
                actor=actor,
                who=user.username,
                place_id=found.place.id,
                caution_ids=[c.id for c in found.cautions],
            )
    return found


@router.get("/devices/{device_id}/places")
def device_places(
    device_id: DevicePath, device: CurrentDevice, db: ReadSessionDep, q: Words = ""
) -> list[DevicePlace]:
    """Places of the device's worker's organisation matching what the worker typed (HTTP
    Basic auth: DEVICE and its secret), with the cautions their team is shown."""
    if len(q.strip()) < 2 or device.worker_id is None:
        return []
    worker = db.get(Worker, device.worker_id)
    if worker is None:
        return []
    found = reads.search(db, q, org_id=worker.org_id, limit=DEVICE_RESULTS)
    return [
        DevicePlace(
            id=p.id,
            address=p.address,
            cautions=[
                DeviceCaution(kind=c["kind"], label=c["label"], text=c["text"])
                for c in reads.device_cautions(db, p.id, worker.team_id)
            ],
        )
        for p in found
    ]
