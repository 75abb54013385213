"""SimDevice: one simulated badge or phone app, an MQTT client speaking protocol v1 to the letter.

Alerts go through a store-and-forward outbox and are resent with the same id until the service
answers `alert_received`; commands are recorded and can be waited for.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device_sim import messages
from device_sim.commands import Command, CommandListener, CommandLog
from device_sim.protocol import (
    ALERT,
    ALERT_CANCEL,
    ALERT_RECEIVED,
    CMD,
    EVIDENCE,
    HEARTBEAT,
    LOCATE,
    LOCATION,
    PROTOCOL_VERSION,
    STATUS,
    VISIT,
    JsonObject,
    check_device_id,
    now_ms,
    topic,
)
from device_sim.state import DeviceState

__all__ = ["BrokerRefusedError", "Command", "SimDevice"]

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 86400
DEFAULT_POSITION = (51.5072, -0.1276)


class BrokerRefusedError(ConnectionRefusedError):
    """The broker answered CONNECT with a failure (bad credentials, not authorised, ...)."""

    def __init__(self, device_id: str, reason: str) -> None:
        super().__init__(f"{device_id}: the broker refused the connection: {reason}")
        self.reason = reason


class SimDevice:
    """A simulated device. Methods are safe to call from any thread."""

    def __init__(
        self,
        device_id: str,
        secret: str,
        host: str = "127.0.0.1",
        port: int = 1883,
        protocol: int = 5,
        cancel_pin: str = "1234",
        duress_pin: str = "9999",
        position: tuple[float, float] = DEFAULT_POSITION,
        alert_retry_s: float = 2.0,
        state_dir: Path | None = None,
        *,
        keepalive: int = 30,
        fw: str = "1.4.2",
    ) -> None:
        if protocol not in (4, 5):
            raise ValueError("protocol is 4 (MQTT 3.1.1) or 5 (MQTT 5)")
        if alert_retry_s <= 0:
            raise ValueError("alert_retry_s must be > 0")
        self.device_id = check_device_id(device_id)
        self.secret = secret
        self.host = host
        self.port = port
        self.protocol = protocol
        self.cancel_pin = cancel_pin
        self.duress_pin = duress_pin
        self.alert_retry_s = alert_retry_s
        self.keepalive = keepalive
        # What the device reports; the fleet (or a test) moves and drains it.
        self.position = position
        self.battery = 100
        self.charging = False
        self.rssi = -67
        self.fw = fw

        self._state = DeviceState(device_id, state_dir)
        self._log = CommandLog(device_id)
        self._listeners: list[CommandListener] = []
        self._conn = threading.Condition()
        # Connected means CONNACK and SUBACK for cmd: commands sent from then on arrive.
        self._connected = False
        self._refused: str | None = None
        self._sub_refused: str | None = None
        self._sub_mid: int | None = None
        self._running = False
        self._unacked: list[mqtt.MQTTMessageInfo] = []
        self._unacked_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._resender: threading.Thread | None = None
        self._client = self._make_client()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<SimDevice {self.device_id} {state} {self.host}:{self.port} v{self.protocol}>"

    # --- connection -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        with self._conn:
            return self._connected

    @property
    def client(self) -> mqtt.Client:
        """The underlying paho client, for tests that need to reach below the protocol."""
        return self._client

    def connect(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """Connect (and keep reconnecting) in the background; by default wait until connected:
        CONNACK received and the cmd subscription acknowledged, so commands sent after this
        returns are delivered.

        Raises BrokerRefusedError if the broker refuses the connection or the subscription,
        TimeoutError if it does not answer in time; either way the background connection is
        stopped. With wait=False it returns at once and the device keeps trying, holding alerts
        in its outbox until the broker can be reached.
        """
        if self._running:
            raise RuntimeError(f"{self.device_id} is already connected or connecting")
        with self._conn:
            self._refused = self._sub_refused = None
        kwargs: dict[str, Any] = {}
        if self.protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            kwargs = {"clean_start": False, "properties": props}
        self._client.connect_async(self.host, self.port, self.keepalive, **kwargs)
        self._running = True
        self._client.loop_start()
        self._stop.clear()
        self._resender = threading.Thread(
            target=self._resend_loop, name=f"sim-{self.device_id}-outbox", daemon=True
        )
        self._resender.start()
        if not wait:
            return
        deadline = time.monotonic() + timeout
        with self._conn:
            while not self._connected and self._refused is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._conn.wait(left)
            refused, connected = self._refused, self._connected
            if self._sub_refused is not None:
                refused = f"subscription to {topic(self.device_id, CMD)}: {self._sub_refused}"
        if connected and refused is None:
            return
        self._stop_background(send_disconnect=True)
        if refused is not None:
            raise BrokerRefusedError(self.device_id, refused)
        raise TimeoutError(
            f"{self.device_id}: not connected to {self.host}:{self.port} within {timeout:g} s"
            " (no CONNACK/SUBACK)"
        )

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Block until the (background) connection is up, e.g. after a broker restart."""
        deadline = time.monotonic() + timeout
        with self._conn:
            while not self._connected:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.device_id}: not connected after {timeout:g} s")
                self._conn.wait(left)

    def disconnect(self, timeout: float = 2.0, *, announce_offline: bool = False) -> None:
        """Disconnect cleanly: the broker keeps the session and does not publish the last will.

        QoS 1 messages still in flight get up to `timeout` seconds to be acknowledged first.
        With announce_offline the device first publishes {"online":false} itself, as a device
        that is switched off properly might.
        """
        if not self._running:
            return
        if announce_offline:
            payload = messages.status(False, now_ms())
            self._publish_bytes(topic(self.device_id, STATUS), _encode(payload), 1, retain=True)
        self._drain(timeout)
        self._stop_background(send_disconnect=True)
        self._state.save()
        log.info("%s disconnected", self.device_id)

    def kill(self) -> None:
        """Drop the connection without DISCONNECT, like a crash or lost signal: the broker
        publishes the last will. The device can connect() again afterwards."""
        if not self._running:
            return
        sock = self._client.socket()
        # shutdown() sends the FIN at once, whatever the network thread is doing; closing the
        # descriptor under its select() would not be seen reliably.
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._stop_background(send_disconnect=False)
        if isinstance(sock, socket.socket):
            sock.close()
        log.info("%s killed (connection dropped without DISCONNECT)", self.device_id)

    # --- device to service ------------------------------------------------------------------

    def send_location(
        self,
        lat: float | None = None,
        lon: float | None = None,
        acc: float = 5.0,
        qos: int = 0,
        *,
        spd: float | None = None,
        hdg: float | None = None,
        src: str = "gps",
    ) -> None:
        """Publish a position fix; lat/lon, when given, also become the device's position."""
        if (lat is None) != (lon is None):
            raise ValueError("give both lat and lon, or neither")
        if lat is not None and lon is not None:
            self.position = (lat, lon)
        position = self._loc(acc=acc, spd=spd, hdg=hdg, src=src)
        self._send(LOCATION, messages.location(position, self.battery), qos)

    def heartbeat(self, batt: int | None = None, qos: int = 0) -> None:
        if batt is not None:
            self.battery = batt
        body = messages.heartbeat(self.battery, chg=self.charging, rssi=self.rssi, fw=self.fw)
        self._send(HEARTBEAT, body, qos)

    def raise_alert(
        self, type: str = "red", trigger: str | None = "button", note: str | None = None
    ) -> str:
        """Raise an alert and return its id; it is resent until the service confirms it."""
        alert_id = str(uuid.uuid4())
        body = messages.alert(
            alert_id, type, trigger=trigger, position=self._loc(), batt=self.battery, note=note
        )
        self._state.add_alert(alert_id, self._encode(body))
        log.debug("%s raised %s alert %s", self.device_id, type, alert_id)
        self._send_due_alerts()
        self._wake.set()
        return alert_id

    @property
    def pending_alerts(self) -> list[str]:
        """Ids of alerts not yet confirmed by `alert_received`, oldest first."""
        return self._state.pending_ids()

    def cancel_alert(self, alert_id: str, pin: str) -> None:
        self._send(ALERT_CANCEL, messages.alert_cancel(alert_id, pin), 1)

    def start_visit(
        self,
        visit_id: str | None = None,
        duration_s: int = 1800,
        note: str | None = None,
        memo: str | None = None,
    ) -> str:
        visit_id = visit_id or f"visit-{uuid.uuid4().hex[:12]}"
        body = messages.visit(
            visit_id, "start", duration_s=duration_s, note=note, position=self._loc(), memo=memo
        )
        self._send(VISIT, body, 1)
        return visit_id

    def extend_visit(self, visit_id: str, duration_s: int) -> None:
        body = messages.visit(visit_id, "extend", duration_s=duration_s, position=self._loc())
        self._send(VISIT, body, 1)

    def checkin_visit(self, visit_id: str) -> None:
        self._send(VISIT, messages.visit(visit_id, "checkin", position=self._loc()), 1)

    def end_visit(self, visit_id: str, pin: str | None = None) -> None:
        self._send(VISIT, messages.visit(visit_id, "end", position=self._loc(), pin=pin), 1)

    def send_evidence(
        self,
        evidence_id: str,
        alert_id: str | None = None,
        visit_id: str | None = None,
        data: bytes | None = None,
        uri: str | None = None,
        codec: str = "opus",
        duration_ms: int = 15000,
    ) -> None:
        """Publish an evidence reference; with `data`, its size and SHA-256 are included."""
        body = messages.evidence(
            evidence_id,
            alert_id=alert_id,
            visit_id=visit_id,
            data=data,
            uri=uri,
            codec=codec,
            duration_ms=duration_ms,
        )
        self._send(EVIDENCE, body, 1)

    def upload_evidence(
        self, base_url: str, evidence_id: str, data: bytes, timeout: float = 10.0
    ) -> int:
        """PUT the recording to the service as PROTOCOL.md says; returns the HTTP status."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http:// or https:// URL")
        url = f"{base_url.rstrip('/')}/api/v1/devices/{self.device_id}/evidence/{evidence_id}"
        token = base64.b64encode(f"{self.device_id}:{self.secret}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            url,
            data=data,
            method="PUT",
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def publish_raw(
        self,
        suffix: str,
        payload: bytes | str,
        qos: int = 1,
        topic: str | None = None,
        *,
        retain: bool = False,
    ) -> None:
        """Publish exactly these bytes, for tests of bad input; `topic` overrides the topic."""
        data = payload.encode() if isinstance(payload, str) else payload
        full_topic = topic if topic is not None else _topic(self.device_id, suffix)
        self._publish_bytes(full_topic, data, qos, retain=retain)

    # --- service to device ------------------------------------------------------------------

    @property
    def commands(self) -> list[Command]:
        """Every command received so far, in order (a snapshot)."""
        return self._log.snapshot()

    def wait_for(self, type: str, timeout: float = 5.0, **match: Any) -> Command:
        """The first command of this type whose payload has these field values, received
        already or within `timeout`; TimeoutError lists what did arrive."""
        return self._log.wait_for(type, timeout, match)

    def add_listener(self, listener: CommandListener) -> None:
        """Call `listener` with every command, on the MQTT network thread: keep it short."""
        self._listeners.append(listener)

    def remove_listener(self, listener: CommandListener) -> None:
        self._listeners.remove(listener)

    # --- internals --------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        version = MQTTProtocolVersion(self.protocol)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=version,
            clean_session=None if self.protocol == 5 else False,
        )
        client.username_pw_set(self.device_id, self.secret)
        client.will_set(
            topic(self.device_id, STATUS), _encode(messages.status(False, None)), 1, retain=True
        )
        # A badge retries soon after losing the network: an alert is waiting in the outbox.
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
            with self._conn:
                self._refused = str(reason)
                self._conn.notify_all()
            return
        online = _encode(messages.status(True, now_ms()))
        self._publish_bytes(topic(self.device_id, STATUS), online, 1, retain=True)
        # Subscribe on every connect: the broker may have lost the session (restart, expiry).
        self._sub_mid = client.subscribe(topic(self.device_id, CMD), 1)[1]
        self._state.mark_all_unsent()
        log.info(
            "%s connected to %s:%s (session present: %s)",
            self.device_id,
            self.host,
            self.port,
            flags.session_present,
        )

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
        if failed is not None:
            # Still connected for publishing: alerts must go out even if commands cannot come in.
            log.error("%s: broker refused the cmd subscription: %s", self.device_id, failed)
        with self._conn:
            self._connected = True
            self._sub_refused = None if failed is None else str(failed)
            self._conn.notify_all()
        self._wake.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._conn:
            was_connected, self._connected = self._connected, False
            self._conn.notify_all()
        if was_connected:
            log.info("%s lost its connection: %s", self.device_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        command = Command.parse(bytes(msg.payload))
        self._log.append(command)
        # An exception escaping a paho callback would end the network thread: contain it.
        try:
            self._react(command)
            for listener in list(self._listeners):
                listener(command)
        except Exception:
            log.exception("%s: error handling command %r", self.device_id, command)

    def _react(self, command: Command) -> None:
        if command.type == ALERT_RECEIVED:
            alert_id = command.payload.get("alert_id")
            if isinstance(alert_id, str) and self._state.remove_alert(alert_id):
                log.info("%s: alert %s confirmed by the service", self.device_id, alert_id)
        elif command.type == LOCATE:
            self.send_location(qos=1)

    def _resend_loop(self) -> None:
        while not self._stop.is_set():
            # Clear first: a wake-up arriving while we work is then not lost.
            self._wake.clear()
            wait: float | None = None
            if self.connected:
                self._send_due_alerts()
                wait = self._state.seconds_to_next_due(time.monotonic(), self.alert_retry_s)
            self._wake.wait(wait)

    def _send_due_alerts(self) -> None:
        if not self.connected:
            return  # held in the outbox; the next (re)connect wakes the resender
        for pending in self._state.take_due(time.monotonic(), self.alert_retry_s):
            self._publish_bytes(topic(self.device_id, ALERT), pending.payload, 1)

    def _stop_background(self, *, send_disconnect: bool) -> None:
        if send_disconnect:
            self._client.disconnect()
        self._client.loop_stop()
        self._running = False
        self._stop.set()
        self._wake.set()
        if self._resender is not None and self._resender is not threading.current_thread():
            self._resender.join()
        self._resender = None
        with self._conn:
            self._connected = False
            self._conn.notify_all()

    def _drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.connected and time.monotonic() < deadline:
            with self._unacked_lock:
                self._unacked = [i for i in self._unacked if not i.is_published()]
                if not self._unacked:
                    return
            time.sleep(0.01)

    def _loc(
        self,
        acc: float | None = 5.0,
        spd: float | None = None,
        hdg: float | None = None,
        src: str | None = "gps",
    ) -> JsonObject:
        lat, lon = self.position
        return messages.loc(lat, lon, acc=acc, spd=spd, hdg=hdg, src=src)

    def _encode(self, body: JsonObject) -> bytes:
        return _encode(
            {"v": PROTOCOL_VERSION, "ts": now_ms(), "seq": self._state.next_seq(), **body}
        )

    def _send(self, suffix: str, body: JsonObject, qos: int) -> None:
        self._publish_bytes(topic(self.device_id, suffix), self._encode(body), qos)

    def _publish_bytes(
        self, full_topic: str, payload: bytes, qos: int, *, retain: bool = False
    ) -> None:
        # QoS 1 messages published while offline wait in paho's queue for the reconnect.
        info = self._client.publish(full_topic, payload, qos, retain=retain)
        if qos > 0:
            with self._unacked_lock:
                self._unacked = [i for i in self._unacked if not i.is_published()]
                self._unacked.append(info)
        log.debug("%s -> %s %s", self.device_id, full_topic, payload[:200])


def _topic(device_id: str, suffix: str) -> str:
    # For publish_raw, whose `topic` argument hides the module-level function.
    return topic(device_id, suffix)


def _encode(payload: JsonObject) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
