"""`python -m device_sim`, run_fleet() and credential files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sim_support import Mosquitto, Service

from device_sim.cli import run, run_fleet
from device_sim.credentials import DeviceCredentials, load_credentials

REPO = Path(__file__).resolve().parents[2]


def write_creds(path: Path, n: int = 2) -> list[DeviceCredentials]:
    tag = uuid.uuid4().hex[:6]
    creds = [
        DeviceCredentials(f"cli-{tag}-{i}", f"pw{i}", "2468", "1357", "phone" if i else "badge")
        for i in range(n)
    ]
    path.write_text(json.dumps([c.to_dict() for c in creds]))
    return creds


def test_load_credentials(tmp_path: Path) -> None:
    f = tmp_path / "creds.json"
    f.write_text("[]")
    assert load_credentials(f) == []
    creds = write_creds(f)
    assert load_credentials(f) == creds

    cases = {
        '{"device_id": "x"}': "list",
        '[{"device_id": "a", "secret": "s", "cancel_pin": "12", "duress_pin": "9999"}]': "PIN",
        '[{"device_id": "a b", "secret": "s", "cancel_pin": "1234", "duress_pin": "9999"}]': "id",
        '[{"device_id": "a", "secret": "s"}]': "missing",
        "[{": "not JSON",
        '[{"device_id": "a", "secret": "s", "cancel_pin": "1234", "duress_pin": "9999",'
        ' "kind": "pager"}]': "kind",
    }
    for text, complaint in cases.items():
        f.write_text(text)
        with pytest.raises(ValueError, match=complaint):
            load_credentials(f)
    one = {"device_id": "a", "secret": "s", "cancel_pin": "1234", "duress_pin": "9999"}
    f.write_text(json.dumps([one, one]))
    with pytest.raises(ValueError, match="twice"):
        load_credentials(f)


def test_run_reports_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--credentials", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "empty.json").write_text("[]")
    assert run(["--credentials", str(tmp_path / "empty.json")]) == 2
    with pytest.raises(SystemExit) as caught:
        run(["--credentials", "x.json", "--place", "north"])
    assert caught.value.code == 2
    assert "LAT,LON" in capsys.readouterr().err


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_line_runs_a_fleet_and_stops_cleanly_on_a_signal(
    broker: Mosquitto, service: Service, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    creds = write_creds(tmp_path / "creds.json")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "device_sim",
            "--host", "127.0.0.1", "--port", str(broker.port),
            "--credentials", str(tmp_path / "creds.json"),
            "--place", "52.2053,0.1218", "--location-every", "0.3", "--heartbeat-every", "0.5",
            "--seed", "5",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for c in creds:
            service.wait_one(c.device_id, "location", timeout=10)
            service.wait_one(c.device_id, "heartbeat", timeout=5)
        proc.send_signal(stop_signal)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert "fleet stopped" in output, output
    time.sleep(0.3)
    for c in creds:
        statuses = [m.json()["online"] for m in service.of(c.device_id, "status")]
        assert statuses == [True], f"{c.device_id}: a clean stop sends no last will"
        loc = service.of(c.device_id, "location")[0].json()["loc"]
        assert abs(loc["lat"] - 52.2053) < 0.02 and abs(loc["lon"] - 0.1218) < 0.03


def test_run_fleet_stops_on_event_or_duration(broker: Mosquitto, tmp_path: Path) -> None:
    creds = write_creds(tmp_path / "creds.json", n=1)
    stop = threading.Event()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(
            run_fleet(creds, "127.0.0.1", broker.port, stop_event=stop, location_every_s=0.5)
        )
    )
    worker.start()
    time.sleep(0.3)
    stop.set()
    worker.join(5)
    assert result == [0]

    started = time.monotonic()
    assert run_fleet(creds, "127.0.0.1", broker.port, duration_s=0.3) == 0
    assert time.monotonic() - started < 2


def test_run_fleet_returns_1_when_the_broker_refuses(tmp_path: Path) -> None:
    server = Mosquitto(tmp_path, passwords={"someone": "else"})
    server.start()
    try:
        creds = write_creds(tmp_path / "creds.json", n=1)
        assert run_fleet(creds, "127.0.0.1", server.port, duration_s=1) == 1
    finally:
        server.stop()
