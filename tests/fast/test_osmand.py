"""Traccar Client and OsmAnd trackers through the whole service (less MQTT): requests replayed
as the real clients send them (tests/osmand_requests.py) raise alerts once, store positions
and battery warnings, and are refused, limited and answered as the issue asks."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from monitor.alerts.models import Alert
from monitor.broker import device_passwords_text
from monitor.db import Store
from monitor.devices import service as devices
from monitor.devices.models import BatteryWarning, Device, LocationFix
from monitor.devices.trackers import OSMAND, identifier_of, split_identifier
from monitor.ingest.models import RefusedMessage
from monitor.ingest.urgent import UrgentWorker
from monitor.orgs import service as orgs
from monitor.orgs.models import Worker
from monitor.security import verify_device_secret
from tests.fast.handlers import Handlers, fast_settings
from tests.osmand_requests import CLIENTS, Fix, Request, android, ios, plain_get
from tests.support import add_badge, wait_until


def add_tracker(store: Store, prefix: str = "trk") -> tuple[str, str]:
    """A tracker carried by a worker of its own: (device id, identifier)."""
    device_id = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with store.begin() as db:
        worker = orgs.add_worker(
            db,
            name=f"Worker {device_id}",
            cancel_pin="1234",
            duress_pin="9876",
            phone="+447700900002",
            team="Housing",
            org_name="Test Org",
        )
        device, secret = devices.add_device(db, device_id, worker_id=worker.id, kind=OSMAND)
        return device.id, identifier_of(device.id, secret)


def send(http: TestClient | httpx.Client, req: Request) -> httpx.Response:
    return http.request(req.method, req.url, headers=req.headers, content=req.body)


def alerts_of(store: Store, device_id: str) -> list[Alert]:
    with store.session() as db:
        return list(db.scalars(select(Alert).where(Alert.device_id == device_id)))


def count(store: Store, model: Any, device_id: str) -> int:
    with store.session() as db:
        return db.scalar(select(func.count()).where(model.device_id == device_id)) or 0


def test_each_client_sos_raises_one_red_alert_with_its_position(svc: Handlers) -> None:
    fix = Fix()
    for name, client in CLIENTS.items():
        device_id, identifier = add_tracker(svc.store, name.replace("_", "-"))
        req = client("/osmand", identifier, fix, alarm="sos")
        for _ in range(3):  # the tracker resends until it hears 200; once is one alert
            r = send(svc.http, req)
            assert r.status_code == 200, (name, r.text)
            assert "X-Vigil-Refused" not in r.headers, (name, r.headers)
        (alert,) = alerts_of(svc.store, device_id)
        assert (alert.type, alert.trigger, alert.state) == ("red", "button", "raised"), name
        assert alert.device_alert_id == f"osmand-sos-{fix.at_s * 1000}"
        assert alert.lat == pytest.approx(fix.lat) and alert.lon == pytest.approx(fix.lon)
        # The position went into the same store as any device's (answered only once stored).
        assert count(svc.store, LocationFix, device_id) >= 1, name


def test_fall_is_man_down_and_low_battery_a_warning(svc: Handlers) -> None:
    device_id, identifier = add_tracker(svc.store)
    assert send(svc.http, ios("/osmand", identifier, Fix(), alarm="fallDown")).status_code == 200
    (alert,) = alerts_of(svc.store, device_id)
    assert (alert.type, alert.trigger) == ("man_down", "fall")
    later = Fix(at_s=Fix().at_s + 60, battery=30)
    r = send(svc.http, android("/osmand", identifier, later, alarm="lowBattery"))
    assert r.status_code == 200
    assert len(alerts_of(svc.store, device_id)) == 1  # a warning, not an alert
    assert count(svc.store, BatteryWarning, device_id) == 1
    with svc.store.session() as db:
        device = db.get(Device, device_id)
        assert device is not None and device.battery == 14 and device.online
        worker = db.get(Worker, device.worker_id)
        assert worker is not None and worker.low_battery


def test_positions_alone_and_signs_of_life(svc: Handlers) -> None:
    device_id, identifier = add_tracker(svc.store)
    assert send(svc.http, plain_get("/osmand", identifier, Fix())).status_code == 200
    assert count(svc.store, LocationFix, device_id) == 1
    assert alerts_of(svc.store, device_id) == []
    # No fix and no battery (a heartbeat of Traccar Client while stationary): only "alive".
    assert svc.http.post("/osmand", params={"id": identifier}).status_code == 200
    with svc.store.session() as db:
        device = db.get(Device, device_id)
        assert device is not None and device.online and device.last_lat == pytest.approx(51.5072)


def test_unknown_identifiers_are_refused_as_traccar_does(svc: Handlers) -> None:
    device_id, identifier = add_tracker(svc.store)
    badge = add_badge(svc.store, f"badge-{uuid.uuid4().hex[:6]}")
    secret = identifier.split(".")[1]
    for wrong in (
        "123456",  # Traccar Client's own default: a random number
        f"nobody-here.{secret}",
        f"{device_id}.{'a' * 26}",  # the right tracker, the wrong secret
        f"{badge.device_id}.{secret}",
        f"{badge.device_id}",
    ):
        for client in (android, CLIENTS["background_geolocation"]):
            r = send(svc.http, client("/osmand", wrong, Fix(), alarm="sos"))
            assert r.status_code == 400, (wrong, r.text)
    assert alerts_of(svc.store, device_id) == [] and alerts_of(svc.store, badge.device_id) == []
    assert count(svc.store, LocationFix, device_id) == 0
    # A tracker has no account at the broker: its identifier opens nothing but this route.
    with svc.store.session() as db:
        passwords = device_passwords_text(db)
    assert f"{badge.device_id}:" in passwords and f"{device_id}:" not in passwords
    r = svc.http.put(f"/api/v1/devices/{device_id}/evidence/clip-1", auth=(device_id, secret))
    assert r.status_code == 401


def test_what_monitor_refuses_is_recorded_and_answered_200(svc: Handlers) -> None:
    device_id, identifier = add_tracker(svc.store)
    r = svc.http.post("/osmand", params={"id": identifier, "lat": "91", "lon": "0.5"})
    # 200: Traccar Client sends its queue in order and would resend an error for ever.
    assert r.status_code == 200 and "lat" in r.headers["X-Vigil-Refused"]
    with svc.store.session() as db:
        refused = db.scalars(
            select(RefusedMessage).where(RefusedMessage.device_id == device_id)
        ).all()
    assert len(refused) == 1 and "lat" in refused[0].reason
    with svc.store.begin() as db:
        devices.set_enabled(db, device_id, False)
    r = send(svc.http, android("/osmand", identifier, Fix(), alarm="sos"))
    assert r.status_code == 400 and "disabled" in r.text
    assert alerts_of(svc.store, device_id) == []


def test_unreadable_requests_are_400_with_the_reason(svc: Handlers) -> None:
    r = svc.http.post("/osmand", params={"id": "x", "lat": "north", "lon": "1"})
    assert r.status_code == 400 and "lat" in r.text
    r = svc.http.post("/osmand", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.text


@pytest.fixture
def limited(db_url: str, tmp_path: Path) -> Iterator[Handlers]:
    hub = Handlers(fast_settings(tmp_path / "data", db_url, osmand_burst=5, osmand_rate_per_s=0.2))
    try:
        hub.start()
        yield hub
    finally:
        hub.close()


def test_a_flood_from_one_tracker_does_not_hold_up_another(limited: Handlers) -> None:
    noisy_id, noisy = add_tracker(limited.store, "noisy")
    quiet_id, quiet = add_tracker(limited.store, "quiet")
    codes: list[int] = []

    def flood(n: int) -> None:
        for i in range(n):
            fix = Fix(at_s=Fix().at_s + i)
            codes.append(send(limited.http, android("/osmand", noisy, fix)).status_code)

    threads = [threading.Thread(target=flood, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    started = time.monotonic()
    r = send(limited.http, ios("/osmand", quiet, Fix(), alarm="sos"))
    took = time.monotonic() - started
    for t in threads:
        t.join()
    assert r.status_code == 200 and len(alerts_of(limited.store, quiet_id)) == 1
    assert took < 5.0, took  # generous: the machine may be busy; unheld, it takes ms
    assert codes.count(200) <= 6 and codes.count(429) >= 90, codes
    # Limited: the flood's positions beyond the burst were turned away, not stored.
    assert count(limited.store, LocationFix, noisy_id) <= 6
    r = send(limited.http, android("/osmand", noisy, Fix()))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # An alarm is never turned away for the rate.
    assert send(limited.http, android("/osmand", noisy, Fix(), alarm="sos")).status_code == 200
    assert len(alerts_of(limited.store, noisy_id)) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_port_of_its_own_starts_and_stops_with_the_service(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    hub = Handlers(fast_settings(tmp_path / "data", db_url, osmand_port=port))
    try:
        hub.start()
        device_id, identifier = add_tracker(hub.store)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            # Traccar's port serves the protocol at its root, as trackers expect.
            assert send(http, android("/", identifier, Fix(), alarm="sos")).status_code == 200
            assert send(http, plain_get("/osmand", identifier, Fix())).status_code == 200
            assert http.get("/api/v1/console/meta").status_code == 404  # nothing else here
        wait_until(lambda: alerts_of(hub.store, device_id), what="alert")
    finally:
        hub.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)


def test_cli_registers_a_tracker_and_shows_its_identifier_once(vigil) -> None:  # type: ignore[no-untyped-def]
    out = vigil("device", "add", "van-7", "--kind", "osmand").output
    identifier = next(line for line in out.splitlines() if line.startswith("van-7."))
    assert f"/osmand?id={identifier}" in out
    parts = split_identifier(identifier)
    assert parts is not None and parts[0] == "van-7"
    store = vigil.store()
    with store.session() as db:
        device = db.get(Device, "van-7")
        assert device is not None and device.kind == OSMAND
        # Only its hash is kept: the registry cannot speak for the tracker.
        assert identifier not in device.secret_hash and parts[1] not in device.secret_hash
        assert verify_device_secret(device.secret_hash, parts[1])
    out = vigil("device", "rotate", "van-7").output
    new = next(line for line in out.splitlines() if line.startswith("van-7."))
    with store.session() as db:
        device = db.get(Device, "van-7")
        assert device is not None
        assert not verify_device_secret(device.secret_hash, parts[1])
        assert verify_device_secret(device.secret_hash, new.split(".")[1])
    store.dispose()


def test_unknown_identifiers_in_a_loop_are_turned_away_without_a_query(svc: Handlers) -> None:
    device_id, identifier = add_tracker(svc.store)
    assert send(svc.http, android("/osmand", identifier, Fix())).status_code == 200
    started = time.monotonic()
    codes = [
        send(svc.http, android("/osmand", f"guess-{i}.{'b' * 26}", Fix())).status_code
        for i in range(40)
    ]
    took = time.monotonic() - started
    # The burst, then turned away; the bucket refills meanwhile, so on a slow machine a few
    # more guesses may be looked at: no more than it refilled in the time taken.
    refilled = int(took * svc.settings.osmand_rate_per_s) + 1
    assert codes[:30] == [400] * 30 and set(codes[30:]) <= {400, 429}, codes
    assert 429 in codes[30:] and codes[30:].count(400) <= refilled, (codes, took)
    # The tracker that was right a moment ago, from the same address, is not held back.
    later = Fix(at_s=Fix().at_s + 30)
    assert send(svc.http, android("/osmand", identifier, later, alarm="sos")).status_code == 200
    assert len(alerts_of(svc.store, device_id)) == 1


def test_a_resent_alarm_is_answered_only_once_the_alert_is_stored(svc: Handlers) -> None:
    """A copy of an alert still waiting to be stored, handed in by a gateway, is not
    acknowledged at once as a broker's copy is: its acknowledgement is the gateway's 200, and
    a client answered 200 keeps nothing to send again."""
    device_id, _ = add_tracker(svc.store)
    topic = f"vigil/v1/{device_id}/alert"
    payload = f'{{"v":1,"ts":{int(time.time() * 1000)},"id":"sos-00001","type":"red"}}'.encode()
    waiting = UrgentWorker(svc.store, svc.settings)  # not started: nothing is stored yet
    running, svc.ingest.urgent = svc.ingest.urgent, waiting
    try:
        first = svc.ingest.submit(topic, payload)
        resent = svc.ingest.submit(topic, payload)
        assert not first.wait(0.3)
        assert not resent.wait(0.3), "a resent alarm was acknowledged before it was stored"
        waiting.start()
        assert first.wait(10) and resent.wait(10)
    finally:
        svc.ingest.urgent = running
        waiting.stop()
        waiting.join(timeout=10)
        waiting.pins.join(timeout=10)
    assert len(alerts_of(svc.store, device_id)) == 1
