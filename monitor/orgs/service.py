"""Organisations, teams and the making of a worker: plain functions taking the session, each
within a scope (the whole service for the command line, the signed-in account's for the web),
so both refuse the same things in the same words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.orgs.errors import NameTaken, NotFound, OutOfScope, Refused
from monitor.orgs.models import Organisation, Team, Worker
from monitor.orgs.schemas import OrgEdit, OrgIn, OrgOut, Pins, TeamOut, WorkerFields
from monitor.orgs.scope import Scope
from monitor.security import hash_pin, verify_secret

DEFAULT_ORG = "Default"


# -- what a scope may see ---------------------------------------------------------------------


def visible_org(db: Session, org_id: int, scope: Scope) -> Organisation:
    org = db.get(Organisation, org_id)
    if org is None or not (scope.service_wide or org.id == scope.org_id):
        raise NotFound(f"no organisation {org_id}")
    return org


def visible_team(db: Session, team_id: int, scope: Scope) -> Team:
    team = db.get(Team, team_id)
    if team is None or not scope.admits(team.org_id, team.id):
        raise NotFound(f"no team {team_id}")
    return team


def visible_worker(db: Session, worker_id: int, scope: Scope) -> Worker:
    worker = db.get(Worker, worker_id)
    if worker is None or not scope.admits(worker.org_id, worker.team_id):
        raise NotFound(f"no worker {worker_id}")
    return worker


def changes_shared_things(scope: Scope) -> None:
    """Organisations are what every account of one organisation lives inside: only an account
    of the whole service adds or changes them."""
    if not scope.service_wide:
        raise OutOfScope("organisations are changed by an account of the whole service")


# -- organisations ----------------------------------------------------------------------------


def get_or_create_org(db: Session, name: str = DEFAULT_ORG) -> Organisation:
    org = db.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        org = Organisation(name=name)
        db.add(org)
        db.flush()
    return org


def _org_name_free(db: Session, name: str, but: int | None = None) -> None:
    taken = db.scalar(select(Organisation.id).where(Organisation.name == name))
    if taken is not None and taken != but:
        raise NameTaken(f"there is already an organisation called {name!r}")


def list_orgs(db: Session, scope: Scope) -> list[OrgOut]:
    teams = select(func.count(Team.id)).where(Team.org_id == Organisation.id).scalar_subquery()
    workers = (
        select(func.count(Worker.id)).where(Worker.org_id == Organisation.id).scalar_subquery()
    )
    query = select(Organisation, teams, workers).order_by(Organisation.name)
    if not scope.service_wide:
        query = query.where(Organisation.id == scope.org_id)
    return [
        OrgOut(
            id=o.id,
            name=o.name,
            require_visit_end_pin=o.require_visit_end_pin,
            teams=t,
            workers=w,
        )
        for o, t, w in db.execute(query)
    ]


def org_out(db: Session, org: Organisation) -> OrgOut:
    return OrgOut(
        id=org.id,
        name=org.name,
        require_visit_end_pin=org.require_visit_end_pin,
        teams=db.scalar(select(func.count(Team.id)).where(Team.org_id == org.id)) or 0,
        workers=db.scalar(select(func.count(Worker.id)).where(Worker.org_id == org.id)) or 0,
    )


def add_org(
    db: Session, spec: OrgIn, *, scope: Scope, actor: str, address: str = ""
) -> Organisation:
    changes_shared_things(scope)
    _org_name_free(db, spec.name)
    org = Organisation(name=spec.name, require_visit_end_pin=spec.require_visit_end_pin)
    db.add(org)
    db.flush()
    audit(
        db,
        actor,
        "organisation_added",
        f"organisation {org.id}",
        address=address,
        name=org.name,
        require_visit_end_pin=org.require_visit_end_pin,
    )
    return org


def edit_org(
    db: Session, org_id: int, spec: OrgEdit, *, scope: Scope, actor: str, address: str = ""
) -> Organisation:
    changes_shared_things(scope)
    org = visible_org(db, org_id, scope)
    _org_name_free(db, spec.name, but=org.id)
    changed = apply_changes(org, spec.model_dump())
    if changed:
        audit(
            db, actor, "organisation_changed", f"organisation {org.id}", address=address, **changed
        )
    return org


# -- teams ------------------------------------------------------------------------------------


def get_or_create_team(db: Session, org: Organisation, name: str) -> Team:
    team = db.scalar(select(Team).where(Team.org_id == org.id, Team.name == name))
    if team is None:
        team = Team(org_id=org.id, name=name)
        db.add(team)
        db.flush()
    return team


def _team_name_free(db: Session, org_id: int, name: str, but: int | None = None) -> None:
    taken = db.scalar(select(Team.id).where(Team.org_id == org_id, Team.name == name).limit(1))
    if taken is not None and taken != but:
        raise NameTaken(f"the organisation already has a team called {name!r}")


def list_teams(db: Session, scope: Scope, *, org: str | None = None) -> list[TeamOut]:
    workers = select(func.count(Worker.id)).where(Worker.team_id == Team.id).scalar_subquery()
    query = (
        select(Team, Organisation.name, workers)
        .join(Organisation, Organisation.id == Team.org_id)
        .order_by(Organisation.name, Team.name)
    )
    if scope.team_id is not None:
        query = query.where(Team.id == scope.team_id)
    elif scope.org_id is not None:
        query = query.where(Team.org_id == scope.org_id)
    if org is not None:
        query = query.where(Organisation.name == org)
    return [
        TeamOut(id=t.id, org_id=t.org_id, org=org_name, name=t.name, workers=n)
        for t, org_name, n in db.execute(query)
    ]


def team_out(db: Session, team: Team) -> TeamOut:
    org = db.get(Organisation, team.org_id)
    return TeamOut(
        id=team.id,
        org_id=team.org_id,
        org=org.name if org else "",
        name=team.name,
        workers=db.scalar(select(func.count(Worker.id)).where(Worker.team_id == team.id)) or 0,
    )


def add_team(
    db: Session,
    name: str,
    *,
    org_id: int | None,
    scope: Scope,
    actor: str,
    address: str = "",
) -> Team:
    """A new team, in the caller's own organisation or, for an account of the whole service,
    in the one named. A team leader's account cannot make teams: it would not see them."""
    if scope.team_id is not None:
        raise OutOfScope("an account of one team cannot add teams")
    if org_id is None:
        if scope.org_id is None:
            raise Refused("org_id: which organisation the team is in")
        org_id = scope.org_id
    org = visible_org(db, org_id, scope)
    _team_name_free(db, org.id, name)
    team = Team(org_id=org.id, name=name)
    db.add(team)
    db.flush()
    audit(db, actor, "team_added", f"team {team.id}", address=address, name=name, org=org.name)
    return team


