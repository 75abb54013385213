"""A device's MQTT connection as PROTOCOL.md wants it: persistent session, last will, online
status and cmd subscription on every connect; clean disconnect, or a kill that fires the will.
"""

from __future__ import annotations

import contextlib
import logging
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
from device_sim.protocol import CMD, STATUS, encode, now_ms, topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 86400


class BrokerRefusedError(ConnectionRefusedError):
    """The broker refused the connection (bad credentials, not authorised, ...) or the
    subscription to the device's cmd topic."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(f"{device_id}: the broker refused the connection: {reason}")
        self.reason = reason


class DeviceLink:
    """One paho client with its network thread. `on_connack` runs on every successful
    CONNACK, `on_ready` once the cmd subscription is acknowledged, `on_message` per command;
    all on the network thread."""

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
    ) -> None:
        if protocol not in (4, 5):
            raise ValueError("protocol is 4 (MQTT 3.1.1) or 5 (MQTT 5)")
        self.device_id = device_id
        self.host, self.port, self.protocol, self.keepalive = host, port, protocol, keepalive
        self._on_connack_cb, self._on_ready_cb, self._on_message_cb = (
            on_connack,
            on_ready,
            on_message,
        )
        self._cond = threading.Condition()
        # Ready means CONNACK and SUBACK for cmd: commands sent from then on arrive.
        self._ready = False
        self._refused: str | None = None
        self._sub_mid: int | None = None
        self._running = False
        self._unacked: list[mqtt.MQTTMessageInfo] = []
        self._unacked_lock = threading.Lock()
        self.client = self._make_client(secret)

    @property
    def ready(self) -> bool:
        with self._cond:
            return self._ready

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Connect in the background; paho keeps reconnecting until stop()."""
        with self._cond:
            self._refused = None
        kwargs: dict[str, Any] = {}
        if self.protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs = {"clean_start": False, "properties": props}
        self.client.connect_async(self.host, self.port, self.keepalive, **kwargs)
        self._running = True
        self.client.loop_start()

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

    def stop(self, *, send_disconnect: bool) -> None:
        if send_disconnect:
            self.client.disconnect()
        self.client.loop_stop()
        self._running = False
        with self._cond:
            self._ready = False
            self._cond.notify_all()

    def kill(self) -> None:
        sock = self.client.socket()
        # shutdown() sends the FIN at once, whatever the network thread is doing; closing the
        # descriptor under its select() would not be seen reliably.
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # paho notices the drop, but checks for loop_stop() only every second while waiting
        # to reconnect: a kill takes up to 1 s.
        self.stop(send_disconnect=False)
        if isinstance(sock, socket.socket):
            sock.close()

    def publish(self, full_topic: str, payload: bytes, qos: int, *, retain: bool = False) -> None:
        # QoS 1 messages published while offline wait in paho's queue for the reconnect.
        info = self.client.publish(full_topic, payload, qos, retain=retain)
        if qos > 0:
            with self._unacked_lock:
                self._unacked = [i for i in self._unacked if not i.is_published()]
                self._unacked.append(info)
        log.debug("%s -> %s %s", self.device_id, full_topic, payload[:200])

    def drain(self, timeout: float) -> None:
        """Wait (while connected) until every QoS 1 message published so far is acknowledged."""
        deadline = time.monotonic() + timeout
        while self.ready and time.monotonic() < deadline:
            with self._unacked_lock:
                self._unacked = [i for i in self._unacked if not i.is_published()]
                if not self._unacked:
                    return
            time.sleep(0.01)

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
        # A badge retries soon after losing the network: an alert may be waiting in the outbox.
        client.reconnect_delay_set(min_delay=1, max_delay=5)
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
        online = encode(messages.status(True, now_ms()))
        self.publish(topic(self.device_id, STATUS), online, 1, retain=True)
        # Subscribe on every connect: the broker may have lost the session (restart, expiry).
        self._sub_mid = client.subscribe(topic(self.device_id, CMD), 1)[1]
        log.info(
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
        if was_ready:
            log.info("%s lost its connection: %s", self.device_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # An exception escaping a paho callback would end the network thread: contain it.
        try:
            self._on_message_cb(bytes(msg.payload))
        except Exception:
            log.exception("%s: error handling a command", self.device_id)
