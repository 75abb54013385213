"""A device's MQTT connection as PROTOCOL.md wants it: persistent session, last will, online
status and cmd subscription on every connect, reconnection; clean disconnect, or a kill that
fires the will. Driven by a NetLoop, shared by a fleet or the device's own.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device_sim import messages
from device_sim.netloop import NetLoop, Timer
from device_sim.protocol import CMD, STATUS, encode, now_ms, topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 86400
# A badge retries soon after losing the network: an alert may be waiting in the outbox.
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 5.0


class BrokerRefusedError(ConnectionRefusedError):
    """The broker refused the connection (bad credentials, not authorised, ...) or the
    subscription to the device's cmd topic."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(f"{device_id}: the broker refused the connection: {reason}")
        self.reason = reason


class DeviceLink:
    """One paho client driven by a NetLoop: the fleet's shared one, or a loop of its own.

    `on_connack` runs on every successful CONNACK, `on_ready` once the cmd subscription is
    acknowledged, `on_message` per command; all on the loop's thread. Every call into the
    paho client is made on that thread too.
    """

    def __init__(
        self,
        device_id: str,
        secret: str,
        host: str,
        port: int,
        protocol: int,
        keepalive: int,
        *,
        on_connack: Callable[[], None],
        on_ready: Callable[[], None],
        on_message: Callable[[bytes], None],
        loop: NetLoop | None = None,
        bind_address: str = "",
    ) -> None:
        if protocol not in (4, 5):
            raise ValueError("protocol is 4 (MQTT 3.1.1) or 5 (MQTT 5)")
        self.device_id = device_id
        self.host, self.port, self.protocol, self.keepalive = host, port, protocol, keepalive
        self.bind_address = bind_address
        self._on_connack_cb, self._on_ready_cb, self._on_message_cb = (
            on_connack,
            on_ready,
            on_message,
        )
        # Without a shared loop the device has its own, running only while it is connected.
        self._own_loop = loop is None
        self.loop = loop if loop is not None else NetLoop(f"sim-{device_id}")
        self._cond = threading.Condition()
        # Ready means CONNACK and SUBACK for cmd: commands sent from then on arrive.
        self._ready = False
        self._refused: str | None = None
        self._sub_mid: int | None = None
        self._running = False
        self._closed = threading.Event()  # set when a stop has closed the socket
        self._retry: Timer | None = None
        self._delay = RECONNECT_MIN_S
        self._unacked: list[mqtt.MQTTMessageInfo] = []
        self._handed_over = 0  # publishes handed to the loop and not yet made
        self._unacked_lock = threading.Lock()
        self.client = self._make_client(secret)
        self.loop.attach(self.client)

    @property
    def ready(self) -> bool:
        with self._cond:
            return self._ready

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Connect in the background; the link keeps reconnecting until stop()."""
        with self._cond:
            self._refused = None
        kwargs: dict[str, Any] = {}
        if self.protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs = {"clean_start": False, "properties": props}
        self._running = True
        self._closed.clear()
        self._delay = RECONNECT_MIN_S

        def begin() -> None:
            self.client.connect_async(
                self.host, self.port, self.keepalive, bind_address=self.bind_address, **kwargs
            )
            self._connect_now()

        if self._own_loop and not self.loop.running:
            self.loop.start()
        self.loop.call_soon(begin)

    def wait_ready(self, timeout: float, *, fail_on_refusal: bool) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._ready and not (fail_on_refusal and self._refused):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.device_id}: not connected to {self.host}:{self.port} within"
                        f" {timeout:g} s (no CONNACK/SUBACK)"
                    )
                self._cond.wait(left)
            if fail_on_refusal and self._refused is not None:
                raise BrokerRefusedError(self.device_id, self._refused)

    def stop(self, *, send_disconnect: bool, timeout: float = 2.0) -> None:
        """Stop reconnecting and close the connection: with DISCONNECT (the broker keeps
        the will to itself), or without (kill(): the broker publishes it)."""
        if not self._running:
            return
        self._running = False

        def close() -> None:
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None
            if self.client.socket() is None:
                self._closed.set()
            elif send_disconnect:
                # Written by the loop; paho closes the socket after it (on_disconnect).
                self.client.disconnect()

        self.loop.call_soon(close)
        if not self._closed.wait(timeout):
            log.warning(
                "%s: connection not closed within %g s; dropping it", self.device_id, timeout
            )
            self.loop.call_soon(self._drop)
            self._closed.wait(timeout)
        with self._cond:
            self._ready = False
            self._cond.notify_all()
        if self._own_loop:
            self.loop.stop()

    def kill(self) -> None:
        sock = self.client.socket()
        # shutdown() sends the FIN at once, without DISCONNECT; the loop then reads the end
        # of the stream and paho closes the socket.
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.stop(send_disconnect=False)

    def publish(self, full_topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        # QoS 1 messages published while offline wait in paho's queue for the reconnect.
        if self.loop.in_loop():
            self._publish(full_topic, payload, qos, retain)
            return
        with self._unacked_lock:
            self._handed_over += 1
        self.loop.call_soon(lambda: self._publish(full_topic, payload, qos, retain, True))

    def drain(self, timeout: float) -> None:
        """Wait (while connected) until every QoS 1 message published so far is acknowledged."""
        deadline = time.monotonic() + timeout
        while self.ready and time.monotonic() < deadline:
            with self._unacked_lock:
                self._unacked = [i for i in self._unacked if not i.is_published()]
                if not self._unacked and not self._handed_over:
                    return
            time.sleep(0.01)

    def _publish(
        self, full_topic: str, payload: bytes, qos: int, retain: bool, handed: bool = False
    ) -> None:
        try:
            info = self.client.publish(full_topic, payload, qos, retain=retain)
        finally:
            if handed:
                with self._unacked_lock:
                    self._handed_over -= 1
        if qos > 0:
            with self._unacked_lock:
                if len(self._unacked) > 64:
                    self._unacked = [i for i in self._unacked if not i.is_published()]
                self._unacked.append(info)
        log.debug("%s -> %s %s", self.device_id, full_topic, payload[:200])

    def _connect_now(self) -> None:
        self._retry = None
        if not self._running:
            return
        try:
            self.client.reconnect()
        except OSError as exc:
            log.debug("%s: cannot reach %s:%s: %s", self.device_id, self.host, self.port, exc)
            self._retry_later()

    def _retry_later(self) -> None:
        if not self._running or self._retry is not None:
            return
        # Jitter, so a fleet that lost its broker does not come back in one wave.
        delay = self._delay * random.uniform(0.8, 1.2)
        self._delay = min(RECONNECT_MAX_S, self._delay * 2)
        self._retry = self.loop.call_later(delay, self._connect_now)

    def _drop(self) -> None:
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        else:
            self._closed.set()

    def _make_client(self, secret: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=MQTTProtocolVersion(self.protocol),
            clean_session=None if self.protocol == 5 else False,
        )
        client.username_pw_set(self.device_id, secret)
        will = encode(messages.status(False, None))
        client.will_set(topic(self.device_id, STATUS), will, 1, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused the connection: %s", self.device_id, reason)
            with self._cond:
                self._refused = str(reason)
                self._cond.notify_all()
            return
        self._delay = RECONNECT_MIN_S
        # Subscribe on every connect: the broker may have lost the session (restart, expiry).
        # Before `online`, which the service answers with commands (protocol section 10).
        self._sub_mid = client.subscribe(topic(self.device_id, CMD), 1)[1]
        online = encode(messages.status(True, now_ms()))
        self.publish(topic(self.device_id, STATUS), online, 1, retain=True)
        # Debug, not info: a fleet of ten thousand would print ten thousand lines.
        log.debug(
            "%s connected to %s:%s (session present: %s)",
            self.device_id,
            self.host,
            self.port,
            flags.session_present,
        )
        self._on_connack_cb()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid != self._sub_mid:
            return
        failed = next((r for r in reasons if r.is_failure), None)
        with self._cond:
            # Ready even so: alerts must go out even if commands cannot come in.
            self._ready = True
            if failed is not None:
                log.error("%s: broker refused the cmd subscription: %s", self.device_id, failed)
                self._refused = f"subscription to {topic(self.device_id, CMD)}: {failed}"
            self._cond.notify_all()
        self._on_ready_cb()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._cond:
            was_ready, self._ready = self._ready, False
            self._cond.notify_all()
        if not self._running:
            self._closed.set()
            return
        if was_ready:
            log.info("%s lost its connection: %s", self.device_id, reason)
        self._retry_later()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # An exception escaping a paho callback would end paho's read: contain it here.
        try:
            self._on_message_cb(bytes(msg.payload))
        except Exception:
            log.exception("%s: error handling a command", self.device_id)
