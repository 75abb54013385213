"""The worker app's relay (worker_app/relay.py): MQTT over WebSocket at /mqtt, through to the
real Mosquitto. The broker, not the relay, decides who may connect and what each may do."""

from __future__ import annotations

import json
import logging
import queue
import socket
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import WebsocketConnectionError
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from monitor.alerts.models import Alert
from monitor.broker import MosquittoProcess, TlsListener, free_port, wait_for_port, write_config
from monitor.db import Store
from monitor.migrate import upgrade
from tests.support import (
    SERVICE_PASSWORD,
    SERVICE_USER,
    WAIT_S,
    Badge,
    Broker,
    Running,
    add_badge,
    make_pki,
    running,
    service_settings,
    wait_until,
)


class AppClient:
    """A worker app's MQTT connection as the app makes it: MQTT 3.1.1 over a WebSocket to the
    service's /mqtt (paho's websockets transport, subprotocol mqtt), client id = username."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        path: str = "/mqtt",
        headers: dict[str, str] | None = None,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.username = username
        self.connacks: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=username,
            protocol=mqtt.MQTTv311,
            transport="websockets",
        )
        c.ws_set_options(path=path, headers=headers)
        # paho's 5 s for the socket and the handshake: a loaded test machine has taken longer.
        c.connect_timeout = 20.0
        c.username_pw_set(username, password)
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=True)
        c.on_connect = lambda _c, _u, _f, rc, _p: self.connacks.put(rc)
        c.on_subscribe = lambda _c, _u, _m, rcs, _p: self.subacks.put(rcs)
        c.on_message = lambda _c, _u, m: self.inbox.put((m.topic, m.payload))
        self.client = c

    def connect(self, timeout: float = 20.0) -> ReasonCode:
        """The broker's answer to CONNECT, as it comes back through the relay."""
        self.client.connect(self.host, self.port, keepalive=60)
        self.client.loop_start()
        rc = self.connacks.get(timeout=timeout)
        if rc.is_failure:
            self.client.loop_stop()  # or paho would try again and again
        return rc

    def subscribe(self, topic: str) -> list[ReasonCode]:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)

    def wait_command(self, type: str, alert_id: str) -> dict[str, Any]:
        """The first command of `type` about `alert_id` on this device's own cmd topic."""
        own = f"vigil/v1/{self.username}/cmd"
        deadline = time.monotonic() + 10
        while True:
            topic, payload = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append((topic, payload))
            body = json.loads(payload)
            if topic == own and body.get("type") == type and body.get("alert_id") == alert_id:
                return dict(body)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def app_device(svc: Running, prefix: str) -> Badge:
    """A registered device the broker knows (no connection yet)."""
    b = add_badge(svc.store, f"{prefix}-{uuid.uuid4().hex[:6]}")
    svc.broker.load_registry(svc.store)
    return b


def connected_app(base_url: str, b: Badge, **kw: Any) -> AppClient:
    """An app connected through the relay (retried while Mosquitto re-reads its passwords)."""
    deadline = time.monotonic() + 10
    while True:
        app = AppClient(base_url, b.device_id, b.secret, **kw)
        rc = app.connect()
        if not rc.is_failure:
            return app
        app.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"the broker refused {b.device_id}: {rc}")
        time.sleep(0.2)


def alert_body(alert_id: str) -> dict[str, Any]:
    return {
        "v": 1,
        "ts": int(time.time() * 1000),
        "id": alert_id,
        "type": "red",
        "trigger": "app",
        "loc": {"lat": 51.5, "lon": -0.12, "acc": 8},
    }


def relay_open(svc: Running) -> int:
    connections: int = svc.service.app.state.relay.connections
    return connections