def rename_team(
    db: Session, team_id: int, name: str, *, scope: Scope, actor: str, address: str = ""
) -> Team:
    team = visible_team(db, team_id, scope)
    _team_name_free(db, team.org_id, name, but=team.id)
    if team.name != name:
        audit(
            db, actor, "team_renamed", f"team {team.id}", address=address, was=team.name, now=name
        )
        team.name = name
    return team


# -- workers ----------------------------------------------------------------------------------


def pins_set(worker: Worker) -> bool:
    return bool(worker.cancel_pin_hash and worker.duress_pin_hash)


@dataclass(frozen=True)
class PinHashes:
    """A worker's PINs as they are kept: argon2 hashes, slow to make on purpose, so a whole
    fleet's are made side by side (argon2 lets go of Python's lock while it works)."""

    cancel: str
    duress: str

    @classmethod
    def of(cls, pins: Pins) -> PinHashes:
        return cls(hash_pin(pins.cancel_pin), hash_pin(pins.duress_pin))


def insert_worker(
    db: Session,
    fields: WorkerFields,
    pins: Pins | PinHashes | None,
    *,
    org_id: int,
    team_id: int | None,
    actor: str | None = None,
    address: str = "",
) -> Worker:
    """The one place a worker is made, from checked fields; audited when `actor` says who."""
    worker = Worker(
        org_id=org_id,
        team_id=team_id,
        name=fields.name,
        phone=fields.phone,
        responder_notes=fields.responder_notes,
    )
    hashes = PinHashes.of(pins) if isinstance(pins, Pins) else pins
    worker.cancel_pin_hash = hashes.cancel if hashes else ""
    worker.duress_pin_hash = hashes.duress if hashes else ""
    db.add(worker)
    db.flush()
    if actor is not None:
        # Never the PINs: whether there are any.
        audit(
            db,
            actor,
            "worker_added",
            f"worker {worker.id}",
            address=address,
            name=worker.name,
            org_id=org_id,
            team_id=team_id,
            pins_set=pins is not None,
        )
    return worker


def add_worker(
    db: Session,
    *,
    name: str,
    cancel_pin: str,
    duress_pin: str,
    phone: str = "",
    team: str | None = None,
    responder_notes: str = "",
    org_name: str = DEFAULT_ORG,
    actor: str | None = None,
) -> Worker:
    """A worker in the organisation and team named (both made if new), as `vigil worker add`
    and the demo make them. Bad input raises pydantic's ValidationError (a ValueError)."""
    fields = WorkerFields(name=name, phone=phone, responder_notes=responder_notes)
    pins = Pins(cancel_pin=cancel_pin, duress_pin=duress_pin)
    org = get_or_create_org(db, org_name)
    team_row = get_or_create_team(db, org, team) if team else None
    return insert_worker(
        db, fields, pins, org_id=org.id, team_id=team_row.id if team_row else None, actor=actor
    )


def check_pin(worker: Worker, pin: str) -> str | None:
    """Which of the worker's PINs this is: "cancel", "duress" or None."""
    # Both hashes are always checked so that the time taken does not tell the two apart.
    is_cancel = verify_secret(worker.cancel_pin_hash, pin)
    is_duress = verify_secret(worker.duress_pin_hash, pin)
    if is_duress:
        return "duress"
    if is_cancel:
        return "cancel"
    return None


def apply_changes(row: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set what differs; returns {field: [was, now]} for the audit log."""
    changed = {}
    for key, value in values.items():
        if getattr(row, key) != value:
            changed[key] = [getattr(row, key), value]
            setattr(row, key, value)
    return changed
