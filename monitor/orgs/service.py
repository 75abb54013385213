"""Organisation, team and worker service functions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.orgs.models import Organisation, Team, Worker
from monitor.security import hash_pin, verify_secret

DEFAULT_ORG = "Default"


def get_or_create_org(db: Session, name: str = DEFAULT_ORG) -> Organisation:
    org = db.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        org = Organisation(name=name)
        db.add(org)
        db.flush()
    return org


def get_or_create_team(db: Session, org: Organisation, name: str) -> Team:
    team = db.scalar(select(Team).where(Team.org_id == org.id, Team.name == name))
    if team is None:
        team = Team(org_id=org.id, name=name)
        db.add(team)
        db.flush()
    return team


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
) -> Worker:
    if cancel_pin == duress_pin:
        raise ValueError("the cancel PIN and the duress PIN must differ")
    org = get_or_create_org(db, org_name)
    team_row = get_or_create_team(db, org, team) if team else None
    worker = Worker(
        org_id=org.id,
        team_id=team_row.id if team_row else None,
        name=name,
        phone=phone,
        responder_notes=responder_notes,
        cancel_pin_hash=hash_pin(cancel_pin),
        duress_pin_hash=hash_pin(duress_pin),
    )
    db.add(worker)
    db.flush()
    return worker


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
