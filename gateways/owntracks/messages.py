"""OwnTracks' JSON (owntracks.org/booklet/tech/json/) turned into protocol-v1 messages.

Only the mapping lives here: fields are carried over as they come, so a value out of range or
of the wrong type is refused by monitor's own parser (and recorded there), not by a second
set of rules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from monitor.devices.service import OWNTRACKS
from monitor.protocol import AlertMsg

# The device kind of an OwnTracks app in the registry (`vigil device add --kind owntracks`).
KIND = OWNTRACKS

# What a worker types as the POI (or tag) of a manual report to ask for help (iOS only:
# docs/integrations.md, "OwnTracks").
HELP_WORDS = frozenset({"help", "sos"})

# The command OwnTracks answers with a fix (`t: "r"`): what `locate` is for a v1 device.
REPORT_LOCATION: dict[str, Any] = {"_type": "cmd", "action": "reportLocation"}

# Types that carry nothing Vigil uses (cards, waypoints, configuration, beacons, steps, the
# app's own status): accepted and dropped.
IGNORED = frozenset(
    {
        "card",
        "waypoint",
        "waypoints",
        "configuration",
        "beacon",
        "steps",
        "status",
        "cmd",
        "request",
        "dump",
    }
)


class NotOwnTracks(ValueError):
    """A payload that is not an OwnTracks message at all, or one Vigil cannot read."""


@dataclass(frozen=True)
class V1:
    """One protocol-v1 message for a device: its topic suffix and its body."""

    suffix: str
    body: dict[str, Any]

    def topic(self, device_id: str) -> str:
        return f"vigil/v1/{device_id}/{self.suffix}"

    def payload(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()


def decode(payload: bytes) -> dict[str, Any] | None:
    """The message as a JSON object; None for the empty payload OwnTracks sends when a friend
    is deleted (to be ignored, the booklet says)."""
    if not payload.strip():
        return None
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise NotOwnTracks("payload is not valid JSON") from e
    if not isinstance(data, dict) or not isinstance(data.get("_type"), str):
        raise NotOwnTracks("payload is not an OwnTracks message: a JSON object with _type")
    if data["_type"] == "encrypted":
        raise NotOwnTracks("encrypted payloads are not supported: turn encryption off")
    return data


def translate(data: dict[str, Any]) -> list[V1]:
    """What one OwnTracks message means for Vigil; [] for what it ignores."""
    kind = data["_type"]
    if kind == "location":
        help_asked = _help_asked(data)
        if help_asked is not None:
            # The alert's position is stored with it, once however often it comes.
            return [V1("alert", _alert(data, help_asked))]
        return [V1("location", _location(data))]
    if kind == "transition":
        # An enter or leave is where the worker was at that moment: kept as a position. The
        # region's name goes into an open visit's timeline as well (`place`, places.py).
        return [V1("location", _location(data))]
    if kind == "lwt":
        # The lwt's `tst` is when the app connected, not when it went: no time is given.
        return [V1("status", {"v": 1, "online": False})]
    return []


# How long a region's name may be in a visit's timeline; the app lets it be any length.
PLACE_NAME_MAX = 200
_ARRIVED = {"enter": "Arrived at", "leave": "Left"}
# `t` of a transition: a beacon's region, or a circle on the map (`c`, and what else comes).
_REGION_KIND = {"b": "OwnTracks beacon"}


@dataclass(frozen=True)
class Place:
    """A transition as an entry of a visit's timeline."""

    at: datetime
    text: str
    # The same report sent again names the same key (device, time, event, region).
    key: str
    data: dict[str, Any]


def place(device_id: str, data: dict[str, Any]) -> Place | None:
    """The timeline entry an OwnTracks `transition` makes; None for anything else, or one
    without a readable event, region name or time."""
    event, desc, tst = data.get("event"), data.get("desc"), data.get("tst")
    if data.get("_type") != "transition" or event not in _ARRIVED:
        return None
    if not isinstance(desc, str) or not desc.strip():
        return None
    if not isinstance(tst, int | float) or isinstance(tst, bool):
        return None
    try:
        at = datetime.fromtimestamp(tst, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    name = " ".join(desc.split())[:PLACE_NAME_MAX]
    region = _REGION_KIND.get(str(data.get("t")), "OwnTracks region")
    digest = hashlib.sha256(json.dumps([device_id, tst, event, desc]).encode()).hexdigest()
    return Place(
        at=at,
        text=f"{_ARRIVED[event]} {name} ({region})",
        key=f"owntracks:{digest}",
        data={"source": "owntracks", "device_id": device_id, "event": event, "region": name},
    )


def _ms(tst: Any) -> Any:
    # Seconds to milliseconds; anything else goes on as it is, for the parser to refuse.
    return tst * 1000 if isinstance(tst, int) and not isinstance(tst, bool) else tst


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _loc(data: dict[str, Any]) -> dict[str, Any]:
    loc: dict[str, Any] = {"lat": data.get("lat"), "lon": data.get("lon")}
    # OwnTracks leaves out acc, alt, cog and vel when they are zero.
    for theirs, ours in (("acc", "acc"), ("alt", "alt"), ("cog", "hdg")):
        if theirs in data:
            loc[ours] = data[theirs]
    vel = data.get("vel")
    if vel is not None:
        loc["spd"] = round(vel / 3.6, 2) if _number(vel) else vel  # km/h to m/s
    return loc


def _location(data: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "ts": _ms(data.get("tst")), "loc": _loc(data)}
    if "batt" in data:
        body["batt"] = data["batt"]
    return body


def _help_asked(data: dict[str, Any]) -> str | None:
    """The word of a manual report (`t: "u"`) whose POI or tag asks for help, if it does."""
    if data.get("t") != "u":
        return None
    for key in ("poi", "tag"):
        value = data.get(key)
        if isinstance(value, str) and value.strip().lower() in HELP_WORDS:
            return f"{key} {value.strip()!r}"
    return None


def _alert(data: dict[str, Any], asked: str) -> dict[str, Any]:
    body = _location(data)
    # One alert per report: the app sends a queued report again with the same `tst`.
    body.update(
        id=f"owntracks-{data.get('tst')}",
        type="red",
        trigger="app",
        note=f"OwnTracks manual report with {asked}",
    )
    return _without_refused_details(body)


def _without_refused_details(body: dict[str, Any]) -> dict[str, Any]:
    """The alert without what the protocol would refuse it for in its position or battery
    (a phone's -1 for a speed or course it did not measure, a position out of range): a
    detail must not cost a worker asking for help the alert, as it must not a tracker's
    alarm (gateways/osmand_messages.py). The protocol's own rules decide; anything else
    wrong is left for ingest to refuse and record."""
    try:
        AlertMsg.model_validate_json(json.dumps(body))
    except ValidationError as err:
        for e in err.errors():
            where = e["loc"]
            if where[:1] == ("batt",):
                body.pop("batt", None)
            elif where[:1] == ("loc",):
                loc = body.get("loc")
                field = where[1] if len(where) > 1 else None
                if isinstance(loc, dict) and field in ("acc", "alt", "spd", "hdg"):
                    loc.pop(field, None)
                else:
                    body.pop("loc", None)  # no usable latitude and longitude
    return body
