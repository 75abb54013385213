"""The telemetry session's own MQTT reader (monitor/ingest/bulklink.py) against a real
Mosquitto, with paho as the other client: what is acknowledged is never delivered again,
what is not comes back on the next connection, publishes are confirmed, TLS is verified."""

from __future__ import annotations

import contextlib
import getpass
import os
import queue
import secrets
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from monitor.broker import MosquittoProcess, free_port
from monitor.config import Settings
from monitor.ingest import wire
from monitor.ingest.bulklink import BulkLink
from monitor.ingest.link import Incoming, MqttLink
from tests.support import make_pki, openssl, wait_until


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """A Mosquitto with a plain listener and a TLS one (a throwaway CA, a server certificate
    for 127.0.0.1): (plain port, TLS port, the CA's certificate)."""
    d = make_pki(tmp_path / "pki")
    port, tls_port = free_port(), free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        "per_listener_settings true\n"
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        f"listener {tls_port} 127.0.0.1\nallow_anonymous true\n"
        f"certfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}\n"
        "max_queued_messages 100000\n"
        # As root, Mosquitto would drop to a user who cannot read the test's files.
        + (f"user {getpass.getuser()}\n" if os.geteuid() == 0 else "")
    )
    broker = MosquittoProcess(conf, port)
    broker.start()
    try:
        yield port, tls_port, d / "ca.crt"
    finally:
        broker.stop()


def publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="pub-" + uuid.uuid4().hex[:8],
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def link(port: int, node: str, got: queue.SimpleQueue[Incoming], ca: str = "") -> BulkLink:
    settings = Settings(
        mqtt_host="127.0.0.1",
        mqtt_port=port,
        mqtt_node=node,
        mqtt_tls_ca=ca,
        mqtt_session_expiry_s=600,
        secret_key="test-secret-" + secrets.token_hex(16),
    )
    topics = [("bulk/#", SubscribeOptions(qos=1, retainHandling=2))]
    return BulkLink(settings, "telemetry", topics, got.put)


def take(got: queue.SimpleQueue[Incoming], n: int) -> list[Incoming]:
    return [got.get(timeout=10) for _ in range(n)]


@pytest.mark.parametrize("tls", [False, True])
def test_what_is_acknowledged_stays_taken_and_the_rest_comes_again(
    brokers: tuple[int, int, Path], tls: bool
) -> None:
    port, tls_port, ca = brokers
    node = "b" + uuid.uuid4().hex[:8]
    got: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
    first = link(tls_port if tls else port, node, got, str(ca) if tls else "")
    first.start()
    assert first.subscribed.wait(10)
    pub = publisher(port)
    # More than one read's worth, so packets are split across reads.
    payloads = [(b"x" * 300) + str(i).encode() for i in range(3000)]
    for p in payloads:
        pub.publish("bulk/a", p, qos=1)
    messages = take(got, len(payloads))
    assert [m.payload for m in messages] == payloads
    assert {m.topic for m in messages} == {"bulk/a"} and all(m.qos == 1 for m in messages)
    for m in messages[:2000]:
        m.ack()
    # A publish of the link's own is confirmed by the broker.
    handle = first.publish("other/topic", b"hello")
    wait_until(handle.is_published, timeout=10, what="the broker's PUBACK")
    assert first.unacked == 1000
    first.stop()

    # The same session again: the 1,000 not acknowledged come back, and only they.
    again = link(tls_port if tls else port, node, got, str(ca) if tls else "")
    again.start()
    back = take(got, 1000)
    assert sorted(m.payload for m in back) == sorted(payloads[2000:])
    for m in back:
        m.ack()
    pub.publish("bulk/b", b"after", qos=1).wait_for_publish(10)
    assert got.get(timeout=10).payload == b"after"
    with pytest.raises(queue.Empty):
        got.get(timeout=0.5)
    again.stop(end_session=True)
    pub.loop_stop()
    pub.disconnect()


def test_a_broker_it_cannot_verify_is_not_spoken_to(
    brokers: tuple[int, int, Path], tmp_path: Path
) -> None:
    _, tls_port, _ = brokers
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out",
            "other.crt", "-days", "1", "-subj", "/CN=Another CA", cwd=tmp_path)  # fmt: skip
    got: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
    untrusting = link(tls_port, "u" + uuid.uuid4().hex[:8], got, str(tmp_path / "other.crt"))
    untrusting.start()
    assert not untrusting.connected.wait(2)
    untrusting.stop()


def test_messages_in_the_same_read_as_the_connack_are_delivered(tmp_path: Path) -> None:
    """A resumed session's unacknowledged messages follow the CONNACK at once, often in the
    same TCP segment. A broker that writes them together, scripted here to make it certain
    (Mosquitto does it under load): they are handed over, and acknowledged."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    received = bytearray()

    def broker() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)  # CONNECT
            connack = b"\x20\x03\x01\x00\x00"  # session present, success, no properties
            conn.sendall(connack + wire.publish("bulk/a", b"held", 1, 7, retain=False))
            conn.settimeout(10)
            while wire.puback(7) not in received:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                received.extend(chunk)

    thread = threading.Thread(target=broker, daemon=True)
    thread.start()
    got: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
    scripted = link(port, "s" + uuid.uuid4().hex[:8], got)
    scripted.start()
    message = got.get(timeout=10)
    assert (message.topic, message.payload, message.mid) == ("bulk/a", b"held", 7)
    message.ack()
    thread.join(10)
    assert wire.puback(7) in received
    scripted.stop()
    server.close()


@contextlib.contextmanager
def many_open_files() -> Iterator[None]:
    """1,200 descriptors open, as in a service relaying many worker apps: a socket made now is
    numbered past 1,023, where select() refuses it."""
    held = [socket.socketpair() for _ in range(600)]
    try:
        yield
    finally:
        for a, b in held:
            a.close()
            b.close()


def one_message_through(
    port: int, receiver: BulkLink | MqttLink, got: queue.SimpleQueue[Incoming]
) -> None:
    """A message published to the started `receiver` reaches it; then it is stopped."""
    assert receiver.subscribed.wait(10)
    pub = publisher(port)
    pub.publish("bulk/high", b"read", qos=1).wait_for_publish(10)
    message = got.get(timeout=10)
    assert message.payload == b"read"
    message.ack()
    receiver.stop(end_session=True)
    pub.loop_stop()
    pub.disconnect()


def test_it_reads_with_more_than_1024_files_open(brokers: tuple[int, int, Path]) -> None:
    """The telemetry reader waits on epoll. The first fresh-clone run of it failed so."""
    port, _, _ = brokers
    with many_open_files():
        got: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        high = link(port, "h" + uuid.uuid4().hex[:8], got)
        high.start()
        one_message_through(port, high, got)


def test_the_urgent_link_reads_with_more_than_1024_files_open(
    brokers: tuple[int, int, Path],
) -> None:
    """paho's network loop calls select() (paho issue 819); monitor.ingest.link answers it
    with poll(). Both clients here, the publisher too, are made with the descriptors open,
    as a reconnect would be in a service with many relayed apps."""
    port, _, _ = brokers
    with many_open_files():
        got: queue.SimpleQueue[Incoming] = queue.SimpleQueue()
        settings = link(port, "p" + uuid.uuid4().hex[:8], got).settings
        urgent = MqttLink(settings, "urgent", [("bulk/#", SubscribeOptions(qos=1))], got.put)
        urgent.start()
        one_message_through(port, urgent, got)