def test_an_app_raises_an_alert_through_the_relay(
    svc: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = svc.serve_http()
    b = app_device(svc, "app-a")
    app = connected_app(url, b)
    try:
        assert app.subscribe(f"vigil/v1/{b.device_id}/cmd")[0].value == 1  # granted, QoS 1
        alert_id = f"app-{uuid.uuid4().hex[:12]}"
        app.publish(f"vigil/v1/{b.device_id}/alert", alert_body(alert_id))
        app.wait_command("alert_received", alert_id)
        assert relay_open(svc) == 1
    finally:
        app.close()
    with svc.store.session() as db:
        (row,) = db.scalars(select(Alert).where(Alert.device_id == b.device_id))
    assert (row.device_alert_id, row.type, row.lat) == (alert_id, "red", 51.5)
    wait_until(lambda: relay_open(svc) == 0, what="the relayed connection to end")
    # CONNECT carried the secret through the relay: nothing of it in any log line.
    assert b.secret not in caplog.text


def test_through_the_relay_a_device_is_still_kept_to_its_own_topics(svc: Running) -> None:
    url = svc.serve_http()
    victim, vb = svc.badge("badge-victim")  # a badge on the broker's TCP listener
    b = app_device(svc, "app-intruder")
    app = connected_app(url, b)
    try:
        app.subscribe(f"vigil/v1/{b.device_id}/cmd")
        # Mosquitto grants a subscription to another's commands but delivers none of them.
        app.subscribe(f"vigil/v1/{vb.device_id}/cmd")
        theirs = victim.raise_alert(type="test")
        victim.wait_for("alert_received", alert_id=theirs, timeout=10)

        # An alert forged in the victim's name: the broker takes it (QoS 1) and drops it.
        app.publish(f"vigil/v1/{vb.device_id}/alert", alert_body("forged-through-relay"))
        # Had it reached the service, it would be stored before the victim's next alert (one
        # device's messages are handled in order).
        again = victim.raise_alert(type="test")
        victim.wait_for("alert_received", alert_id=again, timeout=10)

        # The app's own answer comes after the victim's answers were sent: had the broker
        # delivered those to the app, they would have come first.
        own = f"app-{uuid.uuid4().hex[:12]}"
        app.publish(f"vigil/v1/{b.device_id}/alert", alert_body(own))
        app.wait_command("alert_received", own)
        assert [t for t, _ in app.seen if t != f"vigil/v1/{b.device_id}/cmd"] == []
    finally:
        app.close()
    with svc.store.session() as db:
        ids = set(db.scalars(select(Alert.device_alert_id)))
    assert ids == {theirs, again, own}


def test_through_the_relay_wrong_credentials_are_refused_by_the_broker(svc: Running) -> None:
    url = svc.serve_http()
    b = app_device(svc, "app-pw")
    connected_app(url, b).close()  # the broker knows the device by now
    for username, password in (
        (b.device_id, "not-the-secret-" + uuid.uuid4().hex),
        (b.device_id, ""),
        ("no-such-device", b.secret),
    ):
        app = AppClient(url, username, password)
        rc = app.connect()
        app.close()
        assert rc.is_failure and any(w in str(rc).lower() for w in ("authori", "password")), rc
    # The broker closed each refused connection, and the relay the websocket with it.
    wait_until(lambda: relay_open(svc) == 0, what="refused connections to end")


def test_nothing_in_the_request_chooses_where_the_relay_connects(svc: Running) -> None:
    url = svc.serve_http()
    decoy = socket.socket()
    decoy.bind(("127.0.0.1", 0))
    decoy.listen()
    decoy.setblocking(False)

    def steering(port: int) -> tuple[str, dict[str, str]]:
        """A query and headers naming 127.0.0.1:port every way a relay might read them."""
        where = f"127.0.0.1:{port}"
        query = f"?host=127.0.0.1&port={port}&target={where}&broker=mqtt://{where}"
        headers = {
            "Host": where,
            "X-Forwarded-Host": where,
            "X-Forwarded-Port": str(port),
            "Forwarded": f"host={where}",
            "X-Mqtt-Broker": where,
        }
        return "/mqtt" + query, headers

    try:
        # The service's own account is good on the service's listener, straight over TCP...
        direct = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"relay-probe-{uuid.uuid4().hex[:6]}",
        )
        direct.username_pw_set(SERVICE_USER, SERVICE_PASSWORD)
        answers: queue.Queue[ReasonCode] = queue.Queue()
        direct.on_connect = lambda _c, _u, _f, rc, _p: answers.put(rc)
        direct.connect(svc.broker.host, svc.broker.service_port)
        direct.loop_start()
        try:
            assert not answers.get(timeout=10).is_failure
        finally:
            direct.loop_stop()
            direct.disconnect()
        # ...but through the relay, however the request names that listener, it reaches the
        # devices' listener, which does not know it.
        path, headers = steering(svc.broker.service_port)
        app = AppClient(url, SERVICE_USER, SERVICE_PASSWORD, path=path, headers=headers)
        rc = app.connect()
        app.close()
        assert rc.is_failure, rc

        # A device naming the decoy reaches the broker all the same; the decoy hears nothing.
        b = app_device(svc, "app-steer")
        path, headers = steering(decoy.getsockname()[1])
        app = connected_app(url, b, path=path, headers=headers)
        app.close()
        with pytest.raises(BlockingIOError):
            decoy.accept()

        # No other path relays anywhere.
        for other in (f"/mqtt/127.0.0.1/{decoy.getsockname()[1]}", "/mqtt/", "/ws/mqtt"):
            with pytest.raises(WebsocketConnectionError):
                AppClient(url, b.device_id, b.secret, path=other).connect()
        with pytest.raises(BlockingIOError):
            decoy.accept()
    finally:
        decoy.close()


