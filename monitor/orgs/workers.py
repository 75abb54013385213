"""Workers as administrators and supervisors keep them: listed, added, edited, moved between
teams and given PINs, each within the caller's scope and audited. The command line calls
these with the whole service's scope."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from monitor.audit.service import audit
from monitor.orgs.errors import OutOfScope, Refused
from monitor.orgs.models import Organisation, Team, Worker
from monitor.orgs.schemas import NewWorker, Pins, WorkerEdit, WorkerOut
from monitor.orgs.scope import Scope
from monitor.orgs.service import (
    PinHashes,
    apply_changes,
    insert_worker,
    pins_set,
    visible_org,
    visible_team,
    visible_worker,
)


def list_workers(
    db: Session, scope: Scope, *, org: str | None = None, team: str | None = None
) -> list[WorkerOut]:
    """The workers the scope covers, by name; `org` and `team` narrow it by name."""
    team_row = aliased(Team)
    query = (
        select(Worker, Organisation.name, team_row.name)
        .join(Organisation, Organisation.id == Worker.org_id)
        .outerjoin(team_row, team_row.id == Worker.team_id)
        .where(scope.covers(Worker.id, Worker.org_id))
        .order_by(Worker.name, Worker.id)
    )
    if org is not None:
        query = query.where(Organisation.name == org)
    if team is not None:
        query = query.where(team_row.name == team)
    out = []
    for worker, org_name, team_name in db.execute(query):
        row = WorkerOut.model_validate(worker)
        row.org, row.team, row.pins_set = org_name, team_name, pins_set(worker)
        out.append(row)
    return out


def placed(
    db: Session, scope: Scope, team_id: int | None, org_id: int | None
) -> tuple[int, int | None]:
    """The organisation and team a worker goes in, if the scope may put them there: a team
    leader's workers stay in their team, an organisation's in that organisation."""
    if team_id is not None:
        team = visible_team(db, team_id, scope)
        if org_id is not None and org_id != team.org_id:
            raise Refused(f"team_id: team {team.id} is in another organisation")
        return team.org_id, team.id
    if scope.team_id is not None:
        raise OutOfScope("an account of one team keeps its workers in that team")
    if org_id is None:
        if scope.org_id is None:
            raise Refused("team_id: a worker needs a team or an organisation (org_id)")
        org_id = scope.org_id
    return visible_org(db, org_id, scope).id, None


def create_worker(
    db: Session, spec: NewWorker, *, scope: Scope, actor: str, address: str = ""
) -> Worker:
    org_id, team_id = placed(db, scope, spec.team_id, spec.org_id)
    return insert_worker(
        db,
        spec,
        spec.pins,
        org_id=org_id,
        team_id=team_id,
        actor=actor,
        address=address,
    )


def edit_worker(
    db: Session, worker_id: int, spec: WorkerEdit, *, scope: Scope, actor: str, address: str = ""
) -> Worker:
    """Change what is written about a worker; a new team moves them (within their
    organisation, and within the caller's scope)."""
    worker = visible_worker(db, worker_id, scope)
    if spec.team_id != worker.team_id:
        _, team_id = placed(db, scope, spec.team_id, worker.org_id)
        audit(
            db,
            actor,
            "worker_moved",
            f"worker {worker.id}",
            address=address,
            was_team_id=worker.team_id,
            team_id=team_id,
        )
        worker.team_id = team_id
    changed = apply_changes(worker, spec.model_dump(include={"name", "phone", "responder_notes"}))
    if changed:
        # Which fields, not what they say: responder notes can be medical.
        audit(
            db,
            actor,
            "worker_changed",
            f"worker {worker.id}",
            address=address,
            fields=sorted(changed),
        )
    return worker


def set_pins(
    db: Session, worker_id: int, pins: Pins, *, scope: Scope, actor: str, address: str = ""
) -> Worker:
    """New PINs from someone other than the worker (`vigil worker set-pins`, the console)."""
    worker = visible_worker(db, worker_id, scope)
    store_pins(worker, pins)
    audit(db, actor, "worker_pins_set", f"worker {worker.id}", address=address, by="administrator")
    return worker


def store_pins(worker: Worker, pins: Pins) -> None:
    hashes = PinHashes.of(pins)
    worker.cancel_pin_hash, worker.duress_pin_hash = hashes.cancel, hashes.duress
