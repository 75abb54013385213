"""REST routes for an alert's checklist (the procedure that applies, and ticking its steps),
and for the procedures file: read it (structured, or as YAML to download), check it, and
replace it whole, as `vigil sop` does, and read the procedures Vigil ships to start from
(supervisors and admins of the whole service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel

from monitor.alerts import service as alerts
from monitor.deps import (
    CurrentUser,
    ReadSessionDep,
    RowId,
    ScopeDep,
    ServiceSupervisor,
    SessionDep,
    StoreDep,
)
from monitor.procedures import definitions, files, service
from monitor.procedures.definitions import ProcedureError
from monitor.procedures.files import Loaded
from monitor.procedures.models import AlertProcedure, ProcedureIn, TickIn
from monitor.users.accounts import actor_of
from monitor.whole_files import FileIn, Stale, download

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
        return service.tick(db, alert_id, step, done=body.done, actor=actor_of(user))
    except service.StepNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


# -- the procedures file ------------------------------------------------------------------

file_router = APIRouter(prefix="/api/v1/procedures", tags=["procedures"])
DOWNLOAD_NAME = "vigil-procedures.yaml"


class FileOut(BaseModel):
    yaml: str  # as `vigil sop dump` writes it, and `vigil sop load` reads it
    sha256: str  # of `yaml`: send it back as `base` when saving
    procedures: list[ProcedureIn]


class Shipped(BaseModel):
    yaml: str  # monitor/procedures/default_procedures.yaml, which `vigil demo` loads


class Checked(BaseModel):
    valid: bool
    procedures: int


@file_router.get("/file")
def read_file(db: ReadSessionDep, user: ServiceSupervisor) -> FileOut:
    """Every procedure, structured and as the YAML file."""
    s = files.stored(db)
    return FileOut(yaml=s.yaml, sha256=s.sha256, procedures=s.procedures)


@file_router.get("/file.yaml", response_class=Response)
def download_file(db: ReadSessionDep, user: ServiceSupervisor) -> Response:
    """The YAML file as a download, as `vigil sop dump` writes it."""
    return download(files.stored(db).yaml, DOWNLOAD_NAME)


@file_router.get("/shipped")
def shipped(user: ServiceSupervisor) -> Shipped:
    """The procedures Vigil ships, one for each alert type, as a file to adapt (your numbers,
    your teams' desks, your emergency number) and save: a service starts with none."""
    return Shipped(yaml=definitions.DEFAULT_FILE.read_text(encoding="utf-8"))


@file_router.post("/file/check")
def check_file(body: FileIn, db: ReadSessionDep, user: ServiceSupervisor) -> Checked:
    """Check a file as `vigil sop load` would, without saving: 422 with every problem, one a
    line, each naming its place (`procedures[0] (Panic).steps: ...`), the organisations and
    teams it names included."""
    try:
        parsed = files.check(db, body.yaml)
    except ProcedureError as exc:
        raise HTTPException(422, str(exc)) from exc
    return Checked(valid=True, procedures=len(parsed.procedures))


@file_router.put("/file")
def replace_file(body: FileIn, db: SessionDep, user: ServiceSupervisor) -> Loaded:
    """Make the stored procedures exactly the file's, as `vigil sop load` does: checked
    first, nothing changes if any of it is wrong; audited with the file it replaced. Open
    alerts keep the checklist they already have."""
    try:
        parsed = definitions.parse_file(body.yaml)
        return files.load(db, parsed, actor=actor_of(user), source="console", base=body.base)
    except ProcedureError as exc:
        raise HTTPException(422, str(exc)) from exc
    except Stale as exc:
        raise HTTPException(409, str(exc)) from exc
