"""Places and cautions as people and devices read them: who sees which caution, search,
the review list, what a device is told at a visit's start."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import Session

from monitor.alerts.labels import CAUTION_KIND_LABELS
from monitor.orgs.models import Organisation, Team, Worker
from monitor.orgs.scope import Scope
from monitor.places.errors import PlaceNotFound
from monitor.places.models import Caution, Place
from monitor.places.schemas import (
    CautionOut,
    PlaceOut,
)

# A caution is due for review this long before it expires, whatever its review date.
REVIEW_BEFORE_EXPIRY = timedelta(days=14)


SEARCH_LIMIT = 200


def today() -> date:
    return datetime.now(UTC).date()


def address_key(address: str) -> str:
    """The address folded for searching: lower case, its words one space apart."""
    return " ".join(re.findall(r"\w+", address.casefold()))[:300]


def _words(q: str) -> list[str]:
    return re.findall(r"\w+", q.casefold())[:8]


# Who sees what.


def org_of(db: Session, scope: Scope) -> int | None:
    """The organisation a scope is within (a team's), None for the whole service."""
    if scope.org_id is not None or scope.team_id is None:
        return scope.org_id
    return db.scalar(select(Team.org_id).where(Team.id == scope.team_id))


def _places_seen(db: Session, scope: Scope) -> ColumnElement[bool]:
    if scope.service_wide:
        return true()
    return Place.org_id == org_of(db, scope)


def _cautions_seen(db: Session, scope: Scope) -> ColumnElement[bool]:
    """Cautions a person in `scope` reads: their organisation's, and of those a team scope
    reads the whole organisation's and its own team's only."""
    if scope.service_wide:
        return true()
    org = Caution.org_id == org_of(db, scope)
    if scope.team_id is None:
        return org
    return and_(org, or_(Caution.team_id.is_(None), Caution.team_id == scope.team_id))


def _current(on: date) -> ColumnElement[bool]:
    # Expired cautions are hidden from every read until the expiry job deletes them.
    return Caution.expires_on >= on


def review_due(caution: Caution, on: date) -> bool:
    return (caution.review_on is not None and caution.review_on <= on) or (
        caution.expires_on <= on + REVIEW_BEFORE_EXPIRY
    )


def get_place(db: Session, place_id: int, scope: Scope, *, for_update: bool = False) -> Place:
    place = db.get(Place, place_id, with_for_update=for_update)
    if place is None or not (scope.service_wide or place.org_id == org_of(db, scope)):
        raise PlaceNotFound(f"no place {place_id}")
    return place


def get_caution(db: Session, caution_id: int, scope: Scope) -> Caution:
    caution = db.scalar(
        select(Caution).where(
            Caution.id == caution_id, _cautions_seen(db, scope), _current(today())
        )
    )
    if caution is None:
        raise PlaceNotFound(f"no caution {caution_id}")
    return caution


def cautions_at(
    db: Session, place_id: int, *, scope: Scope | None = None, team_id: int | None = None
) -> list[Caution]:
    """The current cautions at a place that a person in `scope` sees or, without a scope,
    that a worker of team `team_id` (None: of no team) is shown; newest first."""
    seen = (
        _cautions_seen(db, scope)
        if scope is not None
        else or_(Caution.team_id.is_(None), Caution.team_id == team_id)
    )
    return list(
        db.scalars(
            select(Caution)
            .where(Caution.place_id == place_id, seen, _current(today()))
            .order_by(Caution.recorded_at.desc(), Caution.id.desc())
        )
    )


# What the routes show.


def caution_out(db: Session, cautions: Sequence[Caution]) -> list[CautionOut]:
    teams = _team_names(db, {c.team_id for c in cautions if c.team_id is not None})
    on = today()
    return [
        CautionOut(
            id=c.id,
            place_id=c.place_id,
            kind=c.kind,
            kind_label=CAUTION_KIND_LABELS.get(c.kind, c.kind),
            text=c.text,
            team_id=c.team_id,
            team=teams.get(c.team_id) if c.team_id is not None else None,
            recorded_by=c.recorded_by,
            recorded_at=c.recorded_at,
            review_on=c.review_on,
            expires_on=c.expires_on,
            source_alert_id=c.source_alert_id,
            review_due=review_due(c, on),
        )
        for c in cautions
    ]


def _team_names(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {i: name for i, name in db.execute(select(Team.id, Team.name).where(Team.id.in_(ids)))}


def place_out(db: Session, places: Sequence[Place], scope: Scope) -> list[PlaceOut]:
    """Places with the counts of their cautions this scope sees (one query for them all)."""
    ids = [p.id for p in places]
    counts: dict[int, tuple[int, int]] = {}
    if ids:
        on = today()
        due = or_(Caution.review_on <= on, Caution.expires_on <= on + REVIEW_BEFORE_EXPIRY)
        for place_id, n, n_due in db.execute(
            select(
                Caution.place_id,
                func.count(Caution.id),
                func.count(Caution.id).filter(due),
            )
            .where(Caution.place_id.in_(ids), _cautions_seen(db, scope), _current(on))
            .group_by(Caution.place_id)
        ):
            counts[place_id] = (n, n_due)
    org_ids = {p.org_id for p in places}
    orgs = {
        i: name
        for i, name in db.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids))
        )
    }
    return [
        PlaceOut(
            id=p.id,
            org_id=p.org_id,
            org=orgs.get(p.org_id, ""),
            address=p.address,
            lat=p.lat,
            lon=p.lon,
            caution_count=counts.get(p.id, (0, 0))[0],
            review_due_count=counts.get(p.id, (0, 0))[1],
        )
        for p in places
    ]


