"""Alert latency under a full fleet's load: from a device's publish of a red alert to
(a) `alert_received` back at the device, (b) the alert on an operator's websocket and
(c) the first SMS request at a fake Twilio API.

Usage: python -m bench.alert_latency [--db sqlite|postgresql] [--devices 10000]
           [--badges 100] [--location-every 10] [--alert-rate 5] [--seconds 200]

`--devices` simulated devices are connected, each publishing a location every
`--location-every` seconds and a heartbeat every minute: all but `--badges` of them through
device_sim's command in a process of its own, the badges on a shared network loop in this
process, which raise red alerts at `--alert-rate` per second between them. The escalation
policy texts the team's backup at once, through the real twilio library, to a local fake of
Twilio's REST API; an operator's console is a websocket client of the hub. Prints p50, p99 and
max of each, and the locations stored during the run.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from bench.fleet import add_devices, raise_open_files_limit, simulator, write_credentials
from bench.harness import fresh_store, percentile, processes_env, serving
from device_sim.credentials import DeviceCredentials
from device_sim.device import SimDevice
from device_sim.fleet import Fleet
from escalation import policies
from monitor import broker
from monitor.alerts.models import Alert
from monitor.db import Store
from monitor.devices.models import LocationFix
from monitor.devices.service import add_device
from monitor.orgs.service import add_worker
from monitor.users.models import Role
from monitor.users.service import add_user
from tests.fake_twilio import FakeTwilio

BACKUP = "+15005550101"
POLICY = f"""
contacts:
  - {{name: Bench backup, phone: "{BACKUP}", backup_for: [Bench]}}
policies:
  - name: Bench
    steps:
      - {{channel: console}}
      - {{channel: sms, to: [backup]}}
