"""One MQTT connection of the service: a persistent session, QoS 1, acknowledgement by hand.

paho's network thread calls `on_message`; the message is acknowledged (PUBACK) only when the
caller says its effect is committed, so a crash before that makes the broker deliver it again.
Subscriptions are renewed on every connect.
"""

from __future__ import annotations

import logging
import select
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from monitor.config import Settings
from monitor.protocol import Refusal

log = logging.getLogger(__name__)


class _Poll:
    """Stands for the `select` module in paho's client: its network loop calls
    `select.select()`, which refuses file descriptors past 1,023 (paho issue 819, open), and
    the service holds thousands (relayed worker apps, database connections). A socket made
    after that, on any reconnect, would leave the link down for good. This answers the same
    call with poll(), which has no such limit."""

    @staticmethod
    def select(
        rlist: list[Any], wlist: list[Any], xlist: list[Any], timeout: float | None = None
    ) -> tuple[list[Any], list[Any], list[Any]]:
        masks: dict[int, int] = {}
        for objects, mask in ((rlist, select.POLLIN), (wlist, select.POLLOUT)):
            for obj in objects:
                masks[_fd(obj)] = masks.get(_fd(obj), 0) | mask
        poller = select.poll()
        for fd, mask in masks.items():
            poller.register(fd, mask)
        events = dict(poller.poll(None if timeout is None else timeout * 1000))
        failed = select.POLLERR | select.POLLHUP | select.POLLNVAL
        readable = [o for o in rlist if events.get(_fd(o), 0) & (select.POLLIN | failed)]
        writable = [o for o in wlist if events.get(_fd(o), 0) & (select.POLLOUT | failed)]
        return readable, writable, []


def _fd(obj: Any) -> int:
    """A file descriptor, refused as select() refuses it (paho reads either error as a lost
    connection)."""
    if not isinstance(obj, int):
        if not hasattr(obj, "fileno"):
            raise TypeError("not a socket")
        obj = obj.fileno()
    if obj < 0:
        raise ValueError("negative file descriptor")
    return int(obj)


mqtt.select = _Poll  # type: ignore[assignment, attr-defined]


class Acks(Protocol):
    """The connection a message came on, which acknowledges it (`MqttLink`, `BulkLink`)."""

    def ack(self, mid: int, qos: int, generation: int) -> None: ...


# Not frozen: one is made per message, and a frozen dataclass's __init__ sets each field
# through object.__setattr__, which costs several times as much.
@dataclass(slots=True)
class Incoming:
    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    link: Acks
    generation: int

    def ack(self) -> None:
        self.link.ack(self.mid, self.qos, self.generation)

    def refused(self, refusal: Refusal) -> None:
        """Nothing to do: the device hears `rejected`, and the refusal is recorded."""


class MqttLink:
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
        # Topics an earlier configuration subscribed this session to: the broker keeps a
        # session's subscriptions, so they are taken back on every connect.
        self.drop = drop or []
        self._on_message = on_message
        self.connected = threading.Event()
        # Set once the broker has confirmed the subscriptions and the dropping of `drop`.
        self.subscribed = threading.Event()
        self.dropped = threading.Event()
        # Set when a link that does not reconnect has lost its connection (to another client
        # taking its session, or to the network).
        self.ended = threading.Event()
        self.reconnect = reconnect
        # QoS 1 messages of this connection not yet acknowledged: a session is ended only
        # when nothing it delivered is still unsaved.
        self._unacked: set[int] = set()
        self._sub_mid: int | None = None
        self._drop_mid: int | None = None
        # Bumped on every connect: an ack for a message of an earlier connection must not
        # go out, since its message id may now name another, unprocessed message.
        self.generation = 0
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=reconnect,
        )
        if settings.mqtt_password:
            c.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        if settings.mqtt_tls_ca:
            c.tls_set(ca_certs=settings.mqtt_tls_ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # Commands go out in bursts (one per copy of an alert); never drop one client-side.
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 10)
        c.on_connect = self._connected
        c.on_disconnect = self._disconnected
        c.on_message = self._message
        c.on_subscribe = self._subscribed
        c.on_unsubscribe = self._unsubscribed
        self.client = c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.mqtt_session_expiry_s
        props.ReceiveMaximum = 65535
        self.client.connect_async(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=30,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self, *, end_session: bool = False) -> None:
        """Disconnect. The broker keeps the session (and queues for it) unless `end_session`,
        which is for a service that will not come back under this name."""
        props = None
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()
        self.connected.clear()

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    def ack(self, mid: int, qos: int, generation: int) -> None:
        if qos > 0 and generation == self.generation:
            self._unacked.discard(mid)
            self.client.ack(mid, qos)

    def _connected(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("MQTT %s refused by the broker: %s", self.client_id, reason)
            return
        log.info("MQTT %s connected (session present: %s)", self.client_id, flags.session_present)
        self.generation += 1
        self._unacked.clear()
        if self.topics:
            self._sub_mid = client.subscribe(self.topics)[1]
        else:
            self.subscribed.set()
        if self.drop:
            self._drop_mid = client.unsubscribe(self.drop)[1]
        else:
            self.dropped.set()
        self.connected.set()

    def _subscribed(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if mid == self._sub_mid:
            self.subscribed.set()

    def _unsubscribed(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        props: Properties | None,
    ) -> None:
        if mid == self._drop_mid:
            self.dropped.set()

    def _disconnected(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        self.connected.clear()
        if not self.reconnect:
            self.ended.set()
        elif reason.is_failure:
            log.warning("MQTT %s disconnected: %s; reconnecting", self.client_id, reason)

    def _message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.qos > 0:
            self._unacked.add(msg.mid)
        self._on_message(
            Incoming(
                msg.topic, bytes(msg.payload), msg.qos, msg.mid, msg.retain, self, self.generation
            )
        )


def client_id_of(settings: Settings, name: str) -> str:
    return f"vigil-{settings.mqtt_node}-{name}"


def subscription(
    settings: Settings, suffix: str, *, retained_once: bool = False, group: str = ""
) -> tuple[str, SubscribeOptions]:
    topic = f"vigil/v1/+/{suffix}"
    group = group or settings.mqtt_shared_group
    if group:
        topic = f"$share/{group}/{topic}"
    # For `status`, retained messages are wanted once (current presence at first start), not
    # again on every reconnect. No other message is retained by contract: a stored one would
    # be handled again as new at every start, so none is taken (2). The retain flag is kept
    # as published, so that a live one can be cleared.
    return topic, SubscribeOptions(
        qos=1, retainHandling=1 if retained_once else 2, retainAsPublished=True
    )


def is_status(topic: str) -> bool:
    return topic.endswith("/status")
