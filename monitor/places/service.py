"""Places and cautions: add, change and delete, with who may change which caution (reads.py
holds who sees which).

Plain functions taking the session as a keyword, for the routes and the CLI alike: every
rule about what may be stored, and who may see or change a caution, is here once. Each
change is audited in the caller's transaction by the function that makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import column, delete, select, table, update
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.db import utcnow
from monitor.orgs.models import Organisation, Team
from monitor.orgs.scope import Scope
from monitor.places.errors import PlaceForbidden, PlaceRefused
from monitor.places.models import Caution, Place
from monitor.places.reads import address_key, get_caution, get_place, org_of, today
from monitor.places.schemas import (
    CautionChange,
    CautionIn,
    PlaceChange,
    PlaceIn,
)

# How far ahead a caution may be kept before someone must look at it again.
MAX_KEEP = timedelta(days=3 * 366)


# The visits' link to their place, named here because visits sit above places (a visit is
# matched to a place when it starts): deleting a place clears it.
_VISITS = table("visits", column("place_id"), column("place_match"))


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