"""
OPERATOR, PASSWORD = "bench-operator", "benchmark password"


class Console:
    """An operator's console: a websocket client of the hub noting when each new alert
    (by its device's alert id) first arrives, on this process's clock."""

    def __init__(self, http_port: int, token: str) -> None:
        self.seen: dict[str, float] = {}
        self.events = 0
        self._ws = ws_connect(f"ws://127.0.0.1:{http_port}/ws", max_size=None)
        self._ws.send(json.dumps({"token": token}))  # signs in: never in the URL
        self._thread = threading.Thread(target=self._run, name="bench-console", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for text in self._ws:
                at = time.time()
                self.events += 1
                event = json.loads(text)
                alert = event.get("alert")
                if event.get("kind") == "alert.raised" and isinstance(alert, dict):
                    self.seen.setdefault(str(alert.get("device_alert_id")), at)
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self._ws.close()
        self._thread.join(5)


def register(store: Store, badges: int, load: int) -> tuple[dict[str, str], dict[str, str]]:
    """Badges `alert-NNN` with workers in team Bench, and load devices `load-NNNNN`."""
    alerting: dict[str, str] = {}
    with store.begin() as db:
        for i in range(badges):
            w = add_worker(
                db, name=f"Worker {i}", cancel_pin="1234", duress_pin="9876", team="Bench"
            )
            d, s = add_device(db, f"alert-{i:03d}", worker_id=w.id)
            alerting[d.id] = s
        add_user(db, OPERATOR, PASSWORD, Role.OPERATOR)
    with store.begin() as db:
        policies.replace_all(db, policies.parse_file(POLICY))
    ids = [f"load-{i:05d}" for i in range(load)]
    secret = add_devices(store, ids)
    return alerting, {d: secret for d in ids}


def _epoch(at: datetime) -> float:
    # SQLite gives the datetime back without its zone; it was written as UTC.
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def summary(name: str, values: list[float], total: int) -> str:
    return (
        f"{name} ms: p50={percentile(values, 50):.1f} p99={percentile(values, 99):.1f} "
        f"max={max(values, default=0):.1f} ({len(values)} of {total})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=10_000, help="connected devices in all")
    ap.add_argument("--badges", type=int, default=100, help="of which raise alerts")
    ap.add_argument("--location-every", type=float, default=10.0, metavar="S")
    ap.add_argument("--heartbeat-every", type=float, default=60.0, metavar="S")
    ap.add_argument("--alert-rate", type=float, default=5.0, help="alerts per second")
    ap.add_argument("--seconds", type=float, default=200.0, help="how long alerts are raised")
    ap.add_argument("--processes", type=int, default=1, help="device_sim processes for the load")
    ap.add_argument("--dump", type=Path, help="write each alert's three latencies to this CSV")
    ap.add_argument(
        "--ingest-processes",
        type=int,
        default=None,
        help="VIGIL_INGEST_PROCESSES of the service (PostgreSQL): telemetry off the alert path;"
        " unset, the service's default",
    )
    args = ap.parse_args()
    raise_open_files_limit()

    twilio = FakeTwilio().start()
    env = {
        "VIGIL_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "VIGIL_TWILIO_AUTH_TOKEN": twilio.auth_token,
        "VIGIL_TWILIO_FROM_NUMBER": "+15005550006",
        "VIGIL_TWILIO_API_BASE": twilio.url,
        **processes_env(args.ingest_processes),
    }
    with fresh_store(args.db) as fresh:
        workdir, url, store = fresh.workdir, fresh.url, fresh.store
        alerting, load = register(store, args.badges, args.devices - args.badges)
        creds = write_credentials(workdir / "load.json", load)
        with serving(store, workdir, url, env) as served:
            if not broker.wait_for_port("127.0.0.1", served.http_port, 60):
                raise RuntimeError((workdir / "serve.log").read_text())
            result = run(
                args,
                store,
                served.broker_port,
                served.http_port,
                alerting,
                creds,
                twilio,
                workdir,
            )
    twilio.stop()
    print(result)


def run(
    args: argparse.Namespace,
    store: Store,
    mqtt_port: int,
    http_port: int,
    alerting: dict[str, str],
    load_creds: Path,
    twilio: FakeTwilio,
    workdir: Path,
) -> str:
    with simulator(
        load_creds,
        mqtt_port,
        workdir,
        processes=args.processes,
        location_every=args.location_every,
        heartbeat_every=args.heartbeat_every,
    ):
        badges = Fleet(
            [DeviceCredentials(d, s, "1234", "9876") for d, s in alerting.items()],
            "127.0.0.1",
            mqtt_port,
            location_every_s=args.location_every,
            heartbeat_every_s=args.heartbeat_every,
            alert_rate_per_hour=0,
            visit_rate_per_hour=0,
            seed=2,
            # A resend would be a second copy of the same publish: only after a long silence.
            alert_retry_s=60,
        )
        badges.start()
        token = httpx.post(
            f"http://127.0.0.1:{http_port}/api/v1/auth/token",
            data={"username": OPERATOR, "password": PASSWORD},
        ).json()["access_token"]
        console = Console(http_port, token)
        with store.session() as db:
            locs_before = db.scalar(select(func.count()).select_from(LocationFix)) or 0
        locs_from = time.perf_counter()
        time.sleep(5)  # the load settled before the first alert
        load_before = loadavg()

        raised: list[tuple[SimDevice, str, float, float]] = []
        devices = badges.devices
        interval = 1.0 / args.alert_rate
        started = time.perf_counter()
        next_at = started
        k = 0
        while next_at < started + args.seconds:
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            d = devices[k % len(devices)]
            t0, m0 = time.time(), time.monotonic()
            raised.append((d, d.raise_alert(type="red", trigger="button"), t0, m0))
            k += 1
            next_at += interval
        ran_s = time.perf_counter() - started
        time.sleep(5)  # stragglers
        console.close()
        badges.stop()
        with store.session() as db:
            rows = db.execute(select(Alert.device_alert_id, Alert.id, Alert.raised_at)).all()
            stored_alerts = db.scalar(select(func.count()).select_from(Alert))
            locs = (db.scalar(select(func.count()).select_from(LocationFix)) or 0) - locs_before
        pks = {a: pk for a, pk, _ in rows}
        # When the service began handling each alert (the row's raised_at, its clock).
        taken = {a: _epoch(at) for a, _, at in rows}
        locs_s = time.perf_counter() - locs_from

    answered: dict[str, float] = {}
    for d, alert_id, t0, _ in raised:
        got = [
            c
            for c in d.commands
            if c.type == "alert_received" and c.payload.get("alert_id") == alert_id
        ]
        if got:
            answered[alert_id] = (got[0].received_at - t0) * 1000
    received = list(answered.values())
    on_console = [(console.seen[a] - t0) * 1000 for _, a, t0, _ in raised if a in console.seen]
    # The SMS names its alert: "VIGIL RED ALERT #<id>: ...". The fake stamps arrivals with
    # time.monotonic(), the clock m0 was read from.
    sms_at: dict[int, float] = {}
    for m in twilio.messages:
        found = re.search(r"#(\d+):", m.param("Body") or "")
        if found:
            sms_at.setdefault(int(found[1]), m.at)
    to_sms = [(sms_at[pks[a]] - m0) * 1000 for _, a, _, m0 in raised if pks.get(a) in sms_at]
    to_service = [(taken[a] - t0) * 1000 for _, a, t0, _ in raised if a in taken]
    n = len(raised)
    if args.dump is not None:
        first = raised[0][2] if raised else 0.0
        with args.dump.open("w") as out:
            out.write("raised_s,alert_received_ms,console_ms,first_sms_ms,handled_ms\n")
            for _, a, t0, m0 in raised:
                cells = [
                    answered.get(a),
                    (console.seen[a] - t0) * 1000 if a in console.seen else None,
                    (sms_at[pks[a]] - m0) * 1000 if pks.get(a) in sms_at else None,
                    (taken[a] - t0) * 1000 if a in taken else None,
                ]
                out.write(
                    f"{t0 - first:.3f},"
                    + ",".join("" if c is None else f"{c:.1f}" for c in cells)
                    + "\n"
                )
    return "\n".join(
        [
            f"database={args.db} devices={args.devices} (badges {args.badges}) "
            f"location_every={args.location_every:g}s heartbeat_every={args.heartbeat_every:g}s "
            f"alert_rate={args.alert_rate:g}/s seconds={args.seconds:g} "
            "ingest_processes="
            + ("default" if args.ingest_processes is None else str(args.ingest_processes)),
            f"alerts raised={n} in {ran_s:.1f} s, stored={stored_alerts}",
            summary("publish->alert_received", received, n),
            summary("publish->console websocket", on_console, n),
            summary("publish->first SMS request", to_sms, n),
            summary("publish->the service begins handling it (raised_at)", to_service, n),
            f"locations stored during the run: {locs} ({locs / locs_s:.0f}/s over {locs_s:.0f} s)",
            f"load average before and after (the machine is shared): {load_before} / {loadavg()}",
        ]
    )


if __name__ == "__main__":
    main()
