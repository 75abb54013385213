"""REST routes for workers, teams and organisations, the links workers choose their PINs
with, and the small page those links open. The rules are in service.py, workers.py and
pin_links.py; here only who is asking, and the answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from monitor import qrcodes
from monitor.deps import (
    ReadSessionDep,
    RowId,
    ScopeDep,
    ServiceAdmin,
    SessionDep,
    SettingsDep,
    Supervisor,
    Unechoed,
    client_address,
    no_store,
)
from monitor.orgs import pin_links, service, workers
from monitor.orgs.errors import Refused
from monitor.orgs.models import Organisation, Team, Worker
from monitor.orgs.schemas import (
    NewWorker,
    OrgEdit,
    OrgIn,
    OrgOut,
    PinLinkAbout,
    PinLinkOut,
    PinLinkToken,
    PinLinkUse,
    PinsTwice,
    TeamEdit,
    TeamIn,
    TeamOut,
    WorkerEdit,
    WorkerOut,
)
from monitor.users.accounts import actor_of

STATIC = Path(__file__).parent / "static"


@contextmanager
def answered() -> Iterator[None]:
    """A refusal from the service as the API's answer (the transaction is rolled back)."""
    try:
        yield
    except Refused as refused:
        raise HTTPException(refused.status, str(refused)) from None


NOT_YOURS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not found, or not within the caller's scope"}
}

router = APIRouter(route_class=Unechoed)
workers_router = APIRouter(prefix="/api/v1/workers", tags=["workers"], route_class=Unechoed)
teams_router = APIRouter(prefix="/api/v1/teams", tags=["workers"], route_class=Unechoed)
orgs_router = APIRouter(prefix="/api/v1/orgs", tags=["workers"], route_class=Unechoed)
links_router = APIRouter(prefix="/api/v1/pin-links", tags=["workers"], route_class=Unechoed)


# -- workers ----------------------------------------------------------------------------------


def _worker_out(db: Session, worker: Worker) -> WorkerOut:
    out = WorkerOut.model_validate(worker)
    org = db.get(Organisation, worker.org_id)
    team = db.get(Team, worker.team_id) if worker.team_id is not None else None
    out.org = org.name if org else None
    out.team = team.name if team else None
    out.pins_set = service.pins_set(worker)
    return out


@workers_router.get("")
def list_workers(db: ReadSessionDep, scope: ScopeDep) -> list[WorkerOut]:
    return workers.list_workers(db, scope)


@workers_router.post("", status_code=status.HTTP_201_CREATED, responses=NOT_YOURS)
def add_worker(
    body: NewWorker, request: Request, db: SessionDep, user: Supervisor, scope: ScopeDep
) -> WorkerOut:
    """A worker in a team (or their organisation), with PINs typed twice, or none yet."""
    with answered():
        worker = workers.create_worker(
            db, body, scope=scope, actor=actor_of(user), address=client_address(request)
        )
    return _worker_out(db, worker)


@workers_router.put("/{worker_id}", responses=NOT_YOURS)
def edit_worker(
    worker_id: RowId,
    body: WorkerEdit,
    request: Request,
    db: SessionDep,
    user: Supervisor,
    scope: ScopeDep,
) -> WorkerOut:
    """Name, phone, notes for responders and team (a new team moves the worker)."""
    with answered():
        worker = workers.edit_worker(
            db, worker_id, body, scope=scope, actor=actor_of(user), address=client_address(request)
        )
    return _worker_out(db, worker)


@workers_router.put(
    "/{worker_id}/pins",
    status_code=status.HTTP_204_NO_CONTENT,
    # No body, and no JSON type claimed for it (a browser would try to read one).
    response_class=Response,
    responses=NOT_YOURS,
)
def set_pins(
    worker_id: RowId,
    body: PinsTwice,
    request: Request,
    db: SessionDep,
    user: Supervisor,
    scope: ScopeDep,
) -> None:
    """New cancel and duress PINs, each typed twice. Nothing answers what they are."""
    with answered():
        workers.set_pins(
            db, worker_id, body, scope=scope, actor=actor_of(user), address=client_address(request)
        )