def test_a_closed_websocket_closes_its_broker_connection(svc: Running) -> None:
    """The phone vanishes (its connection ends without DISCONNECT or a close frame): the
    relay ends the broker connection, and the broker publishes the device's last will."""
    url = svc.serve_http()
    b = app_device(svc, "app-gone")
    status = f"vigil/v1/{b.device_id}/status"
    # The service account may read every device's topics, on its own listener.
    heard: queue.Queue[bytes] = queue.Queue()
    observer = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"relay-observer-{uuid.uuid4().hex[:6]}",
    )
    observer.username_pw_set(SERVICE_USER, SERVICE_PASSWORD)
    observer.on_message = lambda _c, _u, m: heard.put(m.payload)
    subscribed: queue.Queue[object] = queue.Queue()
    observer.on_subscribe = lambda *args: subscribed.put(args)
    observer.connect(svc.broker.host, svc.broker.service_port)
    observer.loop_start()
    try:
        observer.subscribe(status, qos=1)
        subscribed.get(timeout=10)
        will = json.dumps({"v": 1, "online": False}).encode()
        app = connected_app(url, b, will=(status, will))
        app.publish(status, {"v": 1, "online": True, "ts": int(time.time() * 1000)})
        assert json.loads(heard.get(timeout=10))["online"] is True
        assert relay_open(svc) == 1

        # keepalive is 60 s: a will within the wait below comes from the closed connection.
        app.client.loop_stop()
        sock = app.client.socket()
        assert sock is not None
        with socket.fromfd(sock.fileno(), socket.AF_INET, socket.SOCK_STREAM) as same:
            same.shutdown(socket.SHUT_RDWR)
        assert heard.get(timeout=10) == will
        wait_until(lambda: relay_open(svc) == 0, what="the relay to let the connection go")
        sock.close()
    finally:
        # Leave no retained status for later tests' services.
        observer.publish(status, b"", qos=1, retain=True).wait_for_publish(10)
        observer.loop_stop()
        observer.disconnect()


