"""The worker app's relay: MQTT over WebSocket through `vigil serve`'s /mqtt, against MQTT
straight to the broker's TCP listener for devices, in one run.

One paho client (the same device, the same messages) publishes `--messages` QoS 1 messages
of a location's size over TCP, then as many over websockets through the relay, `--rounds`
times in turn. A round's rate is its messages over the time until the broker has
acknowledged the last one. They go to a topic the device may not publish to, so the broker
acknowledges and drops them: the service stores nothing, and its CPU time over a round is
the relay's (through the relay) or its idle work (over TCP). The relay reads no packet, so
what the topic is changes nothing of its work. This process's CPU time, paho's, is printed
too: the client pays for the WebSocket framing as well.

Browsers offer permessage-deflate, which the service accepts and paho does not ask for: a
third kind of round (`deflate`) sends the same packets through the relay over a compressed
WebSocket (the `websockets` client, one message per packet, 100 awaiting their PUBACK at
most), for the service's CPU per message as a browser's app costs it.

    python -m bench.relay_cost [--messages 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from bench.flood import connect_packet, publish_packet
from bench.harness import serving
from monitor import broker
from monitor.db import Store
from monitor.devices.service import add_device
from monitor.migrate import upgrade

DEVICE = "relay-bench"


@dataclass
class Round:
    transport: str
    rate: float  # messages a second, until the last PUBACK
    cpu_per_message_us: float  # of `vigil serve`, over the same time
    client_cpu_per_message_us: float  # of this process (paho)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(transport: str, secret: str) -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=DEVICE,
        protocol=mqtt.MQTTv311,
        transport="websockets" if transport == "relay" else "tcp",
    )
    if transport == "relay":
        c.ws_set_options(path="/mqtt")
    c.username_pw_set(DEVICE, secret)
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    return c


def message(ts: int) -> bytes:
    loc = {"lat": 51.5072, "lon": -0.1276, "acc": 5}
    return json.dumps({"v": 1, "ts": ts, "loc": loc, "batt": 80}).encode()


MESSAGE_BYTES = len(message(1_765_000_000_000))


def deflate_round(port: int, secret: str, count: int, ts: int, pid: int) -> Round:
    """The same packets through the relay over a WebSocket with permessage-deflate."""
    topic = f"vigil/v1/{DEVICE}/bench"
    packets = [publish_packet(topic, i % 65535 + 1, message(ts + i)) for i in range(count)]
    with ws_connect(
        f"ws://127.0.0.1:{port}/mqtt",
        subprotocols=[Subprotocol("mqtt")],
        compression="deflate",
        open_timeout=10,
    ) as ws:
        extensions = [e.name for e in ws.protocol.extensions]
        assert extensions == ["permessage-deflate"], f"not compressed: {extensions}"
        ws.send(connect_packet(DEVICE, DEVICE, secret))
        connack = ws.recv(timeout=10)
        assert isinstance(connack, bytes) and connack[:2] == b"\x20\x02" and connack[3] == 0
        cpu0, own0 = cpu_seconds(pid), time.process_time()
        t0 = time.perf_counter()
        acked = sent = 0
        while acked < count:
            while sent < count and sent - acked < 100:
                ws.send(packets[sent])
                sent += 1
            reply = ws.recv(timeout=60)
            acked += len(reply) // 4  # every packet back is a 4-byte PUBACK
        elapsed = time.perf_counter() - t0
        cpu, own = cpu_seconds(pid) - cpu0, time.process_time() - own0
    return Round("deflate", count / elapsed, cpu / count * 1e6, own / count * 1e6)


def one_round(transport: str, port: int, secret: str, count: int, ts: int, pid: int) -> Round:
    if transport == "deflate":
        return deflate_round(port, secret, count, ts, pid)
    c = client(transport, secret)
    answered: queue.Queue[object] = queue.Queue()
    c.on_connect = lambda _c, _u, _f, rc, _p: answered.put(rc)
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    answered.get(timeout=10)
    payloads = [message(ts + i) for i in range(count)]
    topic = f"vigil/v1/{DEVICE}/bench"  # not in the ACL: acknowledged, then dropped
    cpu0, own0 = cpu_seconds(pid), time.process_time()
    t0 = time.perf_counter()
    sent = [c.publish(topic, p, qos=1) for p in payloads]
    for info in sent:
        info.wait_for_publish(60)
    elapsed = time.perf_counter() - t0
    cpu, own = cpu_seconds(pid) - cpu0, time.process_time() - own0
    c.loop_stop()
    c.disconnect()
    return Round(transport, count / elapsed, cpu / count * 1e6, own / count * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    # The relay touches no database, and no message here reaches it: SQLite.
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        store = Store(url)
        upgrade(store)
        with store.begin() as db:
            _, secret = add_device(db, DEVICE, worker_id=None)
        with serving(store, Path(tmp), url) as served:
            if not broker.wait_for_port("127.0.0.1", served.http_port, 60):
                raise RuntimeError((Path(tmp) / "serve.log").read_text())
            time.sleep(1.0)  # MQTT sessions up
            pid = served.proc.pid
            ports = {
                "tcp": served.broker_port,
                "relay": served.http_port,
                "deflate": served.http_port,
            }
            ts = int(time.time() * 1000)
            # A short round of each first: imports, connections and caches warmed.
            for transport, port in ports.items():
                one_round(transport, port, secret, 200, ts, pid)
            rounds = [
                one_round(transport, port, secret, args.messages, ts, pid)
                for _ in range(args.rounds)
                for transport, port in ports.items()
            ]
        store.dispose()

    def median(transport: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in rounds if r.transport == transport)

    print(f"{args.messages} QoS 1 messages of {MESSAGE_BYTES} bytes, one client, in turn:")
    for r in rounds:
        print(
            f"  {r.transport:5}  {r.rate:6.0f} msg/s   CPU per message: service "
            f"{r.cpu_per_message_us:4.0f} µs, client {r.client_cpu_per_message_us:4.0f} µs"
        )
    tcp, relay = median("tcp", "rate"), median("relay", "rate")
    idle, relayed = median("tcp", "cpu_per_message_us"), median("relay", "cpu_per_message_us")
    print(f"median: TCP {tcp:.0f} msg/s, relay {relay:.0f} msg/s, relay/TCP {relay / tcp:.2f}")
    deflated = median("deflate", "cpu_per_message_us")
    print(
        f"service CPU per relayed message: {relayed:.0f} µs, {deflated:.0f} µs with "
        f"permessage-deflate ({idle:.0f} µs of the same time's idle work over TCP)"
    )


if __name__ == "__main__":
    main()
