"""`vigil demo`: one command, no configuration, everything up; Ctrl-C stops all of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from monitor.broker import free_port, wait_for_port
from tests.support import wait_until


def _demo(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    # Output goes to a file: a pipe nobody reads would fill and stall the demo.
    with open(tmp_path / "demo.log", "wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "demo",
                "--port",
                str(port),
                "--devices",
                "5",
                "--alert-rate",
                "0",
            ],
            cwd=tmp_path,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> int:
    # Ctrl-C in a terminal signals the whole foreground process group.
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    proc = _demo(tmp_path, port)
    try:
        text = wait_until(
            lambda: "Ctrl-C stops everything" in log.read_text() and log.read_text(),
            timeout=90,
            every=0.2,
            what="the demo's banner",
        )
        sign_in = re.search(r"Sign in:\s+(\S+) / (\S+)", text)
        broker = re.search(r"mqtt://127\.0\.0\.1:(\d+)", text)
        assert sign_in and broker, text
        assert f"http://127.0.0.1:{port}/" in text
        # An enrolment link for the worker app, with its QR code.
        assert f"http://127.0.0.1:{port}/app/#enrol=" in text and "█" in text
        assert (tmp_path / "vigil-data" / "vigil.db").exists()

        base = f"http://127.0.0.1:{port}"
        assert wait_for_port("127.0.0.1", port, 30)
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": sign_in[1], "password": sign_in[2]}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        # And the service's administrator, for the Admin tab's every section.
        admin = re.search(r"^\s+admin / (\S+)  \(role: admin", text, re.M)
        assert admin, text
        r = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "admin", "password": admin[1]}
        )
        me = httpx.get(
            f"{base}/api/v1/auth/me",
            headers={"Authorization": f"Bearer {r.json()['access_token']}"},
        ).json()
        assert me["role"] == "admin" and me["org_id"] is None
        # The start says nothing of the store's migrations unless asked (-v).
        assert "alembic" not in text and "Running upgrade" not in text, text

        def all_online() -> bool:
            devices = httpx.get(f"{base}/api/v1/devices", headers=headers).json()
            # The simulated fleet; the phone app enrolled for the banner's link is not.
            fleet = [d for d in devices if not d["id"].startswith("app-")]
            return len(fleet) == 5 and all(d["online"] for d in fleet)

        wait_until(all_online, timeout=30, every=0.5, what="the simulated fleet online")
        assert "<title>Vigil console</title>" in httpx.get(base + "/").text
        workers = httpx.get(f"{base}/api/v1/workers", headers=headers).json()
        assert len(workers) == 5 and all(w["team"] for w in workers)
        # Escalation runs on the default policy shipped in docs/.
        policies = httpx.get(f"{base}/api/v1/escalation/policies", headers=headers).json()
        assert [p["name"] for p in policies] == sorted(
            ["Panic and duress", "Worker may be hurt", "Device offline", "Test alerts"]
        )
    finally:
        code = _stop(proc)
    output = log.read_text()
    # 130 is the shell's convention for "ended by Ctrl-C"; what matters is a clean stop.
    assert code in (0, 130), output
    assert "Traceback" not in output
    assert "fleet stopped" in output
    assert not wait_for_port("127.0.0.1", int(broker[1]), 0.5), "mosquitto still running"
    assert not wait_for_port("127.0.0.1", port, 0.5), "console still listening"


def test_demo_without_mosquitto_says_how_to_install_it(tmp_path: Path) -> None:
    proc = _demo(tmp_path, free_port(), VIGIL_MOSQUITTO_BIN=str(tmp_path / "no-such"))
    assert proc.wait(60) == 1
    output = (tmp_path / "demo.log").read_text()
    assert "apt-get install mosquitto" in output
    assert "Traceback" not in output
