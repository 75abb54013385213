"""`vigil demo`: one command, no configuration, everything up; Ctrl-C stops all of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from monitor.broker import free_port, wait_for_port
from tests.support import wait_until


def _demo(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_demo_runs_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = _demo(tmp_path, port)
    out: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(out)
        sign_in = re.search(r"Sign in:\s+(\S+) / (\S+)", text)
        broker = re.search(r"mqtt://127\.0\.0\.1:(\d+)", text)
        assert sign_in and broker, text
        assert f"http://127.0.0.1:{port}/" in text
        assert (tmp_path / "vigil-data" / "vigil.db").exists()

        base = f"http://127.0.0.1:{port}"
        assert wait_for_port("127.0.0.1", port, 30)
        token = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": sign_in[1], "password": sign_in[2]}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}

        def all_online() -> bool:
            devices = httpx.get(f"{base}/api/v1/devices", headers=headers).json()
            return len(devices) == 5 and all(d["online"] for d in devices)

        wait_until(all_online, timeout=30, every=0.5, what="the simulated fleet online")
        assert "<title>Vigil console</title>" in httpx.get(base + "/").text
        workers = httpx.get(f"{base}/api/v1/workers", headers=headers).json()
        assert len(workers) == 5 and all(w["team"] for w in workers)
    finally:
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(30)
    rest = proc.stdout.read() if proc.stdout else ""
    # 130 is the shell's convention for "ended by Ctrl-C"; what matters is a clean stop.
    assert code in (0, 130), "".join(out) + rest
    assert "Traceback" not in rest
    assert not wait_for_port("127.0.0.1", int(broker[1]), 0.5), "mosquitto still running"
    assert not wait_for_port("127.0.0.1", port, 0.5), "console still listening"


def test_demo_without_mosquitto_says_how_to_install_it(tmp_path: Path) -> None:
    proc = _demo(tmp_path, free_port(), VIGIL_MOSQUITTO_BIN=str(tmp_path / "no-such"))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "apt-get install mosquitto" in out
    assert "Traceback" not in out
