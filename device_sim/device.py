"""SimDevice: one simulated badge or phone app speaking protocol v1 to the letter.

Alerts go through a store-and-forward outbox and are resent with the same id, on a timer of
the network loop, until the service answers `alert_received`; commands are recorded and can be
waited for.
"""

from __future__ import annotations

import base64
import logging
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from device_sim import messages
from device_sim.commands import Command, CommandListener, CommandLog
from device_sim.link import BrokerRefusedError, DeviceLink
from device_sim.netloop import NetLoop, Timer
from device_sim.protocol import (
    ALERT,
    ALERT_CANCEL,
    ALERT_RECEIVED,
    EVIDENCE,
    HEARTBEAT,
    LOCATE,
    LOCATION,
    PROTOCOL_VERSION,
    STATUS,
    VISIT,
    JsonObject,
    check_device_id,
    encode,
    now_ms,
    topic,
)
from device_sim.state import DeviceState

__all__ = ["BrokerRefusedError", "Command", "DeviceMessages", "SimDevice"]

log = logging.getLogger(__name__)

DEFAULT_POSITION = (51.5072, -0.1276)


class DeviceMessages:
    """What a device says to the service: each message built to protocol v1, numbered and
    stamped. How a message leaves is a subclass's (`_send`, `_send_alert`, `_next_seq`):
    SimDevice publishes it over MQTT; the service's fast tests hand it straight to ingest."""

    def __init__(
        self,
        device_id: str,
        cancel_pin: str,
        duress_pin: str,
        position: tuple[float, float] = DEFAULT_POSITION,
        fw: str = "1.4.2",
    ) -> None:
        self.device_id = device_id
        self.cancel_pin = cancel_pin
        self.duress_pin = duress_pin
        # What the device reports; the fleet (or a test) moves and drains it.
        self.position = position
        self.battery = 100
        self.charging = False
        self.rssi = -67
        self.fw = fw

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
        self,
        type: str = "red",
        trigger: str | None = "button",
        note: str | None = None,
        *,
        located: bool = True,
    ) -> str:
        """Raise an alert and return its id; without `located`, with no position (a device
        with no fix yet at the press). How it leaves is `_send_alert`'s: SimDevice's keeps it
        in its outbox and resends it until the service confirms it."""
        alert_id = str(uuid.uuid4())
        position = self._loc() if located else None
        body = messages.alert(
            alert_id, type, trigger=trigger, position=position, batt=self.battery, note=note
        )
        self._send_alert(alert_id, body)
        return alert_id

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

    # --- how a message leaves: the subclass's ----------------------------------------------

    def _next_seq(self) -> int:
        raise NotImplementedError

    def _send(self, suffix: str, body: JsonObject, qos: int) -> None:
        """Send the message `body` on the device's `suffix` topic."""
        raise NotImplementedError

    def _send_alert(self, alert_id: str, body: JsonObject) -> None:
        """Send the alert `body`, whose id is `alert_id`."""
        raise NotImplementedError

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
        return encode({"v": PROTOCOL_VERSION, "ts": now_ms(), "seq": self._next_seq(), **body})


