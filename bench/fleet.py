"""Benchmark fleets: many devices registered at once, and the device simulator's command
(`python -m device_sim`) run as the load, in processes of its own."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

from monitor.db import Store
from monitor.devices.models import Device
from monitor.security import hash_device_secret

BATCH = 10_000
READY = re.compile(r"fleet of (\d+) devices running")


def add_devices(store: Store, ids: list[str]) -> str:
    """Register devices without workers, all with one secret, which is returned: hashing a
    secret for each of 100,000 devices would cost minutes and change nothing measured."""
    secret = secrets.token_urlsafe(24)
    secret_hash = hash_device_secret(secret)
    now = datetime.now(UTC)
    for first in range(0, len(ids), BATCH):
        rows = [
            {"id": device_id, "secret_hash": secret_hash, "created_at": now}
            for device_id in ids[first : first + BATCH]
        ]
        with store.begin() as db:
            db.execute(insert(Device), rows)
    return secret


def write_credentials(path: Path, creds: dict[str, str]) -> Path:
    path.write_text(
        json.dumps(
            [
                {"device_id": d, "secret": s, "cancel_pin": "1234", "duress_pin": "9876"}
                for d, s in creds.items()
            ]
        )
    )
    return path


def raise_open_files_limit() -> int:
    """Up to the hard limit, for this process and what it starts (Mosquitto holds a socket per
    device)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(hard)


def online(store: Store, prefix: str) -> int:
    with store.session() as db:
        return int(
            db.scalar(
                select(func.count())
                .select_from(Device)
                .where(Device.id.startswith(prefix), Device.online.is_(True))
            )
            or 0
        )


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    total = 0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The parent is the fourth field, after the command in parentheses.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@contextlib.contextmanager
def simulator(
    credentials: Path,
    port: int,
    workdir: Path,
    *,
    processes: int = 1,
    location_every: float = 10.0,
    heartbeat_every: float = 60.0,
    ready_timeout: float = 300.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m device_sim` with these devices, reporting and nothing else (no alerts, no
    visits), until every device is connected; stopped with SIGTERM (clean disconnects)."""
    log_path = workdir / "device_sim.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "device_sim",
            "--port", str(port), "--credentials", str(credentials),
            "--processes", str(processes),
            "--location-every", str(location_every), "--heartbeat-every", str(heartbeat_every),
            "--alert-rate", "0", "--visit-rate", "0", "--seed", "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        wanted = len(json.loads(credentials.read_text()))
        deadline = time.monotonic() + ready_timeout
        while True:
            found = READY.findall(log_path.read_text(errors="replace"))
            if any(int(n) == wanted for n in found):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "device_sim did not connect its fleet:\n" + log_path.read_text()[-3000:]
                )
            time.sleep(0.5)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


class Sampler:
    """Peak resident memory of a process tree, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak
