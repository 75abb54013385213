"""A load generator that is not the limit: QoS 1 PUBLISH packets encoded once, written in
large chunks over a plain socket (MQTT 3.1.1), PUBACKs counted as they come back.

paho costs tens of microseconds of Python per message on the sending side; on two cores that
made the publishers, not the broker or the service, set the rate. This speaks only the few
packets a publisher needs: CONNECT, PUBLISH at QoS 1, PUBACK, DISCONNECT.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

CONNACK, PUBACK = 0x20, 0x40


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str, password: str, keepalive: int = 60) -> bytes:
    # Protocol level 4 (3.1.1); flags: user name, password, clean session.
    body = _string("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive)
    body += _string(client_id) + _string(username) + _string(password)
    return bytes([0x10]) + _length(len(body)) + body


def publish_packet(topic: str, mid: int, payload: bytes) -> bytes:
    body = _string(topic) + struct.pack("!H", mid) + payload
    return bytes([0x32]) + _length(len(body)) + body


class Publisher:
    """One connection. `send(messages)` writes every (topic, payload) at QoS 1 and returns
    once the broker has acknowledged them all."""

    def __init__(self, host: str, port: int, client_id: str, username: str, password: str):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id, username, password))
        head = self._recv_exact(4)
        if head[0] != CONNACK or head[3] != 0:
            raise ConnectionRefusedError(f"{client_id}: CONNACK return code {head[3]}")
        self.acked = 0
        self._cond = threading.Condition()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def _count_acks(self, expected: int) -> None:
        # Every packet the broker sends a publisher here is a 4-byte PUBACK.
        pending = b""
        while self.acked < expected:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            pending += chunk
            whole = len(pending) // 4
            if any(pending[i * 4] != PUBACK for i in range(whole)):
                raise ConnectionError("unexpected packet from the broker")
            pending = pending[whole * 4 :]
            with self._cond:
                self.acked += whole
                self._cond.notify_all()

    def send(
        self, messages: list[tuple[str, bytes]], window: int = 20_000, chunk: int = 200
    ) -> None:
        reader = threading.Thread(target=self._count_acks, args=(len(messages),), daemon=True)
        reader.start()
        # Packet ids are reused once acknowledged; the window keeps fewer than 65,535 open.
        for start in range(0, len(messages), chunk):
            with self._cond:
                while start - self.acked > window:
                    self._cond.wait(1)
            part = messages[start : start + chunk]
            self.sock.sendall(
                b"".join(
                    publish_packet(t, (start + i) % 65535 + 1, p) for i, (t, p) in enumerate(part)
                )
            )
        reader.join()

    def close(self) -> None:
        self.sock.sendall(bytes([0xE0, 0]))
        self.sock.close()


def flood(
    host: str,
    port: int,
    username: str,
    password: str,
    messages: list[tuple[str, bytes]],
    client_id: str,
    on_connected: Callable[[], object] | None = None,
) -> float:
    """Publish all `messages` on one connection; the seconds it took, connection excluded."""
    pub = Publisher(host, port, client_id, username, password)
    if on_connected is not None:
        on_connected()
    start = time.perf_counter()
    pub.send(messages)
    took = time.perf_counter() - start
    pub.close()
    return took
