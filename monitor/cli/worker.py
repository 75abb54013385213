"""`vigil worker`: the lone workers and their PINs, and `vigil team`: their teams. The same
service functions and checks as the console's Admin tab, with the whole service's scope."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from monitor.cli.common import fail, open_store

app = typer.Typer(help="Lone workers.", no_args_is_help=True)
teams = typer.Typer(help="Teams of workers.", no_args_is_help=True)

# Typed twice, hidden: a PIN mistyped once would be what the worker has to remember.
CancelPin = Annotated[
    str,
    typer.Option(
        prompt="Cancel PIN", hide_input=True, confirmation_prompt=True, help="4 to 8 digits."
    ),
]
DuressPin = Annotated[
    str,
    typer.Option(
        prompt="Duress PIN",
        hide_input=True,
        confirmation_prompt=True,
        help="4 to 8 digits, not the cancel PIN: cancels as if, and calls for help silently.",
    ),
]


def refusal(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())


@contextmanager
def changing() -> Iterator[Session]:
    """A transaction on the store; a refusal (bad input) is a clear error and changes nothing."""
    store = open_store()
    try:
        with store.begin() as db:
            yield db
    except ValidationError as e:
        raise fail(refusal(e)) from None
    except ValueError as e:
        raise fail(str(e)) from None
    finally:
        store.dispose()


@app.command("add")
def worker_add(
    name: str,
    cancel_pin: CancelPin,
    duress_pin: DuressPin,
    phone: Annotated[str, typer.Option(help="With its country code: +44 7700 900123.")] = "",
    team: Annotated[str | None, typer.Option()] = None,
    org: Annotated[str, typer.Option(help="Organisation name.")] = "Default",
    notes: Annotated[str, typer.Option(help="For responders: medical, vehicle...")] = "",
) -> None:
    """Add a lone worker with their cancel and duress PINs (kept only as hashes)."""
    from monitor.orgs.schemas import WorkerIn
    from monitor.orgs.service import add_worker

    try:
        spec = WorkerIn(
            name=name,
            phone=phone,
            team=team,
            responder_notes=notes,
            cancel_pin=cancel_pin,
            duress_pin=duress_pin,
        )
    except ValidationError as e:
        raise fail(refusal(e)) from None
    with changing() as db:
        made = _made_by_adding(db, org, spec.team)
        w = add_worker(
            db,
            name=spec.name,
            phone=spec.phone,
            team=spec.team,
            responder_notes=spec.responder_notes,
            cancel_pin=spec.cancel_pin,
            duress_pin=spec.duress_pin,
            org_name=org,
            actor="cli",
        )
        where = f"team {spec.team} of {org}" if spec.team else org
        # Said when it is new: a name mistyped makes an organisation or team of its own.
        typer.echo(f"worker {w.id} added: {w.name}, {where}" + (f" ({made})" if made else ""))


def _made_by_adding(db: Session, org: str, team: str | None) -> str:
    """What `add_worker` is about to make besides the worker: "", "new team", "new
    organisation and team"..."""
    from sqlalchemy import select

    from monitor.orgs.models import Organisation, Team

    org_id = db.scalar(select(Organisation.id).where(Organisation.name == org))
    new_team = team is not None and (
        org_id is None
        or db.scalar(select(Team.id).where(Team.org_id == org_id, Team.name == team)) is None
    )
    parts = (["organisation"] if org_id is None else []) + (["team"] if new_team else [])
    return f"new {' and '.join(parts)}" if parts else ""


@app.command("list")
def worker_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation's.")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's.")] = None,
) -> None:
    """Every worker: id, name, team, organisation, phone, and whether their PINs are set."""
    from monitor.orgs.scope import EVERYTHING
    from monitor.orgs.workers import list_workers

    store = open_store()
    try:
        with store.session() as db:
            rows = list_workers(db, EVERYTHING, org=org, team=team)
    finally:
        store.dispose()
    table(
        ["ID", "NAME", "TEAM", "ORGANISATION", "PHONE", "PINS"],
        [
            [str(w.id), w.name, w.team or "-", w.org or "", w.phone or "-", pins_word(w.pins_set)]
            for w in rows
        ],
        empty="no workers" + (" match" if org or team else ""),
    )


def pins_word(pins_set: bool) -> str:
    return "set" if pins_set else "not set"


@app.command("set-pins")
def worker_set_pins(worker_id: int, cancel_pin: CancelPin, duress_pin: DuressPin) -> None:
    """Give a worker new cancel and duress PINs (or send them a link to choose their own, from
    the console's Admin tab)."""
    from monitor.orgs.schemas import Pins
    from monitor.orgs.scope import EVERYTHING
    from monitor.orgs.workers import set_pins

    try:
        pins = Pins(cancel_pin=cancel_pin, duress_pin=duress_pin)
    except ValidationError as e:
        raise fail(refusal(e)) from None
    with changing() as db:
        w = set_pins(db, worker_id, pins, scope=EVERYTHING, actor="cli")
        typer.echo(f"worker {w.id} ({w.name}): new PINs set")


@teams.command("list")
def team_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation's.")] = None,
) -> None:
    """Every team: id, name, organisation, and how many workers it has."""
    from monitor.orgs.scope import EVERYTHING
    from monitor.orgs.service import list_teams

    store = open_store()
    try:
        with store.session() as db:
            rows = list_teams(db, EVERYTHING, org=org)
    finally:
        store.dispose()
    table(
        ["ID", "TEAM", "ORGANISATION", "WORKERS"],
        [[str(t.id), t.name, t.org, str(t.workers)] for t in rows],
        empty="no teams",
    )


@teams.command("add")
def team_add(
    name: str,
    org: Annotated[str, typer.Option(help="Organisation name (made if new).")] = "Default",
) -> None:
    """Add a team to an organisation."""
    from sqlalchemy import select

    from monitor.orgs.models import Organisation
    from monitor.orgs.schemas import OrgIn, TeamIn
    from monitor.orgs.scope import EVERYTHING
    from monitor.orgs.service import add_org, add_team

    try:
        spec, org_spec = TeamIn(name=name), OrgIn(name=org)
    except ValidationError as e:
        raise fail(refusal(e)) from None
    with changing() as db:
        # A new organisation is made as the console's administrators make one: checked and
        # audited (organisation_added).
        org_row = db.scalar(
            select(Organisation).where(Organisation.name == org_spec.name)
        ) or add_org(db, org_spec, scope=EVERYTHING, actor="cli")
        t = add_team(db, spec.name, org_id=org_row.id, scope=EVERYTHING, actor="cli")
        typer.echo(f"team {t.id} added: {t.name} ({org_row.name})")


def table(headers: list[str], rows: list[list[str]], *, empty: str) -> None:
    if not rows:
        typer.echo(empty)
        return
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for r in [headers, *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