def search(
    db: Session, q: str, *, scope: Scope | None = None, org_id: int | None = None, limit: int = 50
) -> list[Place]:
    """Places whose address has every word of `q` in it, in any order ("elm 12" finds
    "12 Elm Street"), within `scope` or of the organisation `org_id`; by address."""
    where: list[ColumnElement[bool]] = [
        Place.address_key.contains(w, autoescape=True) for w in _words(q)
    ]
    if scope is not None:
        where.append(_places_seen(db, scope))
    if org_id is not None:
        where.append(Place.org_id == org_id)
    return list(
        db.scalars(
            select(Place)
            .where(*where)
            .order_by(Place.address_key, Place.id)
            .limit(min(limit, SEARCH_LIMIT))
        )
    )


def review_list(db: Session, scope: Scope) -> list[tuple[Caution, str]]:
    """Current cautions in scope that are due for review, with their place's address; the
    most pressing first."""
    on = today()
    rows = db.execute(
        select(Caution, Place.address)
        .join(Place, Place.id == Caution.place_id)
        .where(
            _cautions_seen(db, scope),
            _current(on),
            or_(Caution.review_on <= on, Caution.expires_on <= on + REVIEW_BEFORE_EXPIRY),
        )
        .order_by(Caution.expires_on, Caution.id)
    ).all()
    found = [(c, address) for c, address in rows]
    found.sort(key=lambda r: min(r[0].review_on or r[0].expires_on, r[0].expires_on))
    return found


# Changes.


DEVICE_CAUTIONS = 10


DEVICE_TEXT = 300


# The cautions sent in one `visit_started`, at most this many bytes of JSON: the command
# stays far below the protocol's 16 KiB whatever the text (escaped non-ASCII is 6 bytes a
# character, some 12).
DEVICE_BUDGET = 6 * 1024


def device_cautions(db: Session, place_id: int, team_id: int | None) -> list[dict[str, str]]:
    """The current cautions at a place a worker of `team_id` is shown, as devices get them:
    at most 10, each text cut to 300 characters, within DEVICE_BUDGET bytes all told."""
    out: list[dict[str, str]] = []
    used = 0
    for c in cautions_at(db, place_id, team_id=team_id)[:DEVICE_CAUTIONS]:
        text = c.text if len(c.text) <= DEVICE_TEXT else c.text[: DEVICE_TEXT - 1] + "…"
        item = {"kind": c.kind, "label": CAUTION_KIND_LABELS.get(c.kind, c.kind), "text": text}
        used += len(json.dumps(item))
        if used > DEVICE_BUDGET:
            break
        out.append(item)
    return out


def visit_words(db: Session, place_id: int | None, worker_id: int | None) -> dict[str, Any]:
    """The fields a `visit_started` carries for a visit matched to a place: the place and
    the cautions the worker is shown there (none for a visit matched to no place)."""
    if place_id is None:
        return {}
    place = db.get(Place, place_id)
    if place is None:
        return {}
    team_id = db.scalar(select(Worker.team_id).where(Worker.id == worker_id)) if worker_id else None
    return {
        "place": {"id": place.id, "address": place.address},
        "cautions": device_cautions(db, place.id, team_id),
    }
