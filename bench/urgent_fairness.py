"""Fairness on the urgent path: one device floods, another device's alerts must not wait.

Usage: python -m bench.urgent_fairness [--db sqlite|postgresql] [--mode invalid|pins|alerts|all]
           [--seconds 10] [--every 0.1]

Device `alert-001` (the victim) raises a red alert every `--every` seconds for the whole run
and times each from its publish to the `alert_received` it gets back. Device `alert-000`
(the flooder) is quiet for the first `--seconds`, floods for the next `--seconds`, then is
quiet again for `--seconds`. The floods, each as an attacker or a broken device would:

- `invalid`: `{"v":1}` on its alert topic at QoS 0, in a tight loop;
- `pins`: alert cancels with a wrong PIN at QoS 1, 200 a second, half for its own open alert
  and half for alert ids that do not exist;
- `alerts`: valid red alerts with new ids at QoS 1, 480 a second.

Prints the victim's p50, p99 and max before, during and after the flood, and the difference
of each phase's p99 from the p99 before it (the goal: within 50 ms).
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.flood import _length, _string, connect_packet, publish_packet
from bench.harness import percentile, rig

VICTIM, FLOODER = "alert-001", "alert-000"


def now_ms() -> int:
    return int(time.time() * 1000)


def qos0_packet(topic: str, payload: bytes) -> bytes:
    body = _string(topic) + payload
    return bytes([0x30]) + _length(len(body)) + body


class Victim:
    """A device raising alerts and timing each to its `alert_received`."""

    def __init__(self, port: int, secret: str) -> None:
        self.sent: dict[str, tuple[float, str]] = {}  # alert id -> (perf time, phase)
        self.latency: dict[str, list[float]] = {}
        self.phase = "before"
        self._lock = threading.Lock()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=VICTIM)
        c.username_pw_set(VICTIM, secret)
        c.on_message = self._message
        c.connect("127.0.0.1", port)
        c.subscribe(f"vigil/v1/{VICTIM}/cmd", qos=1)
        c.loop_start()
        self.client = c

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        cmd = json.loads(msg.payload)
        if cmd.get("type") != "alert_received":
            return
        with self._lock:
            sent = self.sent.pop(cmd["alert_id"], None)
            if sent is not None:
                self.latency.setdefault(sent[1], []).append((time.perf_counter() - sent[0]) * 1000)

    def alert(self) -> None:
        alert_id = uuid.uuid4().hex
        payload = {"v": 1, "ts": now_ms(), "id": alert_id, "type": "test", "trigger": "button"}
        with self._lock:
            self.sent[alert_id] = (time.perf_counter(), self.phase)
        self.client.publish(f"vigil/v1/{VICTIM}/alert", json.dumps(payload), qos=1)

    def unanswered(self) -> int:
        with self._lock:
            return len(self.sent)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Flooder:
    """A raw MQTT 3.1.1 connection writing packets as fast as asked; PUBACKs are read and
    dropped so the broker never stops reading from it."""

    def __init__(self, port: int, secret: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(FLOODER + "-flood", FLOODER, secret))
        if self.sock.recv(4)[3:4] != b"\x00":
            raise ConnectionRefusedError("flooder refused")
        self.sent = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass

    def run(self, packets: Iterator[bytes], seconds: float, rate: float | None) -> None:
        """Write packets for `seconds`: at `rate` a second, or as fast as possible."""
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            if rate is None:
                chunk = [next(packets) for _ in range(500)]
            else:
                due = int(elapsed * rate) - self.sent
                if due <= 0:
                    time.sleep(0.002)
                    continue
                chunk = [next(packets) for _ in range(due)]
            self.sock.sendall(b"".join(chunk))
            self.sent += len(chunk)

    def close(self) -> None:
        self.sock.sendall(bytes([0xE0, 0]))
        self.sock.close()


def invalid_alerts() -> Iterator[bytes]:
    packet = qos0_packet(f"vigil/v1/{FLOODER}/alert", b'{"v":1}')
    while True:
        yield packet


def wrong_pins(open_alert: str) -> Iterator[bytes]:
    mid = 0
    while True:
        mid = mid % 65535 + 1
        alert_id = open_alert if mid % 2 else uuid.uuid4().hex
        body = {"v": 1, "ts": now_ms(), "alert_id": alert_id, "pin": "0000"}
        yield publish_packet(f"vigil/v1/{FLOODER}/alert/cancel", mid, json.dumps(body).encode())


def valid_alerts() -> Iterator[bytes]:
    mid = 0
    while True:
        mid = mid % 65535 + 1
        body = {"v": 1, "ts": now_ms(), "id": uuid.uuid4().hex, "type": "test"}
        yield publish_packet(f"vigil/v1/{FLOODER}/alert", mid, json.dumps(body).encode())


def one_run(db: str, mode: str, seconds: float, every: float) -> dict[str, list[float]]:
    with rig(db, plain_devices=0, alerting_devices=2) as r:
        victim = Victim(r.broker_port, r.credentials[VICTIM])
        flooder = Flooder(r.broker_port, r.credentials[FLOODER])
        open_alert = uuid.uuid4().hex
        if mode == "pins":
            body = {"v": 1, "ts": now_ms(), "id": open_alert, "type": "test"}
            flooder.sock.sendall(
                publish_packet(f"vigil/v1/{FLOODER}/alert", 1, json.dumps(body).encode())
            )
        floods: dict[str, tuple[Callable[[], Iterator[bytes]], float | None]] = {
            "invalid": (invalid_alerts, None),
            "pins": (lambda: wrong_pins(open_alert), 200.0),
            "alerts": (valid_alerts, 480.0),
        }
        packets, rate = floods[mode]
        stop = threading.Event()

        def raise_alerts() -> None:
            while not stop.wait(every):
                victim.alert()

        ticker = threading.Thread(target=raise_alerts, daemon=True)
        time.sleep(1.0)  # connections settled
        ticker.start()
        time.sleep(seconds)
        victim.phase = "during"
        flooder.run(packets(), seconds, rate)
        victim.phase = "after"
        time.sleep(seconds)
        stop.set()
        ticker.join()
        deadline = time.monotonic() + 120
        while victim.unanswered() and time.monotonic() < deadline:
            time.sleep(0.2)
        print(
            f"  [{db} {mode}] flood messages written: {flooder.sent}; "
            f"victim alerts never answered: {victim.unanswered()}"
        )
        flooder.close()
        victim.close()
        return victim.latency


def report(db: str, mode: str, latency: dict[str, list[float]]) -> None:
    base = percentile(latency.get("before", []), 99)
    for phase in ("before", "during", "after"):
        values = latency.get(phase, [])
        p99 = percentile(values, 99)
        print(
            f"{db:10} {mode:8} {phase:7} n={len(values):4} p50={percentile(values, 50):8.1f} "
            f"p99={p99:8.1f} max={max(values, default=float('nan')):8.1f} ms  "
            f"p99-before={p99 - base:+8.1f} ms"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--mode", choices=["invalid", "pins", "alerts", "all"], default="all")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=0.1)
    args = ap.parse_args()
    modes = ["invalid", "pins", "alerts"] if args.mode == "all" else [args.mode]
    for mode in modes:
        report(args.db, mode, one_run(args.db, mode, args.seconds, args.every))


if __name__ == "__main__":
    main()
