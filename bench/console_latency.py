"""Console latency: device publish -> the alert's row in a headless browser's DOM, while the
console holds 500 active alerts and receives 50 updates a second.

Usage: python -m bench.console_latency [--db sqlite|postgresql] [--active 500]
           [--updates 50] [--seconds 60]

Updates are operator notes posted through the REST API (each one is an event pushed to every
console). New alerts are published every 0.5 s by the service account on devices' topics; the
page notes when each one's row appears (a MutationObserver), on the same clock.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import threading
import time
import uuid

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import sync_playwright
from sqlalchemy import func, select

from bench.harness import SERVICE_USER, percentile, rig
from monitor.alerts.models import Alert
from monitor.users.models import Role
from monitor.users.service import add_user

PASSWORD = "benchmark password"
POSTERS = 4
WATCH = """() => {
  window.__seen = {};
  // Rows added (or moved) only: a scan of every row on each batch of mutations (the ages
  // tick every second) would be the probe's own load on the page.
  new MutationObserver((records) => {
    const t = Date.now();
    for (const r of records) for (const tr of r.addedNodes) {
      const id = tr.dataset && tr.dataset.deviceAlert;
      if (id && !(id in window.__seen)) window.__seen[id] = t;
    }
  }).observe(document.querySelector('#queue tbody'), {childList: true});
}"""
# Installed before the console's own script: when each alert.raised message for a timed
# alert reached the page (before the console handles it), with the service's times in it.
# A regex rather than a second JSON.parse keeps the probe's own cost out of the figure.
ARRIVALS = """
window.__arrived = {};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (e) => {
      const t = Date.now();
      if (typeof e.data !== 'string' || e.data.indexOf('"alert.raised"') < 0) return;
      const id = /"device_alert_id": ?"(fg-[^"]+)"/.exec(e.data);
      if (!id) return;
      const at = /"at": ?"([^"]+)"/.exec(e.data);
      const raised = /"raised_at": ?"([^"]+)"/.exec(e.data);
      window.__arrived[id[1]] = [t, at && Date.parse(at[1]), raised && Date.parse(raised[1])];
    });
  }
};
"""


def publisher(port: int, password: str) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-pub")
    c.username_pw_set(SERVICE_USER, password)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def alert(c: mqtt.Client, device: str, alert_id: str, kind: str = "red") -> float:
    t0 = time.time()
    body = {
        "v": 1,
        "ts": int(t0 * 1000),
        "id": alert_id,
        "type": kind,
        "loc": {"lat": 51.5, "lon": -0.12, "acc": 10},
    }
    c.publish(f"vigil/v1/{device}/alert", json.dumps(body), qos=1)
    return t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--active", type=int, default=500)
    ap.add_argument("--updates", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()

    with rig(args.db, plain_devices=0, alerting_devices=50) as r:
        with r.store.begin() as db:
            add_user(db, "bench", PASSWORD, Role.OPERATOR)
        devices = sorted(d for d in r.credentials if d.startswith("alert-"))
        pub = publisher(r.service_port, r.service_password)
        for i in range(args.active):
            alert(pub, devices[i % len(devices)], f"bg-{i:05d}-{uuid.uuid4().hex[:6]}", "test")
        deadline = time.time() + 120
        while time.time() < deadline:
            with r.store.session() as db:
                if (db.scalar(select(func.count()).select_from(Alert)) or 0) >= args.active:
                    break
            time.sleep(0.5)
        base = f"http://127.0.0.1:{r.http_port}"
        http = httpx.Client(base_url=base, timeout=10)
        token = http.post(
            "/api/v1/auth/token", data={"username": "bench", "password": PASSWORD}
        ).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        ids = [a["id"] for a in http.get("/api/v1/alerts?limit=1000", headers=headers).json()]

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.add_init_script(ARRIVALS)
            page.goto(base + "/")
            page.fill("input[name=username]", "bench")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_function(
                # A function, not a string: the console's content policy forbids eval.
                "n => document.querySelectorAll('#queue tbody tr').length >= n",
                arg=args.active,
                timeout=60_000,
            )
            page.evaluate(WATCH)

            stop = threading.Event()
            posted = [0] * POSTERS

            def updates(k: int) -> None:
                # Notes from other operators, spread over the active alerts. Several posters:
                # one, waiting for each answer, falls short of the rate on PostgreSQL.
                interval = POSTERS / args.updates
                nxt = time.perf_counter() + k * interval / POSTERS
                with httpx.Client(base_url=base, timeout=10, headers=headers) as h:
                    for alert_pk in itertools.cycle(ids[k::POSTERS]):
                        if stop.is_set():
                            return
                        h.post(f"/api/v1/alerts/{alert_pk}/notes", json={"text": "update"})
                        posted[k] += 1
                        nxt += interval
                        time.sleep(max(0.0, nxt - time.perf_counter()))

            workers = [
                threading.Thread(target=updates, args=(k,), daemon=True) for k in range(POSTERS)
            ]
            for worker in workers:
                worker.start()
            sent: dict[str, float] = {}
            t_end = time.time() + args.seconds
            n = 0
            while time.time() < t_end:
                alert_id = f"fg-{n:05d}-{uuid.uuid4().hex[:6]}"
                sent[alert_id] = alert(pub, devices[n % len(devices)], alert_id)
                n += 1
                time.sleep(0.5)
            time.sleep(3)
            stop.set()
            for worker in workers:
                worker.join(15)
            seen: dict[str, float] = page.evaluate("() => window.__seen")
            arrived: dict[str, list[float | None]] = page.evaluate("() => window.__arrived")
            browser.close()
        pub.loop_stop()
        latencies = [seen[k] - t0 * 1000 for k, t0 in sent.items() if k in seen]
        rate = sum(posted) / (args.seconds + 3)
        print(
            f"database={args.db} active_alerts={args.active} updates/s target={args.updates}"
            f" achieved={rate:.1f} seconds={args.seconds}"
        )
        print(f"alerts published={len(sent)} rows seen={len(latencies)}")
        print(
            f"publish->row in DOM ms: p50={percentile(latencies, 50):.1f} "
            f"p99={percentile(latencies, 99):.1f} max={max(latencies, default=0):.1f}"
        )
        print_stages(sent, arrived, seen)
        print(f"load average after: {os.getloadavg()}")


def print_stages(
    sent: dict[str, float], arrived: dict[str, list[float | None]], seen: dict[str, float]
) -> None:
    """Where each alert's time went: publish -> the service's raised_at (broker and
    ingest's receipt), -> the event's time (stored, the event made before the commit),
    -> the message handed to the page (commit, bus, hub, websocket), -> the row."""
    stages: dict[str, list[float]] = {
        "publish->raised_at": [],
        "raised_at->event": [],
        "event->page": [],
        "page->row": [],
    }
    for k, t0 in sent.items():
        if k not in arrived or k not in seen:
            continue
        page_at, event_at, raised_at = arrived[k]
        if event_at is None or raised_at is None or page_at is None:
            continue
        stages["publish->raised_at"].append(raised_at - t0 * 1000)
        stages["raised_at->event"].append(event_at - raised_at)
        stages["event->page"].append(page_at - event_at)
        stages["page->row"].append(seen[k] - page_at)
    for name, values in stages.items():
        print(
            f"  {name:<20} p50={percentile(values, 50):6.1f} p99={percentile(values, 99):6.1f}"
            f" max={max(values, default=0):6.1f}"
        )


if __name__ == "__main__":
    main()
