"""A small fleet against a real Mosquitto: its traffic is valid protocol v1 and plausible."""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from sim_support import Mosquitto, Seen, Service, free_port

from device_sim import geo
from device_sim.credentials import DeviceCredentials
from device_sim.fleet import Fleet

PLACE = (53.4808, -2.2426)


def creds(n: int) -> list[DeviceCredentials]:
    tag = uuid.uuid4().hex[:6]
    return [
        DeviceCredentials(
            f"fleet-{tag}-{i}",
            f"secret-{i}",
            cancel_pin=f"{1000 + i}",
            duress_pin=f"{9000 + i}",
            kind="badge" if i % 2 else "phone",
        )
        for i in range(n)
    ]


def test_fleet_reports_valid_locations_and_heartbeats(
    broker: Mosquitto, service: Service, assert_valid: Callable[[Seen], Any]
) -> None:
    fleet = Fleet(
        creds(5),
        "127.0.0.1",
        broker.port,
        place=PLACE,
        radius_m=800,
        location_every_s=0.4,
        heartbeat_every_s=0.8,
        alert_rate_per_hour=0,
        visit_rate_per_hour=0,
        seed=7,
    )
    ids = {d.device_id for d in fleet.devices}
    fleet.start()
    try:
        time.sleep(2.2)
    finally:
        fleet.stop()
    assert not any(d.connected for d in fleet.devices)

    seen = [m for m in service.of() if m.device_id in ids]
    per_device: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for m in seen:
        per_device[m.device_id][m.suffix].append(assert_valid(m))
    assert set(per_device) == ids
    for device_id, by_suffix in per_device.items():
        assert [s["online"] for s in by_suffix["status"]] == [True], "clean stop: no last will"
        locations, beats = by_suffix["location"], by_suffix["heartbeat"]
        assert len(locations) >= 3 and len(beats) >= 2, device_id
        for body in locations:
            point = (body["loc"]["lat"], body["loc"]["lon"])
            assert geo.distance_m(PLACE, point) <= 800 + 1
            assert body["loc"]["spd"] <= 2.0 and body["loc"]["acc"] > 0
        # Walking pace between consecutive fixes (ts in ms), allowing for rounding.
        for a, b in itertools.pairwise(locations):
            metres = geo.distance_m(
                (a["loc"]["lat"], a["loc"]["lon"]), (b["loc"]["lat"], b["loc"]["lon"])
            )
            assert metres <= 2.0 * max(0.1, (b["ts"] - a["ts"]) / 1000) + 1
        for body in beats:
            assert 0 <= body["batt"] <= 100 and isinstance(body["chg"], bool)
            assert body["fw"] in {"2.3.1", "5.12.0"} and -110 <= body["rssi"] <= -50
        seqs = [b["seq"] for b in locations + beats]
        assert len(set(seqs)) == len(seqs)


def test_fleet_raises_and_cancels_alerts_and_checks_in_on_visit_due(
    broker: Mosquitto, service: Service, assert_valid: Callable[[Seen], Any]
) -> None:
    credentials = creds(4)
    pins = {c.device_id: c.cancel_pin for c in credentials}
    fleet = Fleet(
        credentials,
        "127.0.0.1",
        broker.port,
        place=PLACE,
        location_every_s=1,
        heartbeat_every_s=1,
        alert_rate_per_hour=3600 * 2,  # about two a second per idle device
        visit_rate_per_hour=3600 * 2,
        seed=3,
        alert_retry_s=0.5,
        false_alarm_share=1.0,
        cancel_after_s=(0.2, 0.4),
        visit_duration_s=(60, 120),
    )
    ids = set(pins)
    fleet.start()
    try:
        # Cancels follow alerts, with the worker's cancel PIN.
        service.wait(
            lambda _: any(m.device_id in ids for m in service.of(suffix="alert/cancel")),
            timeout=5,
            what="a cancel",
        )
        cancel = next(m for m in service.of(suffix="alert/cancel") if m.device_id in ids)
        body = assert_valid(cancel)
        assert body["pin"] == pins[cancel.device_id]
        raised = [m.json()["id"] for m in service.of(cancel.device_id, "alert")]
        assert body["alert_id"] in raised

        # Visits start; on visit_due the worker checks in.
        service.wait(
            lambda _: any(
                m.device_id in ids and m.json()["action"] == "start"
                for m in service.of(suffix="visit")
            ),
            timeout=5,
            what="a visit",
        )
        start = next(
            m
            for m in service.of(suffix="visit")
            if m.device_id in ids and m.json()["action"] == "start"
        )
        visit = assert_valid(start)
        assert 60 <= visit["duration_s"] <= 120 and visit["note"]
        service.command(start.device_id, "visit_due", visit_id=visit["id"])
        service.wait_one(start.device_id, "visit", action="checkin", id=visit["id"])
    finally:
        fleet.stop()
    for m in service.of():
        if m.device_id in ids and m.suffix != "cmd":
            assert_valid(m)


def test_twenty_five_devices_start_report_and_stop_promptly(
    broker: Mosquitto, service: Service
) -> None:
    fleet = Fleet(creds(25), "127.0.0.1", broker.port, location_every_s=0.5, seed=1)
    ids = {d.device_id for d in fleet.devices}
    started = time.monotonic()
    fleet.start()
    try:
        service.wait(
            lambda _: {m.device_id for m in service.of(suffix="location")} >= ids,
            timeout=5,
            what="a location from each of 25 devices",
        )
    finally:
        fleet.stop()
    assert time.monotonic() - started < 4


def test_fleet_start_fails_cleanly_without_a_broker() -> None:
    fleet = Fleet(creds(2), "127.0.0.1", free_port(), connect_timeout_s=0.3)
    with pytest.raises(TimeoutError):
        fleet.start()
    assert not fleet.running
    assert not any(d.connected for d in fleet.devices)


def test_fleet_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        Fleet([], "127.0.0.1", 1883)
    with pytest.raises(ValueError):
        Fleet(creds(1), "127.0.0.1", 1883, location_every_s=0)
    assert math.isclose(Fleet(creds(1), "h", 1, location_every_s=0.4).tick_s, 0.08)
