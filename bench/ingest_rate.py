"""Location ingest: how fast `vigil serve` stores location messages, against how fast the
same broker delivers the same messages to `mosquitto_sub`, in one run.

Publishers send a fixed number of QoS 1 locations as fast as the broker takes them; the run
ends when the database holds every one (or after a timeout, counting what is missing).

    python -m bench.ingest_rate --db postgresql --messages 60000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import threading
import time
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlalchemy import func, select

from bench.fleet import descendants
from bench.flood import flood
from bench.harness import SERVICE_USER, processes_env, rig
from monitor.devices.models import LocationFix


def publish(
    port: int,
    password: str,
    devices: int,
    first: int,
    count: int,
    index: int,
    go: Event,
    cpu: Synchronized[float],
) -> None:
    """One publisher process: `count` locations, encoded before `go`, then sent on one
    connection as fast as the broker takes them, waiting for every PUBACK. `cpu` gets the
    CPU seconds the sending took (the process is gone before the benchmark could read it)."""
    now = int(time.time() * 1000)
    messages = [
        (
            f"vigil/v1/load-{n % devices:05d}/location",
            json.dumps(
                {
                    "v": 1,
                    "ts": now + n,
                    "loc": {"lat": 51.5 + (n % 100) * 1e-4, "lon": -0.12, "acc": 5, "src": "gps"},
                    "batt": 80,
                }
            ).encode(),
        )
        for n in range(first, first + count)
    ]
    started = 0.0

    def on_connected() -> None:
        nonlocal started
        go.wait()
        started = time.process_time()

    flood("127.0.0.1", port, SERVICE_USER, password, messages, f"bench-pub-{index}", on_connected)
    cpu.value = time.process_time() - started


TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            # utime and stime: the 14th and 15th fields, after the command in parentheses.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / TICK, sum(ticks) / TICK


def our_processes() -> tuple[list[int], list[int]]:
    """This run's `vigil serve` (with its children) and its Mosquitto."""
    service, mosquitto = [], []
    for pid in descendants(os.getpid()):
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if "mosquitto" in cmd and "-c" in cmd:
                mosquitto.append(pid)
            elif "monitor" in cmd and "serve" in cmd:
                service += [pid, *descendants(pid)]
    return service, mosquitto


def postgres_processes() -> list[int]:
    """The PostgreSQL server's processes on this machine (the benchmark's database is one of
    its databases: the server's CPU is the store's cost of the messages)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
    return pids


class Subscriber:
    """`mosquitto_sub` on the same topics, counting what it prints and when."""

    def __init__(self, port: int, password: str, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.proc = subprocess.Popen(
            [
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-u",
                SERVICE_USER,
                "-P",
                password,
                "-q",
                "1",
                "-i",
                "bench-sub",
                "-t",
                "vigil/v1/+/location",
                "-C",
                str(expected),
            ],
            stdout=subprocess.PIPE,
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            self.count += 1
            self.last = now

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=50_000)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument(
        "--ingest-processes",
        type=int,
        default=None,
        help="VIGIL_INGEST_PROCESSES of the service; unset, the service's default",
    )
    args = ap.parse_args()

    env = processes_env(args.ingest_processes)
    with rig(args.db, plain_devices=args.devices, alerting_devices=0, env_extra=env) as r:
        # The service account is let in only on its own listener (docs/security.md).
        sub = Subscriber(r.service_port, r.service_password, args.messages)
        time.sleep(0.5)  # subscribed before the first message
        share = args.messages // args.publishers
        counts = [share] * args.publishers
        counts[-1] += args.messages - share * args.publishers
        go = multiprocessing.Event()
        sent_cpu = [multiprocessing.Value("d", 0.0) for _ in counts]
        procs = [
            multiprocessing.Process(
                target=publish,
                args=(
                    r.service_port,
                    r.service_password,
                    args.devices,
                    sum(counts[:i]),
                    n,
                    i,
                    go,
                    sent_cpu[i],
                ),
            )
            for i, n in enumerate(counts)
        ]
        for p in procs:
            p.start()
        time.sleep(2 + args.messages / 200_000)  # each has encoded its share and connected
        service, mosquitto = our_processes()
        # The load: mosquitto_sub and this process, which reads its output; the publishers
        # report their own.
        parts = {
            "vigil serve": service,
            "Mosquitto": mosquitto,
            "the load": [os.getpid(), sub.proc.pid],
        }
        if args.db == "postgresql":
            parts["PostgreSQL"] = postgres_processes()
        cpu_before = {name: cpu_s(pids) for name, pids in parts.items()}
        busy_before = machine_busy()
        start = time.perf_counter()
        go.set()
        for p in procs:
            p.join()
        published = time.perf_counter() - start
        if any(p.exitcode for p in procs):
            raise SystemExit("a publisher failed: see its error above")

        stored, stored_at = 0, start
        deadline = start + args.timeout
        while time.perf_counter() < deadline:
            with r.store.session() as db:
                n = db.scalar(select(func.count()).select_from(LocationFix)) or 0
            if n != stored:
                stored, stored_at = n, time.perf_counter()
            if stored >= args.messages:
                break
            time.sleep(0.1)
        if "PostgreSQL" in parts:
            # Backends opened during the run count too (from their start: it is within the run).
            parts["PostgreSQL"] = sorted({*parts["PostgreSQL"], *postgres_processes()})
        cpu = {name: cpu_s(pids) - cpu_before[name] for name, pids in parts.items()}
        cpu["the load"] += sum(v.value for v in sent_cpu)
        busy, total = (a - b for a, b in zip(machine_busy(), busy_before, strict=True))
        sub_done = time.perf_counter() + 10
        while sub.count < args.messages and time.perf_counter() < sub_done:
            time.sleep(0.1)
        sub.stop()

    stored_rate = stored / (stored_at - start)
    sub_rate = sub.count / ((sub.last or start) - start) if sub.count else 0.0
    print(
        f"database={args.db} devices={args.devices} publishers={args.publishers}"
        f" ingest processes={'default' if args.ingest_processes is None else args.ingest_processes}"
    )
    print(f"messages sent={args.messages} in {published:.1f} s ({args.messages / published:.0f}/s)")
    print(f"stored={stored} missing={args.messages - stored} stored rate={stored_rate:.0f} msg/s")
    print(f"mosquitto_sub received={sub.count} rate={sub_rate:.0f} msg/s")
    if sub_rate:
        print(
            f"stored rate / mosquitto_sub rate = {stored_rate / sub_rate:.2f}"
            " (issue 18: at least 0.5)"
        )
    # CPU per message says what a core could do alone; on a busy machine a rate cannot.
    per = {name: s / max(stored, 1) * 1e6 for name, s in cpu.items()}
    print(
        "CPU per stored message: "
        + ", ".join(f"{name} {us:.0f} us" for name, us in per.items())
        + f"; all of the machine {busy / max(stored, 1) * 1e6:.0f} us"
        + f" ({busy / total * 100:.0f} % busy)"
    )
    print(
        f"vigil serve / Mosquitto CPU per message = {per['vigil serve'] / per['Mosquitto']:.1f}"
        " (issue 18: at most 2, and at most 40 us)"
    )
    # What a machine with more cores would give: a core per telemetry process, at this cost.
    print(
        f"one core of vigil serve at this cost: {1e6 / per['vigil serve']:,.0f} msg/s;"
        f" the rest of the pipeline takes {sum(per.values()) - per['vigil serve']:.0f} us"
        " a message besides"
    )


if __name__ == "__main__":
    main()
