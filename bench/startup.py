"""Scale at rest: how long `vigil serve` takes to start on a store with many registered
devices and location rows, and how much memory it holds once up (no device connected).

    python -m bench.startup --db postgresql --devices 100000 --locations 1000000
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench.harness import SERVICE_USER, database
from monitor import broker
from monitor.db import Store
from monitor.devices.models import Device, LocationFix
from monitor.migrate import upgrade
from monitor.security import hash_device_secret

BATCH = 10_000


def fill(store: Store, devices: int, locations: int) -> None:
    # One secret hash for every device: hashing 100,000 secrets would cost minutes and
    # changes nothing of what is measured.
    secret_hash = hash_device_secret(secrets.token_urlsafe(32))
    now = datetime.now(UTC)
    for first in range(0, devices, BATCH):
        rows = [
            {"id": f"scale-{i:06d}", "secret_hash": secret_hash, "created_at": now}
            for i in range(first, min(devices, first + BATCH))
        ]
        with store.begin() as db:
            db.execute(insert(Device), rows)
    # Recent fixes (within the retention time), so the service has no purge to do at start.
    for first in range(0, locations, BATCH):
        rows = []
        for n in range(first, min(locations, first + BATCH)):
            at = now - timedelta(seconds=locations - n)
            rows.append(
                {
                    "device_id": f"scale-{n % devices:06d}",
                    "device_ts": at,
                    "received_at": at,
                    "lat": 51.5 + (n % 100) * 1e-4,
                    "lon": -0.12,
                    "acc": 5.0,
                }
            )
        with store.begin() as db:
            db.execute(insert(LocationFix), rows)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--locations", type=int, default=1_000_000)
    ap.add_argument("--settle", type=float, default=10, help="seconds up before reading RSS")
    args = ap.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp,
        database(args.db, Path(tmp)) as url,
    ):
        workdir = Path(tmp)
        store = Store(url)
        upgrade(store)
        t = time.perf_counter()
        fill(store, args.devices, args.locations)
        filled = time.perf_counter() - t
        password = secrets.token_urlsafe(16)
        port = broker.free_port()
        with store.session() as db:
            files = broker.write_config(db, workdir / "broker", port, SERVICE_USER, password)
        mosq = broker.MosquittoProcess(files.conf, port)
        mosq.start()
        http_port = broker.free_port()
        env = {
            **os.environ,
            "VIGIL_DATA_DIR": str(workdir / "data"),
            "VIGIL_DATABASE_URL": url,
            "VIGIL_MQTT_PORT": str(port),
            "VIGIL_MQTT_USERNAME": SERVICE_USER,
            "VIGIL_MQTT_PASSWORD": password,
            "VIGIL_HTTP_PORT": str(http_port),
            "VIGIL_SECRET_KEY": secrets.token_urlsafe(32),
        }
        log = open(workdir / "serve.log", "wb")  # noqa: SIM115
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve"], env=env, stdout=log, stderr=log
        )
        try:
            up = None
            while time.perf_counter() - start < 300 and proc.poll() is None:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{http_port}/healthz", timeout=1
                    ) as r:
                        if r.status == 200:
                            up = time.perf_counter() - start
                            break
                except OSError:
                    time.sleep(0.05)
            if up is None:
                raise RuntimeError((workdir / "serve.log").read_text()[-2000:])
            time.sleep(args.settle)
            rss = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
            mosq.stop()
            store.dispose()

    print(f"database={args.db} devices={args.devices} locations={args.locations}")
    print(f"filled in {filled:.1f} s")
    print(
        f"vigil serve: healthy {up:.2f} s after start; RSS after {args.settle:.0f} s {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
