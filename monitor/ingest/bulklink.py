"""The telemetry session's MQTT connection: whole buffers read, acknowledgements sent in batches.

It keeps `MqttLink`'s contract (a persistent session, QoS 1, a message acknowledged only when
its effect is committed, subscriptions renewed on every connect) for the sessions that carry
location traffic, where paho's per-message work (two objects, a condition variable, property
parsing and callback topic matching for each PUBLISH) was the service's largest cost. One
thread owns the socket: it reads as much as has arrived, hands every PUBLISH in it over, and
writes the acknowledgements the writer has queued since, in one send. The urgent session
keeps paho (`link.py`).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from paho.mqtt.subscribeoptions import SubscribeOptions

from monitor.config import Settings
from monitor.ingest import wire
from monitor.ingest.link import Incoming, client_id_of

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
READ_BYTES = 256 * 1024


class Published:
    """A QoS 1 publish in flight: `is_published` once the broker has acknowledged it (as
    paho's `MQTTMessageInfo`, which `Replies` reads)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False

    def is_published(self) -> bool:
        return self.done


class BulkLink:
    def __init__(
        self,
        settings: Settings,
        name: str,
        topics: list[tuple[str, SubscribeOptions]],
        on_message: Callable[[Incoming], None],
        *,
        drop: list[str] | None = None,
        client_id: str = "",
        reconnect: bool = True,
    ) -> None:
        self.settings = settings
        self.client_id = client_id or client_id_of(settings, name)
        self.topics = topics
        self.drop = drop or []
        self._on_message = on_message
        self.reconnect = reconnect
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.dropped = threading.Event()
        self.ended = threading.Event()
        self.generation = 0
        self._unacked: set[int] = set()
        # Bytes for the socket from other threads (acknowledgements, publishes), written by
        # the link's thread when woken; the lock guards this buffer and the in-flight map.
        self._out = bytearray()
        self._lock = threading.Lock()
        self._inflight: dict[int, Published] = {}
        self._next_id = 0
        # Made by the link's thread and closed when it ends: a link never started holds none.
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stop = threading.Event()
        self._end_session = False
        self._thread = threading.Thread(target=self._run, name=f"{self.client_id}", daemon=True)

    # What the rest of the service calls, from any thread.

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect once the acknowledgements queued so far are written. The broker keeps the
        session unless `end_session`."""
        self._end_session = end_session
        self._stop.set()
        self._wake()
        if self._thread.ident is not None:  # started
            self._thread.join(10)
        self.connected.clear()

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    def ack(self, mid: int, qos: int, generation: int) -> None:
        if not qos:
            return
        # Under the lock with the reconnect's bump of the generation: an ack checked against
        # the old connection must not land in the new one's buffer, where its id may name
        # another message.
        with self._lock:
            if generation != self.generation:
                return
            self._unacked.discard(mid)
            was_empty = not self._out
            self._out += wire.puback(mid)
        if was_empty:
            self._wake()

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> Published:
        handle = Published()
        with self._lock:
            packet_id = 0
            if qos:
                packet_id = self._packet_id()
                self._inflight[packet_id] = handle
            else:
                handle.done = True
            was_empty = not self._out
            self._out += wire.publish(topic, payload, qos, packet_id, retain=retain)
        if was_empty:
            self._wake()
        return handle

    def _wake(self) -> None:
        wake = self._wake_w
        if wake is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                wake.send(b"\0")

    def _packet_id(self) -> int:
        # Under the lock. Ids of the link's own packets; a broker's PUBLISH ids are its own.
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._inflight:
                return self._next_id
        raise RuntimeError("65,535 publishes in flight")

    # The link's thread.

    def _run(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        try:
            self._connect_while_running()
        finally:
            self._wake_w.close()
            self._wake_r.close()

    def _connect_while_running(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            sock = None
            try:
                sock, after_connack = self._open()
                delay = 1.0
                self._serve(sock, after_connack)
            except (OSError, wire.ProtocolError, IndexError, UnicodeDecodeError) as err:
                if not self._stop.is_set():
                    log.warning("MQTT %s: %s", self.client_id, err or type(err).__name__)
            except Exception:
                # A fault of ours must not leave the session unread for good: connect again,
                # and the broker delivers again what was not acknowledged.
                log.exception("MQTT %s: the reader failed; connecting again", self.client_id)
            finally:
                self.connected.clear()
                if sock is not None:
                    sock.close()
            if self._stop.is_set():
                return
            if not self.reconnect:
                self.ended.set()
                return
            self._stop.wait(delay)
            delay = min(delay * 2, 10.0)

    def _open(self) -> tuple[socket.socket, bytearray]:
        """Connect and read the CONNACK: the socket, and what came after the CONNACK in the
        same read (a resumed session's unacknowledged messages follow it at once)."""
        s = self.settings
        sock = socket.create_connection((s.mqtt_host, s.mqtt_port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if s.mqtt_tls_ca:
            ctx = ssl.create_default_context(cafile=s.mqtt_tls_ca)
            sock = ctx.wrap_socket(sock, server_hostname=s.mqtt_host)
        sock.sendall(
            wire.connect(
                self.client_id,
                keepalive_s=KEEPALIVE_S,
                session_expiry_s=s.mqtt_session_expiry_s,
                receive_maximum=65535,
                username=s.mqtt_username if s.mqtt_password else "",
                password=s.mqtt_password,
            )
        )
        buf = bytearray()
        while (packet := wire.first(buf)) is None:
            chunk = sock.recv(READ_BYTES)
            if not chunk:
                raise ConnectionError("closed by the broker before CONNACK")
            buf += chunk
        kind, body, used = packet
        if kind != wire.CONNACK:
            raise wire.ProtocolError("expected CONNACK first")
        if body[1] >= 0x80:
            log.error("MQTT %s refused by the broker: reason 0x%02x", self.client_id, body[1])
            raise ConnectionRefusedError(f"CONNACK reason 0x{body[1]:02x}")
        log.info("MQTT %s connected (session present: %s)", self.client_id, bool(body[0] & 1))
        sock.settimeout(None)
        del buf[:used]
        return sock, buf

    def _serve(self, sock: socket.socket, buf: bytearray) -> None:
        with self._lock:
            # Nothing queued for the last connection is valid on this one: its acks name that
            # connection's packet ids, and unacknowledged publishes are sent again from the
            # outbox by the scheduler.
            self._out.clear()
            self._inflight.clear()
            self.generation += 1
            self._unacked.clear()
            sub_id = self._packet_id() if self.topics else 0
            drop_id = self._packet_id() if self.drop else 0
        hello = b""
        if self.topics:
            hello += wire.subscribe(sub_id, [(t, options_byte(o)) for t, o in self.topics])
        else:
            self.subscribed.set()
        if self.drop:
            hello += wire.unsubscribe(drop_id, self.drop)
        else:
            self.dropped.set()
        sock.sendall(hello)
        self.connected.set()
        tls = sock if isinstance(sock, ssl.SSLSocket) else None
        wake = self._wake_r
        assert wake is not None
        # epoll, not select(): a service with over 1,024 open files (relayed apps, database
        # connections) would have select() refuse the socket.
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            self._pump(sock, buf, tls, wake, selector, sub_id, drop_id)

    def _pump(
        self,
        sock: socket.socket,
        buf: bytearray,
        tls: ssl.SSLSocket | None,
        wake: socket.socket,
        selector: selectors.BaseSelector,
        sub_id: int,
        drop_id: int,
    ) -> None:
        """Read what arrives, hand it over, and write what other threads queued, until the
        link stops or the connection fails."""
        last_sent = last_heard = time.monotonic()
        on_message, generation = self._on_message, self.generation
        # What came with the CONNACK is handled before anything more is read.
        arrived = bool(buf)
        while True:
            # Bytes TLS has already decrypted are not seen by the selector: read them at once.
            waiting = arrived or (tls is not None and tls.pending() > 0)
            ready = {key.fileobj for key, _ in selector.select(0 if waiting else 1.0)}
            readable = sock in ready or (tls is not None and tls.pending() > 0)
            now = time.monotonic()
            if wake in ready:
                with contextlib.suppress(BlockingIOError):
                    wake.recv(4096)
            with self._lock:
                out = bytes(self._out)
                self._out.clear()
            if self._stop.is_set():
                sock.sendall(
                    out + (wire.DISCONNECT_ENDING if self._end_session else wire.DISCONNECT_BYTES)
                )
                return
            if out:
                sock.sendall(out)
                last_sent = now
            if readable:
                chunk = sock.recv(READ_BYTES)
                if not chunk:
                    raise ConnectionError("connection closed by the broker")
                last_heard = now
                buf += chunk
                arrived = True
            if arrived:
                arrived = False
                publishes, others, used = wire.read(buf)
                del buf[:used]
                for topic, payload, qos, mid, retain in publishes:
                    if qos:
                        self._unacked.add(mid)
                    on_message(Incoming(topic, payload, qos, mid, retain, self, generation))
                for kind, body in others:
                    self._other(kind, body, sub_id, drop_id)
            if now - last_sent > KEEPALIVE_S / 2:
                sock.sendall(wire.PINGREQ_BYTES)
                last_sent = now
            if now - last_heard > KEEPALIVE_S * 1.5:
                raise ConnectionError("the broker went silent")

    def _other(self, kind: int, body: bytes, sub_id: int, drop_id: int) -> None:
        if kind == wire.PUBACK:
            with self._lock:
                handle = self._inflight.pop(body[0] << 8 | body[1], None)
            if handle is not None:
                handle.done = True
        elif kind == wire.SUBACK:
            if body[:2] == sub_id.to_bytes(2, "big"):
                # After the packet id and the properties, one reason code per filter.
                codes = body[3 + body[2] :] if body[2] < 0x80 else b""
                if any(code >= 0x80 for code in codes):
                    log.error(
                        "MQTT %s: the broker refused a subscription: %s",
                        self.client_id,
                        codes.hex(),
                    )
                self.subscribed.set()
        elif kind == wire.UNSUBACK:
            if body[:2] == drop_id.to_bytes(2, "big"):
                self.dropped.set()
        elif kind == wire.DISCONNECT:
            reason = body[0] if body else 0
            raise ConnectionError(f"disconnected by the broker: reason 0x{reason:02x}")


def options_byte(o: SubscribeOptions) -> int:
    """A subscription's options as MQTT 5 writes them (3.8.3.1)."""
    return o.QoS | o.noLocal << 2 | o.retainAsPublished << 3 | o.retainHandling << 4
