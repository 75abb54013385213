"""Many devices on one shared network loop, and a fleet spread over processes, against the real
service and the broker configuration Vigil generates."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from device_sim.credentials import DeviceCredentials
from device_sim.device import SimDevice
from device_sim.fleet import Fleet
from monitor.alerts.models import Alert
from monitor.devices import service as devices
from monitor.devices.models import Device, LocationFix
from tests.support import (
    Badge,
    Broker,
    Running,
    add_badge,
    running,
    service_settings,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]


def register(svc: Running, prefix: str, count: int) -> list[Badge]:
    """Registered devices, let in by the broker once it has re-read its password file. The
    first has a worker (and so may raise alerts); the rest report where nobody is, which
    spares hashing two PINs for each."""
    badges = [add_badge(svc.store, f"{prefix}-0000")]
    with svc.store.begin() as db:
        for i in range(1, count):
            device, secret = devices.add_device(db, f"{prefix}-{i:04d}", worker_id=None)
            badges.append(Badge(device.id, secret, 0, "1234", "9876"))
    svc.broker.load_registry(svc.store)
    # Mosquitto re-reads the file a moment after SIGHUP: the last one connecting shows it has.
    probe = SimDevice(badges[-1].device_id, badges[-1].secret, port=svc.broker.port)
    wait_until(lambda: _connects(probe), timeout=10, what="the broker to know the devices")
    probe.disconnect()
    return badges


def _connects(device: SimDevice) -> bool:
    try:
        device.connect(timeout=5)
    except ConnectionRefusedError:
        return False
    return True


def credentials(badges: list[Badge]) -> list[DeviceCredentials]:
    return [DeviceCredentials(b.device_id, b.secret, b.cancel_pin, b.duress_pin) for b in badges]


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Running]:
    """The service on a Vigil broker of these tests' own. They rewrite its password file with
    hundreds of devices and leave as many sessions to expire; on the session's shared broker
    that once ended Mosquitto 2.0.11 itself while it expired them, and every later test of
    that pytest worker found no broker. (This folder's `own_broker` is a plain Mosquitto.)"""
    broker = Broker(tmp_path / "vigil-broker")
    broker.dir.mkdir()
    broker.start()
    try:
        with running(service_settings(tmp_path / "data", db_url, broker), broker) as r:
            yield r
    finally:
        broker.stop()


def located(svc: Running, ids: set[str]) -> int:
    with svc.store.session() as db:
        rows = db.scalars(select(LocationFix.device_id).distinct()).all()
    return len(ids & set(rows))


def test_three_hundred_devices_share_one_loop_with_the_service(svc: Running) -> None:
    badges = register(svc, "shared", 300)
    ids = {b.device_id for b in badges}
    threads_before = threading.active_count()
    fleet = Fleet(
        credentials(badges),
        svc.broker.host,
        svc.broker.port,
        location_every_s=1.0,
        heartbeat_every_s=2.0,
        alert_rate_per_hour=0,
        visit_rate_per_hour=0,
        seed=11,
        alert_retry_s=1.0,
    )
    fleet.start()
    try:
        assert all(d.connected for d in fleet.devices)
        # One network thread and one simulation thread for the lot, not one per device.
        assert threading.active_count() - threads_before <= 3

        wait_until(lambda: located(svc, ids) == len(ids), timeout=30, what="every fix stored")

        alerting = fleet.devices[0]
        alert_id = alerting.raise_alert(type="red", trigger="button")
        alerting.wait_for("alert_received", alert_id=alert_id, timeout=10)
        with svc.store.session() as db:
            pk = db.scalar(select(Alert.id).where(Alert.device_alert_id == alert_id))
        assert pk is not None and alerting.pending_alerts == []

        # A command from the service reaches the device over the shared loop.
        ops = svc.user("op-shared")
        r = svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops)
        assert r.status_code == 200, r.text
        alerting.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)

        # A connection dropped without DISCONNECT: the broker publishes the last will.
        dropped = fleet.devices[11]
        dropped.kill()

        def offline() -> bool:
            with svc.store.session() as db:
                return (
                    db.scalar(select(Device.online).where(Device.id == dropped.device_id)) is False
                )

        wait_until(offline, timeout=10, what="the last will to mark the device offline")
        assert sum(d.connected for d in fleet.devices) == len(badges) - 1
    finally:
        fleet.stop()
    assert not any(d.connected for d in fleet.devices)


def test_one_command_spreads_a_fleet_over_processes(svc: Running, tmp_path: Path) -> None:
    badges = register(svc, "procs", 40)
    ids = {b.device_id for b in badges}
    creds = tmp_path / "creds.json"
    creds.write_text(json.dumps([c.to_dict() for c in credentials(badges)]))
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "device_sim",
            "--host", svc.broker.host, "--port", str(svc.broker.port),
            "--credentials", str(creds), "--processes", "2",
            "--location-every", "0.5", "--alert-rate", "0", "--visit-rate", "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(lambda: located(svc, ids) == len(ids), timeout=60, what="every fix stored")
        with svc.store.session() as db:
            online = db.scalar(
                select(func.count()).select_from(Device).where(Device.id.in_(ids), Device.online)
            )
        assert online == len(ids)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "fleet of 40 devices running in 2 processes" in output, output
    for share in ("[0]", "[1]"):
        assert f"device_sim.fleet{share}: fleet of 20 devices running" in output, output
    assert "fleet stopped (2 processes)" in output, output
