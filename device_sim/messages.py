"""Builders for the bodies of protocol v1 messages; the device adds `v`, `ts` and `seq`.

They refuse values PROTOCOL.md does not allow, so nothing the simulator sends by its typed API
is invalid; tests of bad input use `SimDevice.publish_raw` instead.
"""

from __future__ import annotations

import hashlib

from device_sim.protocol import (
    ALERT_ID_RE,
    ALERT_TYPES,
    LOC_SOURCES,
    MAX_NOTE_CHARS,
    TRIGGERS,
    VISIT_ACTIONS,
    VISIT_MAX_S,
    VISIT_MIN_S,
    JsonObject,
    check_pin,
)


def loc(
    lat: float,
    lon: float,
    *,
    acc: float | None = None,
    spd: float | None = None,
    hdg: float | None = None,
    alt: float | None = None,
    src: str | None = "gps",
    floor: int | None = None,
) -> JsonObject:
    """A `loc` position object; rounded to what a real receiver reports (about 10 cm)."""
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise ValueError(f"position ({lat}, {lon}) is outside -90..90, -180..180")
    out: JsonObject = {"lat": round(lat, 6), "lon": round(lon, 6)}
    if acc is not None:
        if acc < 0:
            raise ValueError("acc is metres >= 0")
        out["acc"] = round(acc, 1)
    if alt is not None:
        out["alt"] = round(alt, 1)
    if spd is not None:
        if spd < 0:
            raise ValueError("spd is m/s >= 0")
        out["spd"] = round(spd, 2)
    if hdg is not None:
        # Round before wrapping so 359.99 reports as 0.0, not 360.0.
        out["hdg"] = round(hdg % 360.0, 1) % 360.0
    if src is not None:
        if src not in LOC_SOURCES:
            raise ValueError(f"src must be one of {sorted(LOC_SOURCES)}")
        out["src"] = src
    if floor is not None:
        out["floor"] = floor
    return out


def location(position: JsonObject, batt: int | None) -> JsonObject:
    body: JsonObject = {"loc": position}
    if batt is not None:
        body["batt"] = _battery(batt)
    return body


def heartbeat(batt: int, *, chg: bool | None, rssi: int | None, fw: str | None) -> JsonObject:
    body: JsonObject = {"batt": _battery(batt)}
    if chg is not None:
        body["chg"] = chg
    if rssi is not None:
        body["rssi"] = rssi
    if fw is not None:
        body["fw"] = fw
    return body


def status(online: bool, ts: int | None) -> JsonObject:
    """The retained status payload; PROTOCOL.md gives it no `seq`, and the will has no `ts`."""
    body: JsonObject = {"v": 1, "online": online}
    if ts is not None:
        body["ts"] = ts
    return body


def alert(
    alert_id: str,
    alert_type: str,
    *,
    trigger: str | None,
    position: JsonObject | None,
    batt: int | None,
    note: str | None,
) -> JsonObject:
    if not ALERT_ID_RE.fullmatch(alert_id):
        raise ValueError("an alert id is 8-64 characters of A-Z a-z 0-9 _ -")
    if alert_type not in ALERT_TYPES:
        raise ValueError(f"alert type must be one of {sorted(ALERT_TYPES)}")
    if trigger is not None and trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {sorted(TRIGGERS)}")
    body: JsonObject = {"id": alert_id, "type": alert_type}
    if trigger is not None:
        body["trigger"] = trigger
    if position is not None:
        body["loc"] = position
    if batt is not None:
        body["batt"] = _battery(batt)
    if note is not None:
        body["note"] = _note(note)
    return body


def alert_cancel(alert_id: str, pin: str) -> JsonObject:
    return {"alert_id": alert_id, "pin": check_pin(pin)}


def visit(
    visit_id: str,
    action: str,
    *,
    duration_s: int | None = None,
    note: str | None = None,
    position: JsonObject | None = None,
    memo: str | None = None,
    pin: str | None = None,
) -> JsonObject:
    if not visit_id:
        raise ValueError("a visit needs an id")
    if action not in VISIT_ACTIONS:
        raise ValueError(f"visit action must be one of {sorted(VISIT_ACTIONS)}")
    body: JsonObject = {"id": visit_id, "action": action}
    if action in ("start", "extend"):
        if duration_s is None or not VISIT_MIN_S <= duration_s <= VISIT_MAX_S:
            raise ValueError(f"duration_s must be {VISIT_MIN_S} to {VISIT_MAX_S} with {action}")
        body["duration_s"] = duration_s
    if note is not None:
        body["note"] = _note(note)
    if position is not None:
        body["loc"] = position
    if memo is not None:
        body["memo"] = memo
    if pin is not None:
        body["pin"] = check_pin(pin)
    return body


def evidence(
    evidence_id: str,
    *,
    alert_id: str | None,
    visit_id: str | None,
    data: bytes | None,
    uri: str | None,
    codec: str,
    duration_ms: int,
) -> JsonObject:
    if (alert_id is None) == (visit_id is None):
        raise ValueError("evidence is tied to exactly one of alert_id or visit_id")
    if duration_ms < 0:
        raise ValueError("duration_ms is >= 0")
    body: JsonObject = {"id": evidence_id}
    if alert_id is not None:
        body["alert_id"] = alert_id
    if visit_id is not None:
        body["visit_id"] = visit_id
    body.update({"kind": "audio", "codec": codec, "duration_ms": duration_ms})
    if data is not None:
        body["bytes"] = len(data)
        body["sha256"] = hashlib.sha256(data).hexdigest()
    if uri is not None:
        body["uri"] = uri
    return body


def _battery(batt: int) -> int:
    if not 0 <= batt <= 100:
        raise ValueError("batt is 0..100")
    return batt


def _note(note: str) -> str:
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(f"a note is at most {MAX_NOTE_CHARS} characters")
    return note
