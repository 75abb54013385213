"""Small-area geometry: metres east/north of a centre point to latitude/longitude and back."""

from __future__ import annotations

import math

# Metres per degree of latitude; good to 0.5 % anywhere, plenty for a walk around a town.
M_PER_DEG_LAT = 111_320.0


def offset(centre: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    """The (lat, lon) that lies east_m and north_m metres from `centre`."""
    lat0, lon0 = centre
    lat = lat0 + north_m / M_PER_DEG_LAT
    lon = lon0 + east_m / (M_PER_DEG_LAT * math.cos(math.radians(lat0)))
    return lat, lon


def metres_from(centre: tuple[float, float], point: tuple[float, float]) -> tuple[float, float]:
    """(east_m, north_m) of `point` from `centre`; the inverse of offset()."""
    lat0, lon0 = centre
    lat, lon = point
    north = (lat - lat0) * M_PER_DEG_LAT
    east = (lon - lon0) * M_PER_DEG_LAT * math.cos(math.radians(lat0))
    return east, north


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    east, north = metres_from(a, b)
    return math.hypot(east, north)


def heading_deg(east_m: float, north_m: float) -> float:
    """Compass heading of a movement: 0 north, 90 east, in [0, 360)."""
    return math.degrees(math.atan2(east_m, north_m)) % 360.0
