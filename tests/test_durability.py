"""Nothing lost, nothing doubled: alerts sent while the service is down, or as it crashes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from monitor.alerts.models import Alert
from monitor.broker import free_port, wait_for_port
from monitor.db import Store
from tests.support import (
    Broker,
    Running,
    serve_env,
    serve_process,
    service_settings,
    wait_until,
)


def _count(store: Store) -> int:
    with store.session() as db:
        return db.scalar(select(func.count()).select_from(Alert)) or 0


def _distinct(store: Store) -> int:
    with store.session() as db:
        pairs = db.execute(select(Alert.device_id, Alert.device_alert_id)).all()
        return len(set(pairs))


def test_alerts_published_while_service_is_down_all_arrive(svc: Running) -> None:
    fleet = svc.badges("fleet", 50)
    svc.stop()
    raised = {d.device_id: [d.raise_alert(type="red") for _ in range(10)] for d, _ in fleet}
    time.sleep(1.5)  # the devices resend while nobody answers
    assert _count(svc.store) == 0

    svc.restart()
    # At some 20 ms of work for each new alert and its escalation, with every device's
    # copies coming each second meanwhile, this takes 11 to 37 s on an idle two-core machine;
    # what is held here is that none is lost or doubled, not how fast a loaded one is.
    wait_until(lambda: _count(svc.store) >= 500, timeout=180, what="500 alerts stored")
    for d, _ in fleet:
        wait_until(
            lambda d=d: d.pending_alerts == [],
            timeout=30,
            what=f"alert_received for every alert of {d.device_id}",
        )
    time.sleep(1.0)
    assert _count(svc.store) == 500
    with svc.store.session() as db:
        stored = set(db.execute(select(Alert.device_id, Alert.device_alert_id)).all())
    assert stored == {(dev, a) for dev, ids in raised.items() for a in ids}


def test_sigkill_mid_burst_loses_and_doubles_nothing(
    db_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path / "data", db_url, mqtt_broker)
    port = free_port()
    env = serve_env(settings, port)
    log = tmp_path / "serve.log"
    helper = Running(settings, mqtt_broker)  # for the store and device helpers only
    proc = serve_process(env, log)
    try:
        assert wait_for_port("127.0.0.1", port, 30), log.read_text()
        fleet = helper.badges("burst", 20)
        probe, _ = fleet[0]
        first = probe.raise_alert(type="test")
        probe.wait_for("alert_received", alert_id=first, timeout=20)

        raised: list[tuple[str, str]] = [(probe.device_id, first)]
        for n in range(50):
            for d, _ in fleet:
                if (d, n) != (probe, 0):
                    raised.append((d.device_id, d.raise_alert(type="red")))
        assert len(raised) == 1000
        wait_until(lambda: _count(helper.store) >= 150, timeout=60, what="part of the burst")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored_at_kill = _count(helper.store)
        assert stored_at_kill < len(raised), "the burst finished before the kill"

        proc = serve_process(env, log)
        assert wait_for_port("127.0.0.1", port, 30), log.read_text()
        wait_until(
            lambda: _count(helper.store) >= len(raised),
            timeout=120,
            what="every alert of the burst stored",
        )
        for d, _ in fleet:
            wait_until(
                lambda d=d: d.pending_alerts == [],
                timeout=60,
                what=f"alert_received for every alert of {d.device_id}",
            )
        time.sleep(1.0)
        assert _count(helper.store) == len(raised)
        assert _distinct(helper.store) == len(raised)
        with helper.store.session() as db:
            stored = set(db.execute(select(Alert.device_id, Alert.device_alert_id)).all())
        assert stored == set(raised)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        helper.close()
