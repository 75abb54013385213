"""Alert latency under location load: device publish -> (a) `alert_received` back at the
device, and (c) the first SMS request at a fake Twilio API.

Usage: python -m bench.alert_latency [--db sqlite|postgresql] [--devices 1000]
           [--loc-rate 500] [--alert-rate 5] [--seconds 60]

Background: `--devices` registered devices whose locations are published at `--loc-rate`
messages/s in total (QoS 1). Foreground: 20 badges raise red alerts at `--alert-rate` per
second between them; the escalation policy texts the team's backup staff at once, through
the real twilio library, to a local fake of Twilio's REST API. Prints p50/p99/max of both,
and how many locations were stored.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from bench.harness import SERVICE_USER, percentile, rig
from device_sim.device import SimDevice
from monitor.alerts.models import Alert
from monitor.devices.models import LocationFix
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


def location_load(
    port: int, password: str, devices: int, rate: float, stop: threading.Event, sent: list[int]
) -> None:
    # One connection publishes for every device (the service account may), so the load
    # generator stays light next to the service under test.
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-load")
    c.username_pw_set(SERVICE_USER, password)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    interval = 1.0 / rate
    n = 0
    next_at = time.perf_counter()
    while not stop.is_set():
        dev = f"load-{n % devices:05d}"
        body = {
            "v": 1,
            "ts": int(time.time() * 1000),
            "loc": {"lat": 51.5 + (n % 100) * 1e-4, "lon": -0.12, "acc": 5, "src": "gps"},
            "batt": 80,
        }
        c.publish(f"vigil/v1/{dev}/location", json.dumps(body), qos=1)
        n += 1
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    sent.append(n)
    c.loop_stop()
    c.disconnect()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--loc-rate", type=float, default=500)
    ap.add_argument("--alert-rate", type=float, default=5)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()

    twilio = FakeTwilio().start()
    env = {
        "VIGIL_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "VIGIL_TWILIO_AUTH_TOKEN": twilio.auth_token,
        "VIGIL_TWILIO_FROM_NUMBER": "+15005550006",
        "VIGIL_TWILIO_API_BASE": twilio.url,
    }
    with rig(
        args.db, plain_devices=args.devices, alerting_devices=20, env_extra=env, policy_yaml=POLICY
    ) as r:
        badges = []
        for i in range(20):
            d = SimDevice(
                device_id=f"alert-{i:03d}",
                secret=r.credentials[f"alert-{i:03d}"],
                port=r.broker_port,
                alert_retry_s=30,
            )
            d.connect(timeout=10)
            badges.append(d)
        stop = threading.Event()
        sent: list[int] = []
        loader = threading.Thread(
            target=location_load,
            args=(r.broker_port, r.service_password, args.devices, args.loc_rate, stop, sent),
        )
        loader.start()
        time.sleep(2)  # load running before the first alert

        raised: list[tuple[SimDevice, str, float]] = []
        t_end = time.perf_counter() + args.seconds
        k = 0
        while time.perf_counter() < t_end:
            d = badges[k % len(badges)]
            t0, m0 = time.time(), time.monotonic()
            raised.append((d, d.raise_alert(type="red", trigger="button"), t0, m0))
            k += 1
            time.sleep(1.0 / args.alert_rate)
        stop.set()
        loader.join()
        time.sleep(3)

        latencies = []
        missing = 0
        with r.store.session() as db:
            pks = dict(db.execute(select(Alert.device_alert_id, Alert.id)).tuples().all())
        # The SMS names its alert: "VIGIL RED ALERT #<id>: ...". The fake stamps arrivals
        # with time.monotonic(), the clock m0 was read from.
        sms_at = {}
        for m in twilio.messages:
            found = re.search(r"#(\d+):", m.param("Body") or "")
            if found:
                sms_at.setdefault(int(found[1]), m.at)
        to_sms = [
            (sms_at[pks[alert_id]] - m0) * 1000
            for _, alert_id, _, m0 in raised
            if pks.get(alert_id) in sms_at
        ]
        for d, alert_id, t0, _ in raised:
            got = [
                c
                for c in d.commands
                if c.type == "alert_received" and c.payload.get("alert_id") == alert_id
            ]
            if got:
                latencies.append((got[0].received_at - t0) * 1000)
            else:
                missing += 1
        with r.store.session() as db:
            stored_alerts = db.scalar(select(func.count()).select_from(Alert))
            stored_locs = db.scalar(select(func.count()).select_from(LocationFix))
        for d in badges:
            d.disconnect()
        print(
            f"database={args.db} devices={args.devices} loc_rate={args.loc_rate}/s "
            f"alert_rate={args.alert_rate}/s seconds={args.seconds}"
        )
        print(f"alerts raised={len(raised)} stored={stored_alerts} unanswered={missing}")
        print(
            f"publish->alert_received ms: p50={percentile(latencies, 50):.1f} "
            f"p99={percentile(latencies, 99):.1f} max={max(latencies, default=0):.1f}"
        )
        print(
            f"publish->first SMS request ms: p50={percentile(to_sms, 50):.1f} "
            f"p99={percentile(to_sms, 99):.1f} max={max(to_sms, default=0):.1f} "
            f"(SMS for {len(to_sms)} of {len(raised)} alerts)"
        )
        print(f"locations sent={sent[0]} stored={stored_locs} (alert copies stored too)")
    twilio.stop()


if __name__ == "__main__":
    main()
