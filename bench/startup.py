"""Scale at rest: how long `vigil serve` takes to start on a store with many registered
devices and location rows, and how much memory it holds once up (no device connected).

    python -m bench.startup --db postgresql --devices 100000 --locations 1000000
"""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from bench.fleet import rss_mb
from bench.harness import fresh_store, serving, wait_up
from monitor.db import Store
from monitor.devices.models import Device, LocationFix
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--locations", type=int, default=1_000_000)
    ap.add_argument("--settle", type=float, default=10, help="seconds up before reading RSS")
    args = ap.parse_args()

    with fresh_store(args.db) as fresh:
        workdir, url, store = fresh.workdir, fresh.url, fresh.store
        t = time.perf_counter()
        fill(store, args.devices, args.locations)
        filled = time.perf_counter() - t
        with serving(store, workdir, url) as served:
            try:
                up = wait_up(served.http_port, proc=served.proc) - served.started
            except RuntimeError as err:
                raise RuntimeError((workdir / "serve.log").read_text()[-2000:]) from err
            time.sleep(args.settle)
            rss = rss_mb(served.proc.pid)

    print(f"database={args.db} devices={args.devices} locations={args.locations}")
    print(f"filled in {filled:.1f} s")
    print(
        f"vigil serve: healthy {up:.2f} s after start; RSS after {args.settle:.0f} s {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
