"""Procedures as YAML: their validation, storage, dump, and which procedure an alert gets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitor.alerts.states import AlertType
from monitor.orgs.models import Organisation, Team
from monitor.procedures.models import Procedure, ProcedureFile, ProcedureIn
from monitor.yaml_input import NotYaml, read_yaml

DEFAULT_FILE = Path(__file__).with_name("default_procedures.yaml")


class ProcedureError(ValueError):
    """A procedures file that cannot be used; each line names the place that is wrong."""


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _named(raw: Any, loc: tuple[int | str, ...]) -> str:
    """`procedures[2] (Panic).steps[0].do`: the procedure's name helps find it in a long file."""
    where = _where(loc)
    if len(loc) >= 2 and loc[0] == "procedures" and isinstance(loc[1], int):
        try:
            name = raw["procedures"][loc[1]]["name"]
        except (KeyError, IndexError, TypeError):
            return where
        if isinstance(name, str):
            head = f"procedures[{loc[1]}]"
            return f"{head} ({name}){where[len(head) :]}"
    return where


def parse_file(text: str) -> ProcedureFile:
    """The file checked in full; ProcedureError lists every problem, each with its place."""
    try:
        raw = read_yaml(text)
    except NotYaml as exc:
        raise ProcedureError(str(exc)) from exc
    raw = raw if raw is not None else {}
    try:
        parsed = ProcedureFile.model_validate(raw)
    except ValidationError as exc:
        lines = (f"{_named(raw, e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ProcedureError("\n".join(lines)) from exc
    problems = []
    seen: dict[str, int] = {}
    covered: dict[tuple[str, str | None, str | None], str] = {}
    for i, p in enumerate(parsed.procedures):
        if p.name in seen:
            problems.append(f"procedures[{i}].name: {p.name!r} appears twice")
        seen.setdefault(p.name, i)
        if len(set(p.alert_types)) != len(p.alert_types):
            problems.append(f"procedures[{i}] ({p.name}).alert_types: a type appears twice")
        # Two procedures for the same alerts would leave the choice to their names.
        for kind in [t.value for t in p.alert_types] or ["(every type)"]:
            key = (kind, p.org, p.team)
            if key in covered:
                problems.append(
                    f"procedures[{i}] ({p.name}).alert_types: {kind} for this "
                    f"{'team' if p.team else 'organisation' if p.org else 'service'} "
                    f"is already {covered[key]!r}'s"
                )
            covered.setdefault(key, p.name)
    if problems:
        raise ProcedureError("\n".join(problems))
    return parsed


def check_names(db: Session, parsed: ProcedureFile) -> None:
    """Every organisation and team named must exist: a misspelt team would quietly get the
    procedure meant for everybody."""
    orgs = set(db.scalars(select(Organisation.name)))
    teams = {(o, t) for o, t in db.execute(select(Organisation.name, Team.name).join(Team))}
    problems = []
    for i, p in enumerate(parsed.procedures):
        at = f"procedures[{i}] ({p.name})"
        if p.org is not None and p.org not in orgs:
            problems.append(f"{at}.org: no organisation is called {p.org!r}")
        if p.team is not None and not any(
            t == p.team and (p.org is None or o == p.org) for o, t in teams
        ):
            where = f" in {p.org!r}" if p.org is not None else ""
            problems.append(f"{at}.team: no team{where} is called {p.team!r}")
    if problems:
        raise ProcedureError("\n".join(problems))


_STORED = select(Procedure).order_by(Procedure.name)


def stored(db: Session) -> list[ProcedureIn]:
    return [ProcedureIn.model_validate(p.spec) for p in db.scalars(_STORED)]


def replace_all(db: Session, parsed: ProcedureFile) -> None:
    """Make the stored procedures exactly the file's (one transaction). Alerts keep the
    checklist they already have: it is in their timeline."""
    db.execute(delete(Procedure))
    db.flush()
    for p in parsed.procedures:
        db.add(Procedure(name=p.name, spec=p.model_dump(mode="json")))


def load_default(db: Session) -> bool:
    """The shipped procedures, into a store that has none (never over anything stored)."""
    if db.scalar(select(Procedure.id).limit(1)) is not None:
        return False
    replace_all(db, parse_file(DEFAULT_FILE.read_text(encoding="utf-8")))
    return True


def dump(db: Session) -> str:
    """The stored procedures as YAML, in the format `parse_file` reads."""
    out = []
    for p in stored(db):
        head = p.model_dump(mode="json", exclude_defaults=True, exclude={"steps"})
        steps = [s.do if s.detail is None else s.model_dump(exclude_none=True) for s in p.steps]
        out.append(head | {"steps": steps})
    return yaml.safe_dump({"procedures": out}, sort_keys=False, allow_unicode=True, width=90)


def choose(
    procedures: list[ProcedureIn], kind: str, org: str | None, team: str | None
) -> ProcedureIn | None:
    """The most specific procedure for an alert of this kind: a team's over an
    organisation's over one for everybody; among equals, one naming the type over one for
    every type. A procedure for every type never applies to duress: its steps (call the
    worker, say who you are) could give the worker away to whoever threatens them."""
    fits = [
        p
        for p in procedures
        if (kind in p.alert_types or (not p.alert_types and kind != AlertType.DURESS.value))
        and (p.org is None or p.org == org)
        and (p.team is None or p.team == team)
    ]
    if not fits:
        return None
    return min(
        fits,
        key=lambda p: (
            -(2 * (p.team is not None) + (p.org is not None)),
            not p.alert_types,
            p.name,
        ),
    )
