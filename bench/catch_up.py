"""After an outage: how long the last of the alerts raised while the service was down waits
once it is back, against the same alerts raised while it is up.

Usage: python -m bench.catch_up [--db sqlite|postgresql] [--devices 50] [--alerts 10]
           [--down 10] [--resend 1.0] [--procs 2]

`--devices` badges, driven by `--procs` processes of their own (not this one's interpreter),
each raise `--alerts` red alerts at once and resend every one unconfirmed each `--resend`
seconds, as PROTOCOL.md asks of a device. First with the service up: the anchor is the time
from the raise to the last `alert_received`. Then the service is stopped (SIGTERM, the broker
stays up and keeps its persistent session), the badges raise as many new alerts and resend
them for `--down` seconds, and the service starts again. Printed: its start to ready
(`/readyz`) on that backlog, the time from its start and from its readiness to the last
alert confirmed, each against the anchor, and how many copies the devices sent.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
import urllib.request
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy import func, select

from bench.harness import broker_for, database, service
from device_sim.device import SimDevice
from device_sim.netloop import NetLoop
from monitor import broker
from monitor.alerts.models import Alert
from monitor.db import Store
from monitor.devices.service import add_device
from monitor.migrate import upgrade
from monitor.orgs.service import add_worker


def drive(
    port: int, creds: list[tuple[str, str]], alerts: int, resend: float, pipe: Connection
) -> None:
    """A child process: its badges connect, then on each "raise" raise `alerts` alerts each
    and answer with the time (perf_counter, shared by the machine) the last was confirmed."""
    loop = NetLoop("catch-up-net")
    loop.start()
    badges = [
        SimDevice(d, s, port=port, alert_retry_s=resend, loop=loop, keepalive=60) for d, s in creds
    ]
    for b in badges:
        b.connect(wait=False)
    for b in badges:
        b.wait_connected(30)
    pipe.send("connected")
    while (order := pipe.recv()) != "stop":
        for b in badges:
            for _ in range(alerts):
                b.raise_alert("red")
        if order == "raise":
            while any(b.pending_alerts for b in badges):
                time.sleep(0.005)
            pipe.send(time.perf_counter())
        else:  # "raise and go on": the service is down, the parent says when it is back
            pipe.send("raised")
            assert pipe.recv() == "wait"
            while any(b.pending_alerts for b in badges):
                time.sleep(0.005)
            pipe.send(time.perf_counter())
    for b in badges:
        b.disconnect()
    loop.close()


def ready(http_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def wait_ready(http_port: int, limit: float = 120) -> float:
    """perf_counter() when the service first answers /readyz with 200."""
    end = time.perf_counter() + limit
    while time.perf_counter() < end:
        if ready(http_port):
            return time.perf_counter()
        time.sleep(0.02)
    raise RuntimeError("the service did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--alerts", type=int, default=10, help="alerts per device, each time")
    ap.add_argument("--down", type=float, default=10.0, help="seconds the service is down")
    ap.add_argument("--resend", type=float, default=1.0, help="a device's resend interval")
    ap.add_argument("--procs", type=int, default=2, help="processes driving the devices")
    args = ap.parse_args()
    total = args.devices * args.alerts

    with (
        tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp,
        database(args.db, Path(tmp)) as url,
    ):
        workdir = Path(tmp)
        store = Store(url)
        upgrade(store)
        creds: list[tuple[str, str]] = []
        with store.begin() as db:
            for i in range(args.devices):
                w = add_worker(
                    db, name=f"Worker {i}", cancel_pin="1234", duress_pin="9876", team="Bench"
                )
                d, s = add_device(db, f"alert-{i:03d}", worker_id=w.id)
                creds.append((d.id, s))

        def stored() -> int:
            with store.session() as db:
                return int(db.scalar(select(func.count(Alert.id))) or 0)

        http_port = broker.free_port()
        with broker_for(store, workdir) as brk:
            with service(workdir, url, brk, http_port) as (_, started):
                wait_ready(http_port)
                time.sleep(1.0)
                ctx = mp.get_context("spawn")
                pipes, children = [], []
                for n in range(args.procs):
                    mine, theirs = ctx.Pipe()
                    share = creds[n :: args.procs]
                    child = ctx.Process(
                        target=drive, args=(brk.port, share, args.alerts, args.resend, theirs)
                    )
                    child.start()
                    pipes.append(mine)
                    children.append(child)
                for p in pipes:
                    assert p.recv() == "connected"
                time.sleep(1.0)
                t0 = time.perf_counter()
                for p in pipes:
                    p.send("raise")
                anchor = max(p.recv() for p in pipes) - t0
                assert stored() == total, stored()
            # The service is down (SIGTERM; the broker keeps its session and queues for it).
            for p in pipes:
                p.send("raise, service down")
            for p in pipes:
                assert p.recv() == "raised"
            for p in pipes:
                p.send("wait")
            time.sleep(args.down)
            with service(workdir, url, brk, http_port, log_name="serve-again.log") as (_, started):
                up = wait_ready(http_port) - started
                last = max(p.recv() for p in pipes) - started
                assert stored() == 2 * total, stored()
            for p in pipes:
                p.send("stop")
            for child in children:
                child.join(30)
        store.dispose()

    copies = int(args.down / args.resend) * total
    print(
        f"database={args.db} devices={args.devices} alerts={total} each time "
        f"down={args.down:.0f} s resend={args.resend:.1f} s (about {copies} copies queued)"
    )
    print(f"anchor, service up: last alert confirmed {anchor:.2f} s after the raise")
    print(
        f"after the outage: ready {up:.2f} s after start; last alert confirmed {last:.2f} s "
        f"after start, {last - up:.2f} s after ready"
    )
    print(f"ratio (after ready / anchor): {(last - up) / anchor:.1f}")


if __name__ == "__main__":
    main()