@workers_router.post(
    "/{worker_id}/pin-links", status_code=status.HTTP_201_CREATED, responses=NOT_YOURS
)
def issue_pin_link(
    worker_id: RowId,
    request: Request,
    response: Response,
    db: SessionDep,
    user: Supervisor,
    scope: ScopeDep,
    settings: SettingsDep,
) -> PinLinkOut:
    """A one-time link for the worker to choose their own PINs on their phone; shown this
    once (only its hash is kept). An earlier unused link stops working."""
    with answered():
        issued = pin_links.issue(
            db, worker_id, scope=scope, actor=actor_of(user), address=client_address(request)
        )
    link = pin_links.link(settings.public_url, issued.token)
    no_store(response)
    return PinLinkOut(link=link, expires_at=issued.expires_at, qr_svg=qrcodes.svg(link))


# -- teams ------------------------------------------------------------------------------------


@teams_router.get("")
def list_teams(db: ReadSessionDep, user: Supervisor, scope: ScopeDep) -> list[TeamOut]:
    return service.list_teams(db, scope)


@teams_router.post("", status_code=status.HTTP_201_CREATED, responses=NOT_YOURS)
def add_team(
    body: TeamIn, request: Request, db: SessionDep, user: Supervisor, scope: ScopeDep
) -> TeamOut:
    with answered():
        team = service.add_team(
            db,
            body.name,
            org_id=body.org_id,
            scope=scope,
            actor=actor_of(user),
            address=client_address(request),
        )
    return service.team_out(db, team)


@teams_router.put("/{team_id}", responses=NOT_YOURS)
def rename_team(
    team_id: RowId,
    body: TeamEdit,
    request: Request,
    db: SessionDep,
    user: Supervisor,
    scope: ScopeDep,
) -> TeamOut:
    with answered():
        team = service.rename_team(
            db,
            team_id,
            body.name,
            scope=scope,
            actor=actor_of(user),
            address=client_address(request),
        )
    return service.team_out(db, team)


# -- organisations ----------------------------------------------------------------------------


@orgs_router.get("")
def list_orgs(db: ReadSessionDep, user: Supervisor, scope: ScopeDep) -> list[OrgOut]:
    """Every organisation to an account of the whole service; its own to any other."""
    return service.list_orgs(db, scope)


@orgs_router.post("", status_code=status.HTTP_201_CREATED)
def add_org(
    body: OrgIn, request: Request, db: SessionDep, user: ServiceAdmin, scope: ScopeDep
) -> OrgOut:
    with answered():
        org = service.add_org(
            db, body, scope=scope, actor=actor_of(user), address=client_address(request)
        )
    return service.org_out(db, org)


@orgs_router.put("/{org_id}", responses=NOT_YOURS)
def edit_org(
    org_id: RowId,
    body: OrgEdit,
    request: Request,
    db: SessionDep,
    user: ServiceAdmin,
    scope: ScopeDep,
) -> OrgOut:
    """Its name, and whether its workers end a visit only with their PIN."""
    with answered():
        org = service.edit_org(
            db, org_id, body, scope=scope, actor=actor_of(user), address=client_address(request)
        )
    return service.org_out(db, org)


# -- the worker's own PINs (no account: the link is the credential) ---------------------------

GONE: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown link"},
    410: {"description": "The link has been used or has expired"},
}


@links_router.post("/about", responses=GONE)
def about_pin_link(body: PinLinkToken, db: ReadSessionDep) -> PinLinkAbout:
    """Whose link this is, and until when: what the page says before the PINs are typed."""
    with answered():
        name, expires_at = pin_links.about(db, body.token)
    return PinLinkAbout(worker_name=name, expires_at=expires_at)


@links_router.post(
    "/use",
    status_code=status.HTTP_204_NO_CONTENT,
    # No body, and no JSON type claimed for it (a browser would try to read one).
    response_class=Response,
    responses=GONE,
)
def use_pin_link(body: PinLinkUse, request: Request, db: SessionDep) -> None:
    """The worker's cancel and duress PINs, each typed twice; the link then stops working."""
    with answered():
        pin_links.use(db, body, address=client_address(request))


# The page the link opens: a file, its script and its style (the content security policy
# allows no inline script).
PAGE_FILES = {
    pin_links.PAGE: ("pins.html", "text/html; charset=utf-8"),
    f"{pin_links.PAGE}/pins.js": ("pins.js", "text/javascript; charset=utf-8"),
    f"{pin_links.PAGE}/pins.css": ("pins.css", "text/css; charset=utf-8"),
}

for _url, (_name, _type) in PAGE_FILES.items():

    def _serve(name: str = _name, media_type: str = _type) -> FileResponse:
        return FileResponse(
            STATIC / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
        )

    router.add_api_route(_url, _serve, methods=["GET"], include_in_schema=False)

for _sub in (workers_router, teams_router, orgs_router, links_router):
    router.include_router(_sub)
