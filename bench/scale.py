"""Scale: resident memory of `vigil serve` with 100,000 registered devices of which 15,000 are
connected (simulated by device_sim's command, reporting their position every minute).

    python -m bench.scale --db postgresql --devices 100000 --connected 15000

Prints the service's memory at rest before the fleet connects and once it has been connected
for `--settle` seconds (and the peak between), and the broker's and the simulator's, for
scale.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

from bench.fleet import (
    Sampler,
    add_devices,
    descendants,
    online,
    raise_open_files_limit,
    rss_mb,
    simulator,
    write_credentials,
)
from bench.harness import fresh_store, serving, wait_up

PREFIX = "scale-"


def broker_pid(workdir: Path) -> int | None:
    """The Mosquitto this benchmark started (the harness keeps its handle to itself)."""
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if "mosquitto" in cmdline and str(workdir) in cmdline:
                return pid
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--connected", type=int, default=15_000)
    ap.add_argument("--processes", type=int, default=2, help="device_sim processes")
    ap.add_argument("--location-every", type=float, default=60.0, metavar="S")
    ap.add_argument("--settle", type=float, default=60, help="seconds connected before reading")
    args = ap.parse_args()
    limit = raise_open_files_limit()

    with fresh_store(args.db) as fresh:
        workdir, url, store = fresh.workdir, fresh.url, fresh.store
        ids = [f"{PREFIX}{i:06d}" for i in range(args.devices)]
        secret = add_devices(store, ids)
        creds = write_credentials(
            workdir / "fleet.json", {d: secret for d in ids[: args.connected]}
        )
        with serving(store, workdir, url) as served:
            wait_up(served.http_port)
            time.sleep(10)
            at_rest = rss_mb(served.proc.pid)
            sampler = Sampler(served.proc.pid)
            t = time.perf_counter()
            with simulator(
                creds,
                served.broker_port,
                workdir,
                processes=args.processes,
                location_every=args.location_every,
                heartbeat_every=300,
            ) as sim:
                connected_s = time.perf_counter() - t
                deadline = time.monotonic() + 120
                while online(store, PREFIX) < args.connected:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(1)
                seen_online = online(store, PREFIX)
                time.sleep(args.settle)
                serve_rss = rss_mb(served.proc.pid)
                sim_rss = rss_mb(sim.pid)
                mosq = broker_pid(workdir)
                broker_rss = rss_mb(mosq) if mosq else float("nan")
            peak = sampler.stop()
            alive = served.proc.poll() is None

    print(
        f"database={args.db} registered={args.devices} connected={args.connected} "
        f"location_every={args.location_every:g}s open_files_limit={limit}"
    )
    print(f"fleet connected in {connected_s:.1f} s; devices online in the store: {seen_online}")
    print(
        f"vigil serve RSS: at rest {at_rest:.0f} MB; after {args.settle:.0f} s with the fleet"
        f" {serve_rss:.0f} MB; peak {peak:.0f} MB; still running: {alive}"
    )
    print(f"mosquitto RSS {broker_rss:.0f} MB; device_sim ({args.processes} proc) {sim_rss:.0f} MB")


if __name__ == "__main__":
    main()
