"""A replica killed in the middle of an alert stream: its share of the device traffic, and
what the broker had queued for it, move to the live replica within seconds."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import select

from monitor.alerts.models import Alert
from monitor.broker import free_port, wait_for_port
from monitor.replicas.models import Replica
from tests.support import (
    Broker,
    PgDatabases,
    Running,
    serve_env,
    serve_process,
    service_settings,
    wait_until,
)


def _alerts_received(port: int) -> float:
    """Alert messages one replica has received, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('vigil_device_messages_total{suffix="alert"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_killed_replicas_share_moves_to_the_live_one(pg: PgDatabases, tmp_path: Path) -> None:
    pg_url = pg.new()
    brk = Broker(tmp_path / "mosquitto")  # of this test's own: it ends with sessions left
    brk.dir.mkdir()
    brk.start()
    group = "g" + uuid.uuid4().hex[:8]
    envs = {
        name: {
            **serve_env(service_settings(tmp_path / name, pg_url, brk), free_port()),
            "VIGIL_MQTT_SHARED_GROUP": group,
        }
        for name in ("a", "b")
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    raised: list[tuple[str, str]] = []
    helper = Running(service_settings(tmp_path / "helper", pg_url, brk), brk)  # store, badges

    def start(*names: str) -> None:
        for name in names:
            procs[name] = serve_process(envs[name], tmp_path / f"{name}.log")
        for name in names:
            port = int(envs[name]["VIGIL_HTTP_PORT"])
            assert wait_for_port("127.0.0.1", port, 30), (tmp_path / f"{name}.log").read_text()

    def taking_alerts() -> bool:
        return all(_alerts_received(int(env["VIGIL_HTTP_PORT"])) > 0 for env in envs.values())

    def all_answered() -> bool:
        return all(d.pending_alerts == [] for d in fleet)

    def rounds_until_both_take_alerts() -> None:
        for _ in range(10):  # a replica just started may not have subscribed yet
            raised.extend((d.device_id, d.raise_alert(type="red")) for d in fleet)
            wait_until(all_answered, timeout=30, what="an answer to every alert")
            if taking_alerts():
                return
        raise AssertionError("a replica takes no alerts")

    try:
        start("a", "b")
        fleet = [d for d, _ in helper.badges("share", 20)]
        for d in fleet:
            # Devices resend an alert until it is answered, but never a cancel, a visit or
            # evidence: without resends here, what was queued for the dead replica is
            # answered only if it moves to the live one.
            d.alert_retry_s = 3600
        rounds_until_both_take_alerts()
        for n in range(120):  # 30 a second; replica A is killed half-way
            if n == 60:
                procs["a"].send_signal(signal.SIGKILL)
                procs["a"].wait(10)
            d = fleet[n % len(fleet)]
            raised.append((d.device_id, d.raise_alert(type="red")))
            time.sleep(1 / 30)
        wait_until(all_answered, timeout=30, what="an answer to every alert, A's share too")

        # Once B has ended A's sessions (and forgotten A), A comes back under its own name
        # and takes its share again.
        with helper.store.session() as db:
            wait_until(
                lambda: db.scalars(select(Replica.node)).all() == [envs["b"]["VIGIL_MQTT_NODE"]],
                timeout=30,
                what="A's sessions taken over and ended",
            )
        start("a")
        rounds_until_both_take_alerts()

        with helper.store.session() as db:
            stored = db.execute(select(Alert.device_id, Alert.device_alert_id)).all()
        assert len(stored) == len(set(stored)) == len(raised)
        assert set(stored) == set(raised)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        helper.close()
        brk.stop()
        pg.drop(pg_url)
