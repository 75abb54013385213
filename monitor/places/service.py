"""Places and cautions: add, change, delete, search, and who sees which caution.

Plain functions taking the session as a keyword, for the routes and the CLI alike: every
rule about what may be stored, and who may see or change a caution, is here once. Each
change is audited in the caller's transaction by the function that makes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, column, delete, func, or_, select, table, true, update
from sqlalchemy.orm import Session

from monitor.alerts.labels import CAUTION_KIND_LABELS
from monitor.audit.service import audit
from monitor.db import utcnow
from monitor.orgs.models import Organisation, Team, Worker
from monitor.orgs.scope import Scope
from monitor.places.models import Caution, Place
from monitor.places.schemas import (
    CautionChange,
    CautionIn,
    CautionOut,
    PlaceChange,
    PlaceIn,
    PlaceOut,
)

# A caution is due for review this long before it expires, whatever its review date.
REVIEW_BEFORE_EXPIRY = timedelta(days=14)
# How far ahead a caution may be kept before someone must look at it again.
MAX_KEEP = timedelta(days=3 * 366)
SEARCH_LIMIT = 200
# The visits' link to their place, named here because visits sit above places (a visit is
# matched to a place when it starts): deleting a place clears it.
_VISITS = table("visits", column("place_id"), column("place_match"))


class PlaceRefused(ValueError):
    """What was asked cannot be stored ("field: why"); nothing was changed (422)."""


class PlaceNotFound(LookupError):
    """No such place or caution within the person's scope (404: outside it, it does not
    exist for them)."""


class PlaceForbidden(PermissionError):
    """Within scope, but not theirs to change (403)."""


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


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and within which scope ("user:ana", her scope)."""

    name: str
    scope: Scope
    address: str = ""


def _position(lat: float | None, lon: float | None) -> None:
    if (lat is None) != (lon is None):
        raise PlaceRefused("lat: give both lat and lon, or neither")


def _address(text: str) -> str:
    address = " ".join(text.split())
    if not address_key(address):
        raise PlaceRefused("address: it has no letters or numbers")
    return address


def add_place(db: Session, data: PlaceIn, *, by: Actor) -> Place:
    _position(data.lat, data.lon)
    address = _address(data.address)
    org_id = _org_for_new(db, data.org_id, by.scope)
    place = Place(
        org_id=org_id,
        address=address,
        address_key=address_key(address),
        lat=data.lat,
        lon=data.lon,
        created_by=by.name,
    )
    db.add(place)
    db.flush()
    audit(
        db,
        by.name,
        "place_added",
        f"place:{place.id}",
        address=by.address,
        org_id=org_id,
        place=address,
        positioned=place.lat is not None,
    )
    return place


def _org_for_new(db: Session, asked: int | None, scope: Scope) -> int:
    own = org_of(db, scope)
    if not scope.service_wide:
        if asked is not None and asked != own:
            raise PlaceRefused("org_id: you may add places only to your own organisation")
        assert own is not None
        return own
    if asked is not None:
        if db.get(Organisation, asked) is None:
            raise PlaceRefused(f"org_id: there is no organisation {asked}")
        return asked
    orgs = db.scalars(select(Organisation.id).limit(2)).all()
    if len(orgs) != 1:
        raise PlaceRefused("org_id: say which organisation the place belongs to")
    return orgs[0]


def change_place(db: Session, place_id: int, data: PlaceChange, *, by: Actor) -> Place:
    place = get_place(db, place_id, by.scope, for_update=True)
    given = data.model_fields_set
    changes: dict[str, Any] = {}
    if "address" in given:
        if data.address is None:
            raise PlaceRefused("address: may not be empty")
        address = _address(data.address)
        if address != place.address:
            changes["address"] = address
    if given & {"lat", "lon"}:
        lat = data.lat if "lat" in given else place.lat
        lon = data.lon if "lon" in given else place.lon
        _position(lat, lon)
        if (lat, lon) != (place.lat, place.lon):
            changes["lat"], changes["lon"] = lat, lon
    if not changes:
        return place
    _only_own_team_cautions(db, place, by.scope, "change")
    for name, value in changes.items():
        setattr(place, name, value)
    place.address_key = address_key(place.address)
    # The address itself is said (a reader of the log must know which place); the
    # position only that it changed.
    said = {"place": changes["address"]} if "address" in changes else {}
    audit(
        db,
        by.name,
        "place_changed",
        f"place:{place.id}",
        address=by.address,
        changed=sorted(changes),
        **said,
    )
    return place


def delete_place(db: Session, place_id: int, *, by: Actor) -> None:
    """The place and its cautions; visits that went there keep no link to it."""
    place = get_place(db, place_id, by.scope, for_update=True)
    cautions = _only_own_team_cautions(db, place, by.scope, "delete")
    db.execute(
        update(_VISITS)
        .where(_VISITS.c.place_id == place.id)
        .values(place_id=None, place_match=None)
    )
    db.execute(delete(Caution).where(Caution.place_id == place.id))
    db.delete(place)
    audit(
        db,
        by.name,
        "place_deleted",
        f"place:{place_id}",
        address=by.address,
        place=place.address,
        cautions=[c.id for c in cautions],
    )


