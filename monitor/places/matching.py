"""Which place a visit or an alert is at: the one the worker chose, or the nearest within
VIGIL_PLACE_MATCH_M of its position, always of the worker's own organisation.

Never called on the alert ingest path: an alert is matched when someone reads its cautions,
a visit when it starts (on the visit's own worker path)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.places.models import Place

EARTH_RADIUS_M = 6_371_008.8
CHOSEN = "chosen"
POSITION = "position"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine): within a few metres at the distances that matter."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Match:
    place: Place
    by: str  # CHOSEN or POSITION
    distance_m: float | None  # from the position matched, where there is one


@dataclass(frozen=True)
class Box:
    south: float
    north: float
    west: float
    east: float


def box(lat: float, lon: float, within_m: float) -> Box:
    """A box of latitudes and longitudes holding every point within `within_m` of (lat,
    lon): a cheap first filter in SQL, before the exact distance. Degrees of longitude
    shrink towards the poles; near them, and across the 180th meridian, any longitude."""
    dlat = math.degrees(within_m / EARTH_RADIUS_M)
    cos = math.cos(math.radians(lat))
    dlon = 360.0 if cos < 0.01 else math.degrees(within_m / EARTH_RADIUS_M) / cos
    west, east = lon - dlon, lon + dlon
    if west < -180 or east > 180:
        west, east = -180.0, 180.0
    return Box(lat - dlat, lat + dlat, west, east)


def nearest(db: Session, org_id: int, lat: float, lon: float, within_m: float) -> Match | None:
    """The organisation's place nearest to (lat, lon), if within `within_m` metres."""
    if within_m <= 0:
        return None
    b = box(lat, lon, within_m)
    rows = db.scalars(
        select(Place).where(
            Place.org_id == org_id,
            Place.lat.between(b.south, b.north),
            Place.lon.between(b.west, b.east),
        )
    ).all()
    best: Match | None = None
    for place in rows:
        assert place.lat is not None and place.lon is not None
        d = distance_m(lat, lon, place.lat, place.lon)
        if d <= within_m and (best is None or d < (best.distance_m or 0.0)):
            best = Match(place, POSITION, d)
    return best


def for_visit(
    db: Session,
    org_id: int | None,
    chosen: int | None,
    lat: float | None,
    lon: float | None,
    within_m: float,
) -> Match | None:
    """The place a visit starting now is at: the one chosen on the device if it is one of
    the worker's organisation (another's is ignored, as if none were chosen), otherwise the
    nearest to where it started."""
    if org_id is None:
        return None
    if chosen is not None:
        place = db.get(Place, chosen)
        if place is not None and place.org_id == org_id:
            d = None
            if lat is not None and lon is not None and place.lat is not None:
                assert place.lon is not None
                d = distance_m(lat, lon, place.lat, place.lon)
            return Match(place, CHOSEN, d)
    if lat is None or lon is None:
        return None
    return nearest(db, org_id, lat, lon, within_m)
