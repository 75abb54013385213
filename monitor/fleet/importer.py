"""A fleet file checked against the store as a whole, then written in one transaction: every
worker and device through the functions that add one (same rules, same audit entries), and
each device's credential returned to be written once."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.devices import admin
from monitor.devices.models import Device
from monitor.fleet.fileformat import FleetFileError, Parsed
from monitor.orgs.models import Organisation, Team, Worker
from monitor.orgs.schemas import WorkerFields
from monitor.orgs.scope import EVERYTHING
from monitor.orgs.service import PinHashes, get_or_create_org, get_or_create_team, insert_worker

# Ids looked up in the store at once: well under any database's limit on parameters.
CHUNK = 500


@dataclass(frozen=True)
class Plan:
    """What an import will do, said before it is done."""

    workers: int
    devices: int
    new_organisations: list[str]
    new_teams: list[str]  # "Organisation / Team"


@dataclass(frozen=True)
class Imported:
    credential: admin.Credential
    worker: str
    organisation: str
    team: str | None


def check(db: Session, parsed: Parsed) -> Plan:
    """What the import would do, or FleetFileError naming every row the store refuses: a
    device id taken (in the file twice, or already in Vigil), a worker in the file twice or
    already in Vigil with the same name, organisation and team."""
    workers = parsed.fleet.workers
    problems: list[str] = []
    first_of: dict[str, str] = {}
    for i, w in enumerate(workers):
        for j, d in enumerate(w.devices):
            here = parsed.where(i, j)
            if d.id in first_of:
                problems.append(f"{here}: device {d.id!r} is also on {first_of[d.id]}")
            else:
                first_of[d.id] = here
    for taken in _existing_devices(db, list(first_of)):
        problems.append(f"{first_of[taken]}: device {taken!r} is already in Vigil")
    seen: dict[tuple[str, str | None, str], str] = {}
    for i, w in enumerate(workers):
        key = (w.organisation, w.team, w.name)
        if key in seen:
            problems.append(
                f"{parsed.where(i)}: {_named(*key)} is also on {seen[key]}; "
                "give one of them a different name (the console and the alerts tell them apart "
                "by it)"
            )
        else:
            seen[key] = parsed.where(i)
    for key in _existing_workers(db, list(seen)):
        problems.append(f"{seen[key]}: {_named(*key)} is already in Vigil")
    if problems:
        raise FleetFileError("\n".join(problems))
    orgs = set(db.scalars(select(Organisation.name)))
    teams = set(db.execute(select(Organisation.name, Team.name).join(Team)))
    return Plan(
        workers=len(workers),
        devices=len(first_of),
        new_organisations=sorted({w.organisation for w in workers} - orgs),
        new_teams=sorted(
            f"{o} / {t}" for o, t in {(w.organisation, w.team) for w in workers if w.team} - teams
        ),
    )


def _named(org: str, team: str | None, name: str) -> str:
    return f"worker {name!r} of {org}" + (f" / {team}" if team else "")


T = TypeVar("T")


def _chunks(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _existing_devices(db: Session, ids: list[str]) -> Iterable[str]:
    for chunk in _chunks(ids):
        yield from db.scalars(select(Device.id).where(Device.id.in_(chunk)))


def _existing_workers(
    db: Session, keys: list[tuple[str, str | None, str]]
) -> Iterable[tuple[str, str | None, str]]:
    names = {name for _, _, name in keys}
    wanted = set(keys)
    for chunk in _chunks(sorted(names)):
        rows = db.execute(
            select(Organisation.name, Team.name, Worker.name)
            .join(Organisation, Organisation.id == Worker.org_id)
            .outerjoin(Team, Team.id == Worker.team_id)
            .where(Worker.name.in_(chunk))
        )
        yield from (row for row in rows if row in wanted)


def hash_pins(parsed: Parsed) -> list[PinHashes | None]:
    """Each worker's PIN hashes, made side by side on every core before the transaction: at
    tens of milliseconds each, a fleet's take minutes made one by one."""
    pins = [w.pins() for w in parsed.fleet.workers]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return list(pool.map(lambda p: PinHashes.of(p) if p else None, pins))


def apply(
    db: Session,
    parsed: Parsed,
    hashes: list[PinHashes | None],
    *,
    actor: str,
    public_url: str,
    file_sha256: str,
) -> list[Imported]:
    """Everything in the file, in the caller's transaction, after `check` (again, in this
    transaction); each device's credential, to be written once."""
    plan = check(db, parsed)
    orgs: dict[str, Organisation] = {}
    teams: dict[tuple[str, str], Team] = {}
    out: list[Imported] = []
    for w, pins in zip(parsed.fleet.workers, hashes, strict=True):
        org = orgs.get(w.organisation) or orgs.setdefault(
            w.organisation, get_or_create_org(db, w.organisation)
        )
        team = None
        if w.team:
            key = (w.organisation, w.team)
            team = teams.get(key) or teams.setdefault(key, get_or_create_team(db, org, w.team))
        fields = WorkerFields(name=w.name, phone=w.phone, responder_notes=w.notes)
        worker = insert_worker(
            db, fields, pins, org_id=org.id, team_id=team.id if team else None, actor=actor
        )
        for d in w.devices:
            device, secret = admin.add(
                db,
                EVERYTHING,
                d.id,
                worker_id=worker.id,
                kind=d.kind,
                heartbeat_interval_s=d.heartbeat_interval_s,
                actor=actor,
            )
            cred = admin.credential(device.id, device.kind, secret, public_url)
            out.append(Imported(cred, w.name, w.organisation, w.team))
    audit(
        db,
        actor,
        "fleet_imported",
        f"{plan.workers} workers, {plan.devices} devices",
        sha256=file_sha256,
        new_organisations=plan.new_organisations,
        new_teams=plan.new_teams,
    )
    return out


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