def test_only_binary_frames_of_mqtt_pass(svc: Running) -> None:
    url = svc.serve_http().replace("http://", "ws://") + "/mqtt"
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url, open_timeout=WAIT_S)  # no subprotocol mqtt
    assert refused.value.response.status_code == 403
    with ws_connect(url, subprotocols=["mqtt"], open_timeout=WAIT_S) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "mqtt"
        ws.send("CONNECT as text")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    # Nor may one message be larger than the broker would take a packet.
    with ws_connect(url, subprotocols=["mqtt"], open_timeout=WAIT_S) as ws:  # type: ignore[list-item]
        ws.send(b"\x30" + b"\xff" * (1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    wait_until(lambda: relay_open(svc) == 0, what="the broker connections to close")


def test_a_connection_that_never_logs_in_is_closed(mqtt_broker: Broker, tmp_path: Path) -> None:
    # The relay touches no database: SQLite only.
    db_url = f"sqlite:///{tmp_path / 'vigil.db'}"
    settings = service_settings(tmp_path / "data", db_url, mqtt_broker, relay_login_s=0.5)
    with running(settings, mqtt_broker) as svc:
        base = svc.serve_http()
        with (
            ws_connect(
                base.replace("http://", "ws://") + "/mqtt",
                subprotocols=["mqtt"],  # type: ignore[list-item]
                open_timeout=WAIT_S,
            ) as ws,
            pytest.raises(ConnectionClosed) as closed,
        ):
            ws.recv(timeout=30)  # sends no CONNECT
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        wait_until(lambda: relay_open(svc) == 0, what="the broker connection to close")
        # One that does log in stays, past the wait.
        b = app_device(svc, "app-login")
        app = connected_app(base, b)
        try:
            time.sleep(2 * settings.relay_login_s)
            alert_id = f"app-{uuid.uuid4().hex[:12]}"
            app.subscribe(f"vigil/v1/{b.device_id}/cmd")
            app.publish(f"vigil/v1/{b.device_id}/alert", alert_body(alert_id))
            app.wait_command("alert_received", alert_id)
        finally:
            app.close()


def refusal(ws_url: str, source: str = "127.0.0.1") -> str:
    """Why the relay closed a new connection from `source` as soon as it opened (code 1013,
    try again later)."""
    with (
        ws_connect(
            ws_url,
            subprotocols=["mqtt"],  # type: ignore[list-item]
            open_timeout=WAIT_S,
            source_address=(source, 0),
        ) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    return closed.value.rcvd.reason


def test_the_relay_caps_connections_per_address_and_in_all(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'vigil.db'}"  # the relay touches no database
    settings = service_settings(
        tmp_path / "data", db_url, mqtt_broker, relay_max_connections=3, relay_max_per_address=2
    )
    with running(settings, mqtt_broker) as svc:
        url = svc.serve_http()
        ws_url = url.replace("http://", "ws://") + "/mqtt"
        apps = [connected_app(url, app_device(svc, f"app-cap{i}")) for i in range(2)]
        try:
            assert "this address" in refusal(ws_url)
            # Another address may still come in, up to the cap on all connections.
            with ws_connect(
                ws_url,
                subprotocols=["mqtt"],  # type: ignore[list-item]
                open_timeout=WAIT_S,
                source_address=("127.0.0.2", 0),
            ):
                wait_until(lambda: relay_open(svc) == 3, what="a third connection relayed")
                assert "full" in refusal(ws_url, "127.0.0.3")
            # Connections that end make room again.
            apps.pop().close()
            wait_until(lambda: relay_open(svc) == 1, what="the closed connections to go")
            with ws_connect(ws_url, subprotocols=["mqtt"], open_timeout=WAIT_S):  # type: ignore[list-item]
                wait_until(lambda: relay_open(svc) == 2, what="a new connection relayed")
        finally:
            for app in apps:
                app.close()


def test_the_relay_reaches_a_tls_listener_for_devices(tmp_path: Path) -> None:
    """With VIGIL_MQTT_DEVICE_TLS_CA the relay speaks TLS to the broker, checking its
    certificate; an app raises an alert through it."""
    pki = make_pki(tmp_path / "pki")
    db_url = f"sqlite:///{tmp_path / 'vigil.db'}"
    store = Store(db_url)
    upgrade(store)
    b = add_badge(store, f"app-tls-{uuid.uuid4().hex[:6]}")
    brk = Broker(tmp_path / "mosquitto")
    tls_port = free_port()
    with store.session() as db:
        files = write_config(
            db, brk.dir, brk.port, SERVICE_USER, SERVICE_PASSWORD,
            tls=TlsListener(tls_port, pki / "server.crt", pki / "server.key", bind="127.0.0.1"),
            service_port=brk.service_port,
        )  # fmt: skip
    store.dispose()
    brk.process = MosquittoProcess(files.conf, brk.port)
    brk.process.start()
    try:
        assert wait_for_port("127.0.0.1", tls_port, 10)
        settings = service_settings(
            tmp_path / "data",
            db_url,
            brk,
            mqtt_device_port=tls_port,
            mqtt_device_tls_ca=str(pki / "ca.crt"),
        )
        with running(settings, brk) as svc:
            app = connected_app(svc.serve_http(), b)
            try:
                app.subscribe(f"vigil/v1/{b.device_id}/cmd")
                alert_id = f"app-{uuid.uuid4().hex[:12]}"
                app.publish(f"vigil/v1/{b.device_id}/alert", alert_body(alert_id))
                app.wait_command("alert_received", alert_id)
            finally:
                app.close()
    finally:
        brk.stop()
