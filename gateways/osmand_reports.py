"""What an OsmAnd-protocol request says, in every shape Traccar Client and trackers send it:
query string or form body (`id`/`deviceid`, `lat`/`lon` or `location`, `timestamp`, ...),
the JSON body of Traccar Client versions built on a background-geolocation library
(`{"location": {...}, "device_id": ...}`), and the JSON array of the Traccar Client SDK's
JSON upload. Read the way Traccar's own decoder reads them; nothing here knows Vigil."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

KNOT_M_S = 1852 / 3600
# Traccar reads a numeric timestamp below 2^31 as seconds, anything above as milliseconds.
_SECONDS_BELOW = 2**31 - 1
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Trackers may send a few dozen buffered fixes in one JSON array; more is not a tracker.
MAX_REPORTS = 100


class Unreadable(ValueError):
    """The request cannot be read as the OsmAnd protocol: the reason is for the sender."""


@dataclass(frozen=True)
class Report:
    """One position report (or a report with no fix: an alarm, a battery level)."""

    identifier: str
    at_ms: int | None  # the fix's time as the tracker gave it; None when it gave none
    lat: float | None = None
    lon: float | None = None
    acc: float | None = None  # metres
    alt: float | None = None  # metres
    spd: float | None = None  # m/s (the protocol sends knots)
    hdg: float | None = None  # degrees
    batt: float | None = None  # percent
    charging: bool | None = None
    alarms: frozenset[str] = frozenset()


def _is_number_text(value: Any) -> bool:
    # Not float()'s own reading, which takes "nan", "inf" and "1_000".
    return isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise Unreadable(f"{name}: {value!r} is not a number")
    if not (isinstance(value, int | float) or _is_number_text(value)):
        raise Unreadable(f"{name}: {str(value)[:40]!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise Unreadable(f"{name}: {str(value)[:40]!r} is not a finite number")
    return number


def _optional(name: str, value: Any) -> float | None:
    return None if value is None or value == "" else _number(name, value)


def _unknown_if_negative(value: float | None) -> float | None:
    # Phones write -1 for what they did not measure (a speed, a heading, an accuracy).
    return None if value is None or value < 0 else value


def _flag(value: Any) -> bool:
    # As Traccar's Boolean.parseBoolean: "true" in any case is true, anything else false.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def timestamp_ms(value: Any) -> int:
    """Seconds or milliseconds since the epoch, ISO 8601, or `yyyy-MM-dd HH:mm:ss` (UTC)."""
    if (isinstance(value, int | float) and not isinstance(value, bool)) or _is_number_text(value):
        number = _number("timestamp", value)
        return round(number * 1000 if abs(number) < _SECONDS_BELOW else number)
    if not isinstance(value, str):
        raise Unreadable(f"timestamp: {str(value)[:40]!r} is not a time")
    text = value.strip()
    try:
        if "T" in text:
            at = datetime.fromisoformat(text)
        else:
            at = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Unreadable(
            f"timestamp: {text[:40]!r} is not seconds, milliseconds, ISO 8601 "
            "or yyyy-MM-dd HH:mm:ss"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # Traccar takes its own zone; Vigil's is UTC
    return round(at.timestamp() * 1000)


def _alarms(*values: Any) -> frozenset[str]:
    # Traccar joins several alarms of one position with commas.
    names: set[str] = set()
    for value in values:
        if isinstance(value, str):
            names.update(a.strip() for a in value.split(",") if a.strip())
    return frozenset(names)


def from_fields(fields: Mapping[str, Any]) -> Report:
    """A report from the protocol's flat fields (query string, form, or an SDK JSON item)."""
    identifier = fields.get("id", fields.get("deviceid"))
    if not isinstance(identifier, str) or not identifier:
        raise Unreadable("id: the device identifier is missing")
    lat, lon = _optional("lat", fields.get("lat")), _optional("lon", fields.get("lon"))
    if "location" in fields:
        parts = str(fields["location"]).split(",")
        if len(parts) < 2:
            raise Unreadable("location: expected lat,lon")
        lat, lon = _number("location", parts[0]), _number("location", parts[1])
    speed = _unknown_if_negative(_optional("speed", fields.get("speed")))
    hdg = _unknown_if_negative(_optional("bearing", fields.get("bearing", fields.get("heading"))))
    return Report(
        identifier=identifier,
        at_ms=None if fields.get("timestamp") in (None, "") else timestamp_ms(fields["timestamp"]),
        lat=lat,
        lon=lon,
        acc=_unknown_if_negative(_optional("accuracy", fields.get("accuracy"))),
        alt=_optional("altitude", fields.get("altitude")),
        spd=None if speed is None else speed * KNOT_M_S,
        hdg=hdg,
        batt=_optional("batt", fields.get("batt")),
        charging=_flag(fields["charge"]) if "charge" in fields else None,
        alarms=_alarms(fields.get("alarm")),
    )


