"""Telemetry in processes of its own (`VIGIL_INGEST_PROCESSES`): every location stored once,
alerts still answered by the service's process, and no location lost or doubled when the
number of processes changes across a restart, with traffic queued while the service was down."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, tuple_

from device_sim.device import SimDevice
from monitor.broker import free_port, wait_for_port
from monitor.config import Settings
from monitor.db import Store
from monitor.devices.models import Device, LocationFix
from monitor.ingest.processes import MARKER
from tests.support import (
    Broker,
    PgDatabases,
    Running,
    running,
    serve_env,
    serve_process,
    service_settings,
    wait_until,
)


@pytest.fixture
def pg_url(pg: PgDatabases):  # type: ignore[no-untyped-def]
    url = pg.new()
    yield url
    pg.drop(url)


def fixes(store: Store, device_ids: list[str]) -> int:
    with store.session() as db:
        n = db.scalar(
            select(func.count())
            .select_from(LocationFix)
            .where(LocationFix.device_id.in_(device_ids))
        )
    return n or 0


def send(devices: list[SimDevice], rounds: int, first: int = 0) -> None:
    for i in range(first, first + rounds):
        for d in devices:
            d.send_location(51.5 + i * 1e-4, -0.12, qos=1)


def started(svc: Running) -> None:
    procs = svc.service.ingest.processes
    assert procs is not None and procs.started.wait(60), "telemetry processes did not start"


def test_processes_store_each_location_once_and_alerts_stay_on_the_service(
    pg_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path, pg_url, mqtt_broker, ingest_processes=2)
    with running(settings, mqtt_broker) as svc:
        started(svc)
        badges = svc.badges("proc", 4)
        devices = [d for d, _ in badges]
        ids = [d.device_id for d in devices]
        send(devices, 25)
        wait_until(lambda: fixes(svc.store, ids) >= 100, timeout=30)

        alert_id = devices[0].raise_alert(type="red")
        devices[0].wait_for("alert_received", alert_id=alert_id, timeout=10)
        # The alert's own position is one fix more; nothing is stored twice.
        wait_until(lambda: fixes(svc.store, ids) == 101, timeout=10)
        with svc.store.session() as db:
            seen = db.scalars(select(Device.last_seen_at).where(Device.id.in_(ids))).all()
        assert all(at is not None for at in seen)
        assert (tmp_path / MARKER).read_text().strip() == "2"

        # The children's counts reach the service's /metrics (each reports every second).
        def locations_counted() -> float:
            for line in svc.http.get("/metrics").text.splitlines():
                if line.startswith('vigil_device_messages_total{suffix="location"}'):
                    return float(line.split()[-1])
            return 0.0

        # At least: a message delivered again after a restart is counted again.
        wait_until(lambda: locations_counted() >= 100, timeout=15, what="100 counted")


@pytest.mark.parametrize(("first", "then"), [(0, 2), (2, 1), (2, 0)])
def test_changing_the_number_of_processes_loses_and_doubles_nothing(
    pg_url: str, mqtt_broker: Broker, tmp_path: Path, first: int, then: int
) -> None:
    settings = service_settings(tmp_path, pg_url, mqtt_broker, ingest_processes=first)
    with running(settings, mqtt_broker) as svc:
        if first:
            started(svc)
        badges = svc.badges("chg", 3)
        devices = [d for d, _ in badges]
        ids = [d.device_id for d in devices]
        send(devices, 10)
        wait_until(lambda: fixes(svc.store, ids) == 30, timeout=30)

        # Sent while the service is down: queued at the broker in the sessions of whoever
        # took telemetry before the restart.
        svc.stop()
        send(devices, 20)
        time.sleep(1)  # at the broker before the service is back (the count below holds anyway)
        svc.restart(ingest_processes=then)
        if svc.service.ingest.processes is not None:
            started(svc)
        send(devices, 10)
        wait_until(lambda: fixes(svc.store, ids) >= 120, timeout=60)

        # Sessions of retired processes are drained and ended; the marker follows.
        wait_until(lambda: (tmp_path / MARKER).read_text().strip() == str(then), timeout=30)
        assert fixes(svc.store, ids) == 120


def test_a_killed_process_is_started_again_and_loses_nothing(
    pg_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path, pg_url, mqtt_broker, ingest_processes=2)
    with running(settings, mqtt_broker) as svc:
        started(svc)
        procs = svc.service.ingest.processes
        assert procs is not None
        devices = [d for d, _ in svc.badges("kill", 4)]
        ids = [d.device_id for d in devices]
        victim = procs.pids[0]
        assert victim is not None
        send(devices, 10)
        os.kill(victim, signal.SIGKILL)
        send(devices, 40, first=10)
        wait_until(lambda: procs.pids[0] not in (None, victim), timeout=30)

        # A batch committed but not yet acknowledged when the child died is delivered again
        # (at least once), so every fix is there, some maybe twice; none is missing.
        def distinct() -> int:
            with svc.store.session() as db:
                n = db.scalar(
                    select(
                        func.count(func.distinct(tuple_(LocationFix.device_id, LocationFix.lat)))
                    ).where(LocationFix.device_id.in_(ids))
                )
            return n or 0

        wait_until(lambda: distinct() == 200, timeout=60)


def test_sigterm_stops_the_service_and_its_processes(
    pg_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path, pg_url, mqtt_broker)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = serve_process({**serve_env(settings, port), "VIGIL_INGEST_PROCESSES": "2"}, log)
    try:
        assert wait_for_port("127.0.0.1", port, 30), log.read_text()
        wait_until(lambda: "telemetry-1 connected" in log.read_text(), timeout=30)
        # The telemetry processes are started by a supervising thread, so they are that
        # thread's children, not the main thread's.
        children = [
            int(pid)
            for task in Path(f"/proc/{proc.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        telemetry = [
            pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(telemetry) == 2, children
        proc.send_signal(signal.SIGTERM)
        # A clean stop, as a service manager wants to see it; it used to die of the signal
        # before stopping anything (uvicorn raises it again after shutting down).
        assert proc.wait(60) == 0, log.read_text()[-3000:]
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_default_is_one_process_on_postgresql_and_status_stays_with_the_service(
    pg_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    two_cores = (os.cpu_count() or 1) >= 2
    assert Settings(data_dir=tmp_path, database_url=pg_url).telemetry_processes == int(two_cores)
    assert Settings(data_dir=tmp_path).telemetry_processes == 0  # SQLite: one writer
    settings = service_settings(tmp_path, pg_url, mqtt_broker, ingest_processes=None)
    assert settings.telemetry_processes == int(two_cores)
    svc = Running(settings, mqtt_broker)
    try:
        # Connected before the service's first start: its `online` status waits at the
        # broker, retained. A shared subscription is sent no retained message, so only the
        # service's own session can read it.
        device, badge = svc.badge("ret")
        svc.start()
        if two_cores:
            started(svc)

        def online() -> bool:
            with svc.store.session() as db:
                return bool(db.scalar(select(Device.online).where(Device.id == badge.device_id)))

        wait_until(online, timeout=20, what="the retained status read")
        device.send_location(51.5, -0.12, qos=1)
        wait_until(lambda: fixes(svc.store, [badge.device_id]) == 1, timeout=20)
    finally:
        svc.close()


def test_processes_need_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VIGIL_INGEST_PROCESSES needs PostgreSQL"):
        Settings(data_dir=tmp_path, ingest_processes=2)