def _only_own_team_cautions(db: Session, place: Place, scope: Scope, verb: str) -> list[Caution]:
    """The place's cautions, if the scope may change the place itself: moving, renaming or
    deleting it changes where other teams' cautions are shown, so a team's supervisor may
    do so only while every caution there is their team's."""
    cautions = list(db.scalars(select(Caution).where(Caution.place_id == place.id)))
    if scope.team_id is not None and any(c.team_id != scope.team_id for c in cautions):
        raise PlaceForbidden(
            "the place has cautions of the whole organisation or of other teams: "
            f"only a supervisor of the organisation may {verb} it"
        )
    return cautions


def _team_for(db: Session, asked: int | None, place: Place, scope: Scope) -> int | None:
    """The team a caution is for: whoever may see the place may choose any of its
    organisation's teams or none; a team scope records only for its own team."""
    if scope.team_id is not None:
        if asked is not None and asked != scope.team_id:
            raise PlaceRefused("team_id: you may record cautions only for your own team")
        return scope.team_id
    if asked is None:
        return None
    team_org = db.scalar(select(Team.org_id).where(Team.id == asked))
    if team_org != place.org_id:
        raise PlaceRefused(f"team_id: the place's organisation has no team {asked}")
    return asked


def _dates(expires_on: date, review_on: date | None) -> None:
    on = today()
    if expires_on < on:
        raise PlaceRefused("expires_on: it is in the past")
    if expires_on > on + MAX_KEEP:
        raise PlaceRefused("expires_on: at most 3 years ahead")
    if review_on is not None and review_on > expires_on:
        raise PlaceRefused("review_on: it is after expires_on")


def add_caution(
    db: Session, place_id: int, data: CautionIn, *, by: Actor, source_alert_id: int | None = None
) -> Caution:
    place = get_place(db, place_id, by.scope, for_update=True)
    _dates(data.expires_on, data.review_on)
    caution = Caution(
        place_id=place.id,
        org_id=place.org_id,
        team_id=_team_for(db, data.team_id, place, by.scope),
        kind=data.kind.value,
        text=data.text.strip() or data.text,
        recorded_by=by.name,
        recorded_at=utcnow(),
        review_on=data.review_on,
        expires_on=data.expires_on,
        source_alert_id=source_alert_id,
    )
    db.add(caution)
    db.flush()
    audit(
        db,
        by.name,
        "caution_added",
        f"caution:{caution.id}",
        address=by.address,
        place_id=place.id,
        kind=caution.kind,
        team_id=caution.team_id,
        expires_on=caution.expires_on.isoformat(),
        source_alert_id=source_alert_id,
    )
    return caution


def _writable(db: Session, caution_id: int, scope: Scope) -> Caution:
    caution = get_caution(db, caution_id, scope)
    if scope.team_id is not None and caution.team_id != scope.team_id:
        raise PlaceForbidden("a caution of the whole organisation: only its supervisors change it")
    return caution


def change_caution(db: Session, caution_id: int, data: CautionChange, *, by: Actor) -> Caution:
    caution = _writable(db, caution_id, by.scope)
    given = data.model_fields_set
    for name in ("kind", "text", "expires_on"):
        if name in given and getattr(data, name) is None:
            raise PlaceRefused(f"{name}: may not be empty")
    new: dict[str, Any] = {}
    if data.kind is not None:
        new["kind"] = data.kind.value
    if data.text is not None:
        new["text"] = data.text
    if data.expires_on is not None:
        new["expires_on"] = data.expires_on
    if "review_on" in given:
        new["review_on"] = data.review_on
    if "team_id" in given:
        place = db.get(Place, caution.place_id)
        assert place is not None
        new["team_id"] = _team_for(db, data.team_id, place, by.scope)
    expires_on = new.get("expires_on", caution.expires_on)
    review_on = new.get("review_on", caution.review_on)
    if "expires_on" in new or "review_on" in new:
        _dates(expires_on, review_on)
    changed = sorted(k for k, v in new.items() if getattr(caution, k) != v)
    if not changed:
        return caution
    for name in changed:
        setattr(caution, name, new[name])
    caution.updated_by, caution.updated_at = by.name, utcnow()
    # What it says is personal data: the log says what changed, not the text.
    said = {k: _plain(new[k]) for k in changed if k != "text"}
    audit(
        db,
        by.name,
        "caution_changed",
        f"caution:{caution.id}",
        address=by.address,
        place_id=caution.place_id,
        changed=changed,
        **said,
    )
    return caution


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def delete_caution(db: Session, caution_id: int, *, by: Actor) -> None:
    caution = _writable(db, caution_id, by.scope)
    db.delete(caution)
    audit(
        db,
        by.name,
        "caution_deleted",
        f"caution:{caution_id}",
        address=by.address,
        place_id=caution.place_id,
        kind=caution.kind,
    )


# What a device is told.

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
