"""Location ingest: how fast `vigil serve` stores location messages, against how fast the
same broker delivers the same messages to `mosquitto_sub`, in one run.

Publishers send a fixed number of QoS 1 locations as fast as the broker takes them; the run
ends when the database holds every one (or after a timeout, counting what is missing).

    python -m bench.ingest_rate --db postgresql --messages 60000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from bench.harness import SERVICE_USER, rig
from monitor.devices.models import LocationFix


def publish(port: int, password: str, devices: int, first: int, count: int, index: int) -> None:
    """One publisher process: `count` locations, waiting for every PUBACK."""
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{index}"
    )
    c.username_pw_set(SERVICE_USER, password)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    last = None
    for n in range(first, first + count):
        body = {
            "v": 1,
            "ts": int(time.time() * 1000),
            "loc": {"lat": 51.5 + (n % 100) * 1e-4, "lon": -0.12, "acc": 5, "src": "gps"},
            "batt": 80,
        }
        last = c.publish(f"vigil/v1/load-{n % devices:05d}/location", json.dumps(body), qos=1)
    if last is not None:
        last.wait_for_publish(120)
    c.loop_stop()
    c.disconnect()


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
    args = ap.parse_args()

    with rig(args.db, plain_devices=args.devices, alerting_devices=0) as r:
        sub = Subscriber(r.broker_port, r.service_password, args.messages)
        time.sleep(0.5)  # subscribed before the first message
        share = args.messages // args.publishers
        counts = [share] * args.publishers
        counts[-1] += args.messages - share * args.publishers
        start = time.perf_counter()
        procs = [
            multiprocessing.Process(
                target=publish,
                args=(r.broker_port, r.service_password, args.devices, sum(counts[:i]), n, i),
            )
            for i, n in enumerate(counts)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        published = time.perf_counter() - start

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
        sub_done = time.perf_counter() + 10
        while sub.count < args.messages and time.perf_counter() < sub_done:
            time.sleep(0.1)
        sub.stop()

    stored_rate = stored / (stored_at - start)
    sub_rate = sub.count / ((sub.last or start) - start) if sub.count else 0.0
    print(f"database={args.db} devices={args.devices} publishers={args.publishers}")
    print(f"messages sent={args.messages} in {published:.1f} s ({args.messages / published:.0f}/s)")
    print(f"stored={stored} missing={args.messages - stored} stored rate={stored_rate:.0f} msg/s")
    print(f"mosquitto_sub received={sub.count} rate={sub_rate:.0f} msg/s")
    if sub_rate:
        print(f"stored rate / mosquitto_sub rate = {stored_rate / sub_rate:.2f}")


if __name__ == "__main__":
    main()
