"""Requests exactly as Traccar Client and its SDK send them (read from their public source, our
own fixtures): one function per client, each taking the identifier, the fix and the alarm.

- Traccar Client for Android, 8.x (traccar-client-android, ProtocolFormatter and
  RequestManager): a POST with every field in the query string, no body, numbers in Java's
  `toString` ("0.0"), `charge` only when charging, `alarm` only for SOS.
- Traccar Client for iOS, 6.x (traccar-client-ios, ProtocolFormatter and RequestManager): a
  POST with the query written by hand (not percent-encoded), `lat`/`lon` to six decimals,
  `speed` and `bearing` left out when the phone did not measure them.
- Traccar Client 9.x built on a background-geolocation library: a POST of
  `{"location": {...}, "device_id": ...}` (the shapes in Traccar's OsmAndProtocolDecoderTest),
  the alarm in `extras`, the battery level a fraction, -1 for what was not measured.
- The Traccar Client SDK (traccar-client-sdk, HttpUploader), used by Traccar Client 10 on both
  platforms: a form POST (`id`, `lat`, `lon`, `timestamp` in seconds, `speed` in knots,
  `batt`, `charge`, `alarm`, `battery_health`, ...), or with its JSON upload a POST of a JSON
  array of objects with the same keys.
- A plain OsmAnd tracker: a GET, `deviceid`, `location=lat,lon`, `yyyy-MM-dd HH:mm:ss`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlencode


@dataclass(frozen=True)
class Fix:
    lat: float = 51.507210
    lon: float = -0.127650
    at_s: int = 1_763_802_000  # 2025-11-22 09:00:00 UTC
    speed_mps: float = 1.5
    bearing: float = 92.5
    altitude: float = 21.0
    accuracy: float = 6.0
    battery: int = 64
    charging: bool = False


@dataclass(frozen=True)
class Request:
    method: str
    url: str  # path and query
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def knots(mps: float) -> float:
    return round(mps * 1.94384 * 100) / 100


def android(path: str, identifier: str, fix: Fix, alarm: str | None = None) -> Request:
    # Uri.Builder.appendQueryParameter percent-encodes; Kotlin's Double.toString.
    q = [
        ("id", identifier),
        ("timestamp", str(fix.at_s)),
        ("lat", repr(fix.lat)),
        ("lon", repr(fix.lon)),
        ("speed", repr(knots(fix.speed_mps))),
        ("bearing", repr(fix.bearing)),
        ("altitude", repr(fix.altitude)),
        ("accuracy", repr(fix.accuracy)),
        ("batt", repr(float(fix.battery))),
    ]
    if fix.charging:
        q.append(("charge", "true"))
    if alarm is not None:
        q.append(("alarm", alarm))
    return Request("POST", f"{path}?{urlencode(q, quote_via=quote)}")


def ios(path: str, identifier: str, fix: Fix, alarm: str | None = None) -> Request:
    query = f"id={identifier}&timestamp={fix.at_s}&"
    query += f"lat={fix.lat:.06f}&lon={fix.lon:.06f}&"
    query += f"speed={knots(fix.speed_mps)}&bearing={fix.bearing}&"
    query += f"altitude={fix.altitude}&accuracy={fix.accuracy}&batt={fix.battery}&"
    if fix.charging:
        query += "charge=true&"
    if alarm is not None:
        query += f"alarm={alarm}&"
    return Request("POST", f"{path}?{query[:-1]}")


def background_geolocation(
    path: str, identifier: str, fix: Fix, alarm: str | None = None
) -> Request:
    at = datetime.fromtimestamp(fix.at_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    location = {
        "event": "motionchange",
        "is_moving": False,
        "uuid": "0e9a2473-a9a7-4c00-997b-fb97d2154e75",
        "timestamp": at,
        "odometer": 0,
        "coords": {
            "latitude": fix.lat,
            "longitude": fix.lon,
            "accuracy": fix.accuracy,
            "speed": fix.speed_mps,
            "speed_accuracy": -1,
            "heading": fix.bearing,
            "heading_accuracy": -1,
            "altitude": fix.altitude,
            "altitude_accuracy": -1,
        },
        "activity": {"type": "still", "confidence": 100},
        "battery": {"is_charging": fix.charging, "level": fix.battery / 100},
        "extras": {"alarm": alarm} if alarm is not None else {},
    }
    body = json.dumps({"location": location, "device_id": identifier}).encode()
    return Request("POST", path, {"Content-Type": "application/json"}, body)


def _sdk_fields(identifier: str, fix: Fix, alarm: str | None) -> dict[str, object]:
    fields: dict[str, object] = {
        "id": identifier,
        "lat": fix.lat,
        "lon": fix.lon,
        "timestamp": fix.at_s,
        "accuracy": fix.accuracy,
        "altitude": fix.altitude,
        "speed": knots(fix.speed_mps),
        "bearing": fix.bearing,
        "batt": fix.battery,
        "charge": fix.charging,
    }
    if alarm is not None:
        fields["alarm"] = alarm
    fields["battery_health"] = "good"
    fields["battery_voltage"] = 4123
    fields["battery_temp"] = 27.5
    return fields


def sdk_form(path: str, identifier: str, fix: Fix, alarm: str | None = None) -> Request:
    fields = {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in _sdk_fields(identifier, fix, alarm).items()
    }
    return Request(
        "POST",
        path,
        {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
        urlencode(fields).encode(),
    )


def sdk_json(path: str, identifier: str, fix: Fix, alarm: str | None = None) -> Request:
    body = json.dumps([_sdk_fields(identifier, fix, alarm)]).encode()
    return Request("POST", path, {"Content-Type": "application/json"}, body)


def plain_get(path: str, identifier: str, fix: Fix, alarm: str | None = None) -> Request:
    at = datetime.fromtimestamp(fix.at_s, UTC).strftime("%Y-%m-%d %H:%M:%S")
    q = [
        ("deviceid", identifier),
        ("location", f"{fix.lat},{fix.lon}"),
        ("timestamp", at),
        ("speed", str(knots(fix.speed_mps))),
        ("heading", str(fix.bearing)),
        ("hdop", "0.9"),
        ("batt", str(fix.battery)),
    ]
    if alarm is not None:
        q.append(("alarm", alarm))
    return Request("GET", f"{path}?{urlencode(q)}")


CLIENTS = {
    "android": android,
    "ios": ios,
    "background_geolocation": background_geolocation,
    "sdk_form": sdk_form,
    "sdk_json": sdk_json,
    "plain_get": plain_get,
}