class SimDevice(DeviceMessages):
    """A simulated device. Methods are safe to call from any thread.

    With `loop` it runs on that shared NetLoop (a fleet's); without, on a loop of its own.
    `bind_address` is the local address it connects from (127.0.0.x widens the port range).
    """

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
        loop: NetLoop | None = None,
        bind_address: str = "",
    ) -> None:
        if alert_retry_s <= 0:
            raise ValueError("alert_retry_s must be > 0")
        super().__init__(check_device_id(device_id), cancel_pin, duress_pin, position, fw)
        self.secret = secret
        self.host = host
        self.port = port
        self.protocol = protocol
        self.alert_retry_s = alert_retry_s
        self.keepalive = keepalive

        self._state = DeviceState(device_id, state_dir)
        self._log = CommandLog(device_id)
        self._listeners: list[CommandListener] = []
        self._link = DeviceLink(
            device_id,
            secret,
            host,
            port,
            protocol,
            keepalive,
            on_connack=self._state.mark_all_unsent,
            on_ready=self._on_ready,
            on_message=self._on_command,
            loop=loop,
            bind_address=bind_address,
        )
        self._resend: Timer | None = None  # touched on the loop's thread only

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<SimDevice {self.device_id} {state} {self.host}:{self.port} v{self.protocol}>"

    # --- connection -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Connected and subscribed to cmd: commands sent from now on arrive."""
        return self._link.ready

    @property
    def client(self) -> mqtt.Client:
        """The underlying paho client, for tests that need to reach below the protocol."""
        return self._link.client

    def connect(self, timeout: float = 10.0, *, wait: bool = True) -> None:
        """Connect (and keep reconnecting) in the background; by default wait until connected:
        CONNACK received and the cmd subscription acknowledged, so commands sent after this
        returns are delivered.

        Raises BrokerRefusedError if the broker refuses the connection or the subscription,
        TimeoutError if it does not answer in time; either way the background connection is
        stopped. With wait=False it returns at once and the device keeps trying, holding alerts
        in its outbox until the broker can be reached.
        """
        if self._link.running:
            raise RuntimeError(f"{self.device_id} is already connected or connecting")
        self._link.start()
        if not wait:
            return
        try:
            self._link.wait_ready(timeout, fail_on_refusal=True)
        except (BrokerRefusedError, TimeoutError):
            self._stop_background(send_disconnect=True)
            raise

    def wait_connected(self, timeout: float = 10.0, *, fail_on_refusal: bool = False) -> None:
        """Block until the (background) connection is up, e.g. after a broker restart; with
        fail_on_refusal, raise BrokerRefusedError as soon as the broker refuses it."""
        self._link.wait_ready(timeout, fail_on_refusal=fail_on_refusal)

    def disconnect(self, timeout: float = 2.0, *, announce_offline: bool = False) -> None:
        """Disconnect cleanly: the broker keeps the session and does not publish the last will.

        QoS 1 messages still in flight get up to `timeout` seconds to be acknowledged first.
        With announce_offline the device first publishes {"online":false} itself, as a device
        that is switched off properly might.
        """
        if not self._link.running:
            return
        if announce_offline:
            offline = encode(messages.status(False, now_ms()))
            self._link.publish(topic(self.device_id, STATUS), offline, 1, retain=True)
        self._link.drain(timeout)
        self._stop_background(send_disconnect=True)
        self._state.save()
        log.debug("%s disconnected", self.device_id)

    def kill(self) -> None:
        """Drop the connection without DISCONNECT, like a crash or lost signal: the broker
        publishes the last will. connect() works again afterwards."""
        if not self._link.running:
            return
        self._cancel_resend()
        self._link.kill()
        log.info("%s killed (connection dropped without DISCONNECT)", self.device_id)

    # --- device to service ------------------------------------------------------------------

    @property
    def pending_alerts(self) -> list[str]:
        """Ids of alerts not yet confirmed by `alert_received`, oldest first."""
        return self._state.pending_ids()

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
        self._link.publish(full_topic, data, qos, retain=retain)

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
        """Call `listener` with every command, on the network loop's thread (shared by a
        whole fleet): keep it short and never block in it."""
        self._listeners.append(listener)

    def remove_listener(self, listener: CommandListener) -> None:
        self._listeners.remove(listener)

    # --- internals --------------------------------------------------------------------------

    def _on_command(self, raw: bytes) -> None:
        command = Command.parse(raw)
        # React first: whoever waits for a command then finds its effect done (an alert
        # confirmed is already out of the saved outbox).
        self._react(command)
        self._log.append(command)
        for listener in list(self._listeners):
            listener(command)

    def _react(self, command: Command) -> None:
        if command.type == ALERT_RECEIVED:
            alert_id = command.payload.get("alert_id")
            if isinstance(alert_id, str) and self._state.remove_alert(alert_id):
                log.info("%s: alert %s confirmed by the service", self.device_id, alert_id)
        elif command.type == LOCATE:
            self.send_location(qos=1)

    def _on_ready(self) -> None:
        # On the loop: connected and subscribed, so the outbox goes out now.
        self._send_due_alerts()
        self._arm_resend()

    def _arm_resend(self) -> None:
        # On the loop: one timer per device, for the next alert due to go out again.
        if self._resend is not None:
            self._resend.cancel()
            self._resend = None
        if not self.connected or not self._link.running:
            return  # the next (re)connect sends the outbox and arms the timer again
        wait = self._state.seconds_to_next_due(time.monotonic(), self.alert_retry_s)
        if wait is not None:
            self._resend = self._link.loop.call_later(wait, self._on_resend_due)

    def _on_resend_due(self) -> None:
        self._resend = None
        self._send_due_alerts()
        self._arm_resend()

    def _cancel_resend(self) -> None:
        timer = self._resend
        if timer is not None:
            timer.cancel()

    def _send_due_alerts(self) -> None:
        if not self.connected:
            return  # held in the outbox; the next (re)connect sends it
        for pending in self._state.take_due(time.monotonic(), self.alert_retry_s):
            self._link.publish(topic(self.device_id, ALERT), pending.payload, 1)

    def _stop_background(self, *, send_disconnect: bool) -> None:
        self._cancel_resend()
        self._link.stop(send_disconnect=send_disconnect)

    def _next_seq(self) -> int:
        return self._state.next_seq()

    def _send(self, suffix: str, body: JsonObject, qos: int) -> None:
        self._link.publish(topic(self.device_id, suffix), self._encode(body), qos)

    def _send_alert(self, alert_id: str, body: JsonObject) -> None:
        # Into the outbox, out now if connected, and again until the service confirms it.
        self._state.add_alert(alert_id, self._encode(body))
        log.debug("%s raised %s alert %s", self.device_id, body["type"], alert_id)
        self._send_due_alerts()
        if self._link.running:
            self._link.loop.call_soon(self._arm_resend)


def _topic(device_id: str, suffix: str) -> str:
    # For publish_raw, whose `topic` argument hides the module-level function.
    return topic(device_id, suffix)