def from_location(root: Mapping[str, Any], location: Mapping[str, Any]) -> Report:
    """A report from `{"location": {...}, "device_id": ...}`."""
    identifier = root.get("device_id")
    if not isinstance(identifier, str) or not identifier:
        raise Unreadable("device_id: the device identifier is missing")
    coords = location.get("coords")
    battery = location.get("battery")
    extras = location.get("extras")
    lat = lon = acc = alt = spd = hdg = None
    if isinstance(coords, Mapping):
        lat = _number("coords.latitude", coords.get("latitude"))
        lon = _number("coords.longitude", coords.get("longitude"))
        acc = _unknown_if_negative(_optional("coords.accuracy", coords.get("accuracy")))
        alt = _optional("coords.altitude", coords.get("altitude"))
        spd = _unknown_if_negative(_optional("coords.speed", coords.get("speed")))  # m/s here
        hdg = _unknown_if_negative(_optional("coords.heading", coords.get("heading")))
    batt: float | None = None
    charging: bool | None = None
    if isinstance(battery, Mapping):
        level = _unknown_if_negative(_optional("battery.level", battery.get("level")))
        batt = None if level is None else level * 100  # a fraction here
        charging = battery.get("is_charging") is True
    at = location.get("timestamp")
    return Report(
        identifier=identifier,
        at_ms=None if at in (None, "") else timestamp_ms(at),
        lat=lat,
        lon=lon,
        acc=acc,
        alt=alt,
        spd=spd,
        hdg=hdg,
        batt=batt,
        charging=charging,
        alarms=_alarms(
            location.get("alarm"), extras.get("alarm") if isinstance(extras, Mapping) else None
        ),
    )


def _from_json(body: bytes) -> list[Report]:
    try:
        root = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Unreadable("body is not valid JSON") from None
    items = root if isinstance(root, list) else [root]
    if not items or len(items) > MAX_REPORTS:
        raise Unreadable(f"expected 1 to {MAX_REPORTS} reports in one request")
    reports: list[Report] = []
    for item in items:
        if not isinstance(item, dict):
            raise Unreadable("each report must be a JSON object")
        location = item.get("location")
        if isinstance(location, dict):
            reports.append(from_location(item, location))
        elif isinstance(location, list):  # the library's batch upload
            reports.extend(from_location(item, one) for one in location if isinstance(one, dict))
        else:
            reports.append(from_fields(item))
    if not reports or len(reports) > MAX_REPORTS:
        raise Unreadable(f"expected 1 to {MAX_REPORTS} reports in one request")
    return reports


def read_request(query: str, content_type: str | None, body: bytes) -> list[Report]:
    """The reports of one request: JSON when it says so; otherwise the query string's fields,
    or, when it has none, the body's (a form), as Traccar reads them."""
    if content_type is not None and content_type.lower().startswith("application/json"):
        return _from_json(body)
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise Unreadable("body is not UTF-8") from None
    if not pairs:
        raise Unreadable("no fields: expected id, lat, lon, timestamp, ...")
    # A field given twice counts once, its last value, as in Traccar.
    return [from_fields(dict(pairs))]
