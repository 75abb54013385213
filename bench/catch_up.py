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
import time
from multiprocessing.connection import Connection

from sqlalchemy import func, select

from bench.harness import broker_for, fresh_store, service, wait_up
from device_sim.device import SimDevice
from device_sim.netloop import NetLoop
from monitor import broker
from monitor.alerts.models import Alert
from monitor.devices.service import add_device
from monitor.orgs.service import add_worker


def drive(
    port: int, creds: list[tuple[str, str]], alerts: int, resend: float, pipe: Connection
) -> None:
    """A child process: its badges connect, then on each "raise" raise `alerts` alerts each,
    answer "raised", and then the time (perf_counter, shared by the machine) the last was
    confirmed, however long the service takes to come back."""
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
    while pipe.recv() == "raise":
        for b in badges:
            for _ in range(alerts):
                b.raise_alert("red")
        pipe.send("raised")
        while any(b.pending_alerts for b in badges):
            time.sleep(0.005)
        pipe.send(time.perf_counter())
    for b in badges:
        b.disconnect()
    loop.close()


def raise_all(pipes: list[Connection]) -> None:
    """Every child raises its alerts; returns once all are raised (not yet confirmed)."""
    for p in pipes:
        p.send("raise")
    for p in pipes:
        assert p.recv() == "raised"


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

    with fresh_store(args.db) as fresh:
        workdir, url, store = fresh.workdir, fresh.url, fresh.store
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
            with service(workdir, url, brk, http_port):
                wait_up(http_port, "/readyz", 120)
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
                raise_all(pipes)
                anchor = max(p.recv() for p in pipes) - t0
                assert stored() == total, stored()
            # The service is down (SIGTERM; the broker keeps its session and queues for it).
            raise_all(pipes)
            time.sleep(args.down)
            with service(workdir, url, brk, http_port, log_name="serve-again.log") as (_, started):
                up = wait_up(http_port, "/readyz", 120) - started
                last = max(p.recv() for p in pipes) - started
                assert stored() == 2 * total, stored()
            for p in pipes:
                p.send("stop")
            for child in children:
                child.join(30)

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
