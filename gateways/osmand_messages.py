"""An OsmAnd-protocol report as protocol-v1 messages (PROTOCOL.md): its alarms as alerts, its
fix as a location, its battery as a heartbeat, or, with none of those, a sign of life."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from gateways.osmand_reports import Report
from monitor.protocol import TS_MAX, TS_MIN, Loc

# Traccar's alarm names (its Position.ALARM_*) that Vigil acts on: an alert type and trigger.
ALERTS = {"sos": ("red", "button"), "fallDown": ("man_down", "fall")}
LOW_BATTERY = "lowBattery"


@dataclass(frozen=True)
class Message:
    suffix: str  # of the topic, vigil/v1/<device>/<suffix>
    body: dict[str, Any]

    @property
    def urgent(self) -> bool:
        return self.suffix == "alert"


def alert_id(alarm: str, at_ms: int) -> str:
    """The same alarm of the same fix is one alert, however often the tracker sends it (it
    resends until it hears 200): the device is the topic's, the fix time makes the id."""
    return f"osmand-{alarm}-{at_ms}"


def _loc(r: Report) -> dict[str, Any] | None:
    if r.lat is None or r.lon is None:
        return None
    if r.lat == 0 and r.lon == 0:
        # What trackers send before their first fix; a map at 0,0 would mislead a responder.
        return None
    loc: dict[str, Any] = {"lat": r.lat, "lon": r.lon}
    for key, value in (("acc", r.acc), ("alt", r.alt), ("spd", r.spd), ("hdg", r.hdg)):
        if value is not None:
            loc[key] = value
    return loc


def _usable(loc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The position if the protocol takes it: a bad one must not cost an alarm its alert."""
    if loc is None:
        return None
    try:
        Loc.model_validate(loc)
    except ValidationError:
        return None
    return loc


def messages_of(r: Report, now_ms: int, low_battery_pct: int) -> list[Message]:
    """The messages one report makes, alerts first."""
    out: list[Message] = []
    given = r.at_ms is not None
    ts = r.at_ms if r.at_ms is not None else now_ms
    # An alarm is taken even from a tracker whose clock is broken: stamped when it came.
    alert_ts = ts if TS_MIN <= ts < TS_MAX else now_ms
    batt = None if r.batt is None else round(r.batt)
    loc = _loc(r)
    for alarm in sorted(r.alarms & ALERTS.keys()):
        type_, trigger = ALERTS[alarm]
        body: dict[str, Any] = {
            "v": 1,
            "ts": alert_ts,
            "id": alert_id(alarm, ts),
            "type": type_,
            "trigger": trigger,
            "note": f"{alarm} from a Traccar/OsmAnd tracker"
            + ("" if given else " (no fix time: a resend may count again)"),
        }
        usable = _usable(loc)
        if usable is not None:
            body["loc"] = usable
        if batt is not None and 0 <= batt <= 100:
            body["batt"] = batt
        out.append(Message("alert", body))
    if loc is not None:
        body = {"v": 1, "ts": ts, "loc": loc}
        if batt is not None:
            body["batt"] = batt
        out.append(Message("location", body))
    if LOW_BATTERY in r.alarms:
        # The tracker's own judgement counts: its level is recorded as below Vigil's
        # threshold, so the battery warning is raised as for any device.
        level = low_battery_pct - 1 if batt is None else min(batt, low_battery_pct - 1)
        out.append(Message("heartbeat", _heartbeat(ts, max(level, 0), r.charging)))
    elif loc is None and batt is not None:
        out.append(Message("heartbeat", _heartbeat(ts, batt, r.charging)))
    if not out:
        # Nothing to store, but the tracker is alive (online, and its silence timer reset).
        out.append(Message("status", {"v": 1, "online": True, "ts": now_ms}))
    return out


def _heartbeat(ts: int, batt: int, charging: bool | None) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "ts": ts, "batt": batt}
    if charging is not None:
        body["chg"] = charging
    return body
