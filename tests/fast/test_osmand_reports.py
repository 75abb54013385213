"""Traccar Client's and OsmAnd trackers' requests, read and translated (no service needed):
every client's shape gives the same report, and the report the protocol-v1 messages."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from gateways.osmand_messages import alert_id, messages_of
from gateways.osmand_reports import KNOT_M_S, Report, Unreadable, read_request, timestamp_ms
from gateways.throttle import Buckets, InFlight
from monitor.logsafe import redact_query
from monitor.protocol import Parsed, parse
from tests.osmand_requests import CLIENTS, Fix, Request

IDENT = "alice-tracker.abcdefghijklmnopqrstuvwxyz"
FIX = Fix()


def read(req: Request) -> list[Report]:
    url = urlsplit(req.url)
    return read_request(url.query, req.headers.get("Content-Type"), req.body)


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_every_client_reads_the_same(client: str) -> None:
    (r,) = read(CLIENTS[client]("/osmand", IDENT, FIX, alarm="sos"))
    assert r.identifier == IDENT
    assert r.at_ms == FIX.at_s * 1000
    assert (r.lat, r.lon) == pytest.approx((FIX.lat, FIX.lon), abs=1e-6)
    assert r.spd == pytest.approx(FIX.speed_mps, abs=0.01)  # knots back to m/s
    assert r.hdg == pytest.approx(FIX.bearing)
    assert r.batt == pytest.approx(FIX.battery)
    assert r.alarms == {"sos"}
    if client != "plain_get":
        assert r.acc == pytest.approx(FIX.accuracy)
        assert r.alt == pytest.approx(FIX.altitude)


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_every_client_sos_is_a_valid_red_alert_and_a_location(client: str) -> None:
    (r,) = read(CLIENTS[client]("/osmand", IDENT, FIX, alarm="sos"))
    messages = messages_of(r, now_ms=1_800_000_000_000, low_battery_pct=15)
    assert [m.suffix for m in messages] == ["alert", "location"]
    alert = messages[0].body
    assert alert["type"] == "red" and alert["id"] == alert_id("sos", FIX.at_s * 1000)
    assert alert["loc"]["lat"] == pytest.approx(FIX.lat)
    for m in messages:  # each one what the protocol takes
        parsed = parse(f"vigil/v1/alice-tracker/{m.suffix}", json.dumps(m.body).encode())
        assert isinstance(parsed, Parsed), parsed


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1763802000", 1_763_802_000_000),  # seconds
        ("1763802000123", 1_763_802_000_123),  # milliseconds
        ("2025-11-22T09:00:00Z", 1_763_802_000_000),
        ("2025-11-22T09:00:00.250Z", 1_763_802_000_250),
        ("2025-11-22T10:00:00+01:00", 1_763_802_000_000),
        ("2025-11-22 09:00:00", 1_763_802_000_000),  # read as UTC
    ],
)
def test_timestamps(text: str, ms: int) -> None:
    assert timestamp_ms(text) == ms


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("lat=1&lon=2", "id"),
        ("id=x&lat=north&lon=2", "lat"),
        ("id=x&lat=nan&lon=2", "lat"),
        ("id=x&timestamp=yesterday", "timestamp"),
        ("id=x&location=51.5", "location"),
    ],
)
def test_unreadable_requests_say_why(query: str, why: str) -> None:
    with pytest.raises(Unreadable, match=why):
        read_request(query, None, b"")


def test_query_wins_over_body_and_the_last_copy_counts() -> None:
    (r,) = read_request("id=a&batt=10&batt=20", "application/x-www-form-urlencoded", b"id=b")
    assert (r.identifier, r.batt) == ("a", 20)


def test_unmeasured_values_are_left_out() -> None:
    # The background-geolocation library writes -1 for what the phone did not measure.
    (r,) = read_request("id=x&lat=1&lon=2&speed=-1&bearing=-1&accuracy=-1", None, b"")
    assert (r.spd, r.hdg, r.acc) == (None, None, None)
    assert pytest.approx(0.514444, abs=1e-6) == KNOT_M_S


def test_alarms_without_a_fix_and_a_broken_clock_still_raise() -> None:
    r = Report(identifier="x", at_ms=0, lat=0.0, lon=0.0, alarms=frozenset({"fallDown"}))
    (alert,) = messages_of(r, now_ms=1_800_000_000_000, low_battery_pct=15)
    assert alert.body["type"] == "man_down" and alert.body["ts"] == 1_800_000_000_000
    assert "loc" not in alert.body  # 0,0 is no fix
    assert alert.body["id"] == "osmand-fallDown-0"  # still the same on a resend
    (status,) = messages_of(Report(identifier="x", at_ms=None), now_ms=1, low_battery_pct=15)
    assert status.suffix == "status"  # nothing but a sign of life


def test_a_bad_position_does_not_cost_the_alarm_its_alert() -> None:
    r = Report(
        identifier="x", at_ms=1_763_802_000_000, lat=91.0, lon=2.0, alarms=frozenset({"sos"})
    )
    alert, location = messages_of(r, now_ms=1_800_000_000_000, low_battery_pct=15)
    assert "loc" not in alert.body
    assert location.body["loc"]["lat"] == 91.0  # refused, and recorded, by ingest


def test_low_battery_is_a_heartbeat_below_the_threshold() -> None:
    r = Report(identifier="x", at_ms=1_763_802_000_000, batt=40, alarms=frozenset({"lowBattery"}))
    (hb,) = messages_of(r, now_ms=1_800_000_000_000, low_battery_pct=15)
    assert hb.suffix == "heartbeat" and hb.body["batt"] == 14
    r = Report(identifier="x", at_ms=1_763_802_000_000, batt=9, alarms=frozenset({"lowBattery"}))
    assert messages_of(r, now_ms=0, low_battery_pct=15)[0].body["batt"] == 9


def test_buckets_and_slots() -> None:
    now = [0.0]
    b = Buckets(rate=1.0, burst=2, clock=lambda: now[0])
    assert b.take("a") and b.take("a") and not b.take("a")
    assert b.take("b")  # another key has its own
    assert b.retry_after_s("a") == 1
    now[0] += 1.0
    assert b.take("a") and not b.take("a")
    slots = InFlight(1)
    with slots.slot("a") as first, slots.slot("a") as second, slots.slot("b") as other:
        assert first and not second and other
    with slots.slot("a") as again:
        assert again


def test_the_identifier_is_kept_out_of_the_access_log() -> None:
    for req in (CLIENTS["android"]("/osmand", IDENT, FIX), CLIENTS["plain_get"]("/", IDENT, FIX)):
        line = redact_query(f'"{req.method} {req.url} HTTP/1.1" 200')
        assert "abcdefghij" not in line and "batt=" in line, line


@pytest.mark.parametrize(
    "query",
    [
        # The shapes Traccar's own decoder takes (our values): cell towers and Wi-Fi without a
        # fix, hdop, vacc/hacc, extra attributes of hardware trackers, an IMEI-like id.
        "id=424242&timestamp=1763802000&cell=234,15,1201,3302&cell=234,15,1201,3303,-85"
        "&wifi=00-11-22-33-44-55,-71",
        "lat=51.5&lon=-0.12&speed=0.0&heading=0.0&vacc=0&hacc=0&altitude=0&deviceid=424242",
        "id=424242&lat=51.5&lon=-0.12&timestamp=2025-11-22T09%3A00%3A00Z&hdop=1.2&speed=0.0",
        "lat=51.5&lon=-0.12&timestamp=2025-11-22+09%3A00%3A00&altitude=12.5&id=424242",
        "id=424242&timestamp=1763802000&lat=51.5&lon=-0.12&ignition=true&rpm=900&fuel=31",
        "id=424242&lat=51.5&lon=-0.12&altitude=12.000000&speed=0.000000&batt=87&valid=1",
    ],
)
def test_the_query_shapes_traccar_takes(query: str) -> None:
    (r,) = read_request(query, None, b"")
    assert r.identifier == "424242"
    for m in messages_of(r, now_ms=1_763_802_000_000, low_battery_pct=15):
        assert isinstance(parse(f"vigil/v1/t/{m.suffix}", json.dumps(m.body).encode()), Parsed)


def test_a_phone_that_measured_nothing_but_where_it_is() -> None:
    body = {
        "location": {
            "timestamp": "2025-11-22T09:00:00.579Z",
            "coords": {
                "latitude": 51.5,
                "longitude": -0.12,
                "accuracy": 12,
                "speed": -1,
                "heading": -1,
                "altitude": 0,
                "floor": None,
            },
            "battery": {"level": -1, "is_charging": False},
            "mock": True,
            "extras": {},
        },
        "device_id": "424242",
    }
    (r,) = read_request("", "application/json; charset=utf-8", json.dumps(body).encode())
    assert (r.spd, r.hdg, r.batt, r.at_ms) == (None, None, None, 1_763_802_000_579)
    (location,) = messages_of(r, now_ms=1, low_battery_pct=15)
    assert location.body == {
        "v": 1,
        "ts": 1_763_802_000_579,
        "loc": {"lat": 51.5, "lon": -0.12, "acc": 12.0, "alt": 0.0},
    }
