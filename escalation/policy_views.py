"""The escalation policy file over the API: read it (structured, or as YAML to download),
check it, replace it whole (supervisors and admins of the whole service), and preview who an
alert would reach and when (any supervisor or admin, within their scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from escalation import policy_files, preview
from escalation.policies import ContactIn, PolicyError, PolicyFile, PolicyIn
from escalation.policy_files import Loaded, Stale
from escalation.preview import Preview, TeamChoice
from monitor.alerts.states import AlertType
from monitor.db import MAX_ROW_ID
from monitor.deps import (
    ReadSessionDep,
    ScopeDep,
    ServiceSupervisor,
    SessionDep,
    Supervisor,
)
from monitor.orgs.models import Organisation, Team
from monitor.orgs.scope import Scope
from monitor.users.accounts import actor_of
from monitor.whole_files import FileIn, download

router = APIRouter(prefix="/api/v1/escalation", tags=["escalation"])
DOWNLOAD_NAME = "vigil-policies.yaml"


class FileOut(BaseModel):
    yaml: str  # as `vigil policy dump` writes it, and `vigil policy load` reads it
    sha256: str  # of `yaml`: send it back as `base` when saving
    contacts: list[ContactIn]
    policies: list[PolicyIn]


class Checked(BaseModel):
    valid: bool
    contacts: int
    policies: int


def _checked(text: str) -> PolicyFile:
    try:
        return policy_files.check(text)
    except PolicyError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/file")
def read_file(db: ReadSessionDep, user: ServiceSupervisor) -> FileOut:
    """Every contact and policy, structured and as the YAML file."""
    s = policy_files.stored(db)
    return FileOut(yaml=s.yaml, sha256=s.sha256, contacts=s.contacts, policies=s.policies)


@router.get("/file.yaml", response_class=Response)
def download_file(db: ReadSessionDep, user: ServiceSupervisor) -> Response:
    """The YAML file as a download, as `vigil policy dump` writes it."""
    return download(policy_files.stored(db).yaml, DOWNLOAD_NAME)


@router.post("/file/check")
def check_file(body: FileIn, user: ServiceSupervisor) -> Checked:
    """Check a file as `vigil policy check` does, without saving: 422 with every problem,
    one a line, each naming its place (`policies[0].steps[2].after: ...`)."""
    parsed = _checked(body.yaml)
    return Checked(valid=True, contacts=len(parsed.contacts), policies=len(parsed.policies))


@router.put("/file")
def replace_file(body: FileIn, db: SessionDep, user: ServiceSupervisor) -> Loaded:
    """Make the stored contacts and policies exactly the file's, as `vigil policy load`
    does: checked first, nothing changes if any of it is wrong; audited with the file it
    replaced. Running escalations keep the policy they started with."""
    parsed = _checked(body.yaml)
    try:
        return policy_files.load(db, parsed, actor=actor_of(user), source="console", base=body.base)
    except Stale as exc:
        raise HTTPException(409, str(exc)) from exc


# -- the preview ------------------------------------------------------------------------


def _teams_in(db: Session, scope: Scope) -> list[TeamChoice]:
    return [t for t in preview.teams(db) if scope.admits(t.org_id, t.id)]


@router.get("/preview/teams")
def preview_teams(db: ReadSessionDep, user: Supervisor, scope: ScopeDep) -> list[TeamChoice]:
    """The teams a preview may be asked for: those within the account's scope."""
    return _teams_in(db, scope)


@router.get("/preview")
def preview_escalation(
    db: ReadSessionDep,
    user: Supervisor,
    scope: ScopeDep,
    alert_type: AlertType,
    team_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    org_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    duress: bool = False,
) -> Preview:
    """Which policy an alert of this type for this team (or organisation) would get, and
    whom each step would reach and when, if nobody took charge. An account limited to an
    organisation or team previews within it (its own by default)."""
    team = db.get(Team, team_id) if team_id is not None else None
    if team_id is not None and (team is None or not scope.admits(team.org_id, team.id)):
        raise HTTPException(404, f"no team {team_id}")
    if team is not None:
        org_id = team.org_id
    elif org_id is None and not scope.service_wide:
        org_id, team = scope.org_id, db.get(Team, scope.team_id) if scope.team_id else None
    org = db.get(Organisation, org_id) if org_id is not None else None
    if org_id is not None and (
        org is None or not scope.admits(org.id, team.id if team is not None else None)
    ):
        raise HTTPException(404, f"no organisation {org_id}")
    return preview.preview(db, alert_type, team, org, duress)
