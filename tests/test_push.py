"""Web Push to the worker app: the test is the browser (its own P-256 key and auth secret,
subscribed through the real API) and the push service (a local HTTPS server that records
what it is sent); the real pywebpush sends, a device_sim badge drives visits and alerts."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from monitor.devices import service as devices
from monitor.devices.models import DeviceCommand
from tests.support import Broker, Running, running, service_settings, wait_until
from worker_app.models import PushSubscription
from worker_app.push_sender import Pusher


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakePushService:
    """A push service at its HTTP boundary: records each request, and answers a path with
    the codes in `answers[path]` in turn, the last one for good (201 Created by default)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def pushes(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if path is None or r.path == path]


@pytest.fixture
def push_service(tmp_path: Path) -> Iterator[tuple[FakePushService, Path]]:
    """The fake over TLS, with a throwaway self-signed certificate for 127.0.0.1."""
    d = tmp_path / "tls"
    d.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
         "-out", "cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        cwd=d, check=True, capture_output=True,
    )  # fmt: skip
    fake = FakePushService()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with fake.lock:
                fake.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                codes = fake.answers.get(self.path, [201])
                code = codes.pop(0) if len(codes) > 1 else codes[0]
            self.send_response(code)
            if code == 429:
                self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, d / "cert.pem"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def svc(
    db_url: str,
    mqtt_broker: Broker,
    tmp_path: Path,
    push_service: tuple[FakePushService, Path],
) -> Iterator[Running]:
    _, cert = push_service
    settings = service_settings(
        tmp_path / "data",
        db_url,
        mqtt_broker,
        push_services="127.0.0.1",
        push_tls_ca=str(cert),
        push_subject="mailto:safety@example.org",
    )
    with running(settings, mqtt_broker) as r:
        yield r


@pytest.fixture
def fake(push_service: tuple[FakePushService, Path]) -> FakePushService:
    return push_service[0]


class Browser:
    """What a browser keeps for a push subscription: its key pair and auth secret."""

    def __init__(self, fake: FakePushService) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.path = f"/wpush/{uuid.uuid4().hex}"
        self.endpoint = fake.origin + self.path

    def subscription(self) -> dict[str, Any]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }

    def read(self, push: Received) -> Any:
        assert push.headers["content-encoding"] == "aes128gcm"
        clear = http_ece.decrypt(
            push.body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(clear)


def subscribe(svc: Running, device_id: str, secret: str, body: Any) -> int:
    r = svc.http.post(f"/api/v1/devices/{device_id}/push", json=body, auth=(device_id, secret))
    return r.status_code


def subscriptions(svc: Running) -> list[PushSubscription]:
    with svc.store.session() as db:
        return list(db.scalars(select(PushSubscription)).all())


def pusher(svc: Running) -> Pusher:
    (found,) = [r for r in svc.service.app.state.runners if isinstance(r, Pusher)]
    return found


def served_key(svc: Running) -> str:
    key = svc.http.get("/app/config.json").json()["vapid_public_key"]
    assert isinstance(key, str) and len(unb64url(key)) == 65
    return key


def check_vapid(push: Received, public_key: str, origin: str) -> None:
    """A valid RFC 8292 header: signed by the served key, for the push service's origin."""
    scheme, _, params = push.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert fields["k"] == public_key
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(public_key))
    claims = jwt.decode(fields["t"], key, algorithms=["ES256"], audience=origin)
    assert claims["sub"] == "mailto:safety@example.org"


def test_visit_due_and_help_on_the_way_reach_the_phone(svc: Running, fake: FakePushService) -> None:
    badge, b = svc.badge("phone-p1")
    browser = Browser(fake)
    assert subscribe(svc, b.device_id, b.secret, browser.subscription()) == 204
    public_key = served_key(svc)

    # Started 59 s ago for 60 s: due in about a second.
    badge.publish_raw(
        "visit",
        json.dumps(
            {"v": 1, "ts": int((time.time() - 59) * 1000), "id": "visit-p1",
             "action": "start", "duration_s": 60, "note": "Flat 3, 12 Elm St"}
        ),
        qos=1,
    )  # fmt: skip
    badge.wait_for("visit_due", visit_id="visit-p1", timeout=15)
    (push,) = wait_until(lambda: fake.pushes(browser.path), timeout=10, what="the visit push")
    assert browser.read(push) == {
        "title": "Your visit time is up",
        "body": "Check in, extend or get help.",
        "tag": "visit_due:visit-p1",
    }
    check_vapid(push, public_key, fake.origin)
    assert push.headers["urgency"] == "high" and int(push.headers["ttl"]) > 0

    # Back online, the phone is told again that the visit is due: that is not pushed again.
    badge.disconnect(announce_offline=True)
    badge.connect()
    wait_until(
        lambda: len([c for c in badge.commands if c.type == "visit_due"]) >= 2,
        timeout=15,
        what="visit_due told again",
    )

    alert_id = badge.raise_alert()
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user()
    row = next(a for a in svc.http.get("/api/v1/alerts", headers=ops).json() if a["type"] == "red")
    assert svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops).status_code == 200
    badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
    pushes = wait_until(
        lambda: fake.pushes(browser.path)[1:], timeout=10, what="the help-on-the-way push"
    )
    assert browser.read(pushes[0]) == {
        "title": "Help is on the way",
        "body": "The monitoring centre has taken charge of your alert.",
        "tag": f"alert_acknowledged:{alert_id}",
    }
    check_vapid(pushes[0], public_key, fake.origin)
    assert len(fake.pushes(browser.path)) == 2
    # Nothing in a push names the worker or the place.
    for p in fake.pushes():
        said = json.dumps(browser.read(p))
        assert "Elm" not in said and "Alex" not in said


def test_a_gone_subscription_is_deleted(svc: Running, fake: FakePushService) -> None:
    badge, b = svc.badge("phone-p2")
    browser = Browser(fake)
    fake.answers[browser.path] = [410]
    assert subscribe(svc, b.device_id, b.secret, browser.subscription()) == 204
    assert len(subscriptions(svc)) == 1
    alert_id = badge.raise_alert()
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user()
    (row,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops)
    wait_until(lambda: not subscriptions(svc), timeout=10, what="the subscription deleted")
    assert len(fake.pushes(browser.path)) == 1  # one try: 410 is not retried


def test_a_duress_alert_acknowledged_sends_nothing(svc: Running, fake: FakePushService) -> None:
    badge, b = svc.badge("phone-p3")
    browser = Browser(fake)
    assert subscribe(svc, b.device_id, b.secret, browser.subscription()) == 204
    ops = svc.user()

    forced = badge.raise_alert()
    badge.wait_for("alert_received", alert_id=forced, timeout=10)
    badge.cancel_alert(forced, b.duress_pin)
    badge.wait_for("alert_cancelled", alert_id=forced, timeout=10)
    (duress,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    assert duress["duress"] is True
    r = svc.http.post(f"/api/v1/alerts/{duress['id']}/acknowledge", headers=ops)
    assert r.status_code == 200

    # Then an ordinary alert, acknowledged: its push is the only one that arrives.
    real = badge.raise_alert()
    badge.wait_for("alert_received", alert_id=real, timeout=10)
    row = next(
        a for a in svc.http.get("/api/v1/alerts", headers=ops).json() if a["id"] != duress["id"]
    )
    svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops)
    badge.wait_for("alert_acknowledged", alert_id=real, timeout=10)
    (push,) = wait_until(lambda: fake.pushes(browser.path), timeout=10, what="the real push")
    assert browser.read(push)["tag"] == f"alert_acknowledged:{real}"
    assert [browser.read(p)["tag"] for p in fake.pushes()] == [f"alert_acknowledged:{real}"]


def test_a_disabled_device_is_pushed_nothing_and_forgotten(
    svc: Running, fake: FakePushService
) -> None:
    badge, b = svc.badge("phone-p4")
    browser = Browser(fake)
    assert subscribe(svc, b.device_id, b.secret, browser.subscription()) == 204
    alert_id = badge.raise_alert()
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    with svc.store.begin() as db:
        devices.set_enabled(db, b.device_id, False)
    ops = svc.user()
    (row,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops)
    with svc.store.session() as db:
        assert db.scalar(
            select(DeviceCommand.id).where(
                DeviceCommand.device_id == b.device_id, DeviceCommand.type == "alert_acknowledged"
            )
        )
    wait_until(lambda: not subscriptions(svc), timeout=10, what="the subscription deleted")
    assert fake.pushes() == []

    # `vigil device disable` runs in another process: the sweep finds what it disabled.
    _, c = svc.badge("phone-p5")
    assert subscribe(svc, c.device_id, c.secret, Browser(fake).subscription()) == 204
    with svc.store.begin() as db:
        devices.set_enabled(db, c.device_id, False)
    assert pusher(svc).sweep() == 1
    assert subscriptions(svc) == []


def test_one_subscription_per_device_replaced_and_removed(
    svc: Running, fake: FakePushService
) -> None:
    _, b = svc.badge("phone-p6")
    first, second = Browser(fake), Browser(fake)
    assert subscribe(svc, b.device_id, b.secret, first.subscription()) == 204
    assert subscribe(svc, b.device_id, b.secret, second.subscription()) == 204
    (kept,) = subscriptions(svc)
    assert kept.endpoint == second.endpoint
    r = svc.http.delete(f"/api/v1/devices/{b.device_id}/push", auth=(b.device_id, b.secret))
    assert r.status_code == 204
    assert subscriptions(svc) == []


def test_wrong_credentials_and_bad_subscriptions_are_refused(
    svc: Running, fake: FakePushService
) -> None:
    _, b = svc.badge("phone-p7")
    _, other = svc.badge("phone-p8")
    good = Browser(fake).subscription()
    assert subscribe(svc, b.device_id, "not-the-secret", good) == 401
    # Another device's own credentials do not speak for this one.
    r = svc.http.post(
        f"/api/v1/devices/{b.device_id}/push", json=good, auth=(other.device_id, other.secret)
    )
    assert r.status_code == 401
    r = svc.http.post(f"/api/v1/devices/{b.device_id}/push", json=good)
    assert r.status_code == 401
    assert svc.http.delete(f"/api/v1/devices/{b.device_id}/push").status_code == 401

    off_curve = b64url(b"\x04" + b"\x01" * 64)
    bad: list[Any] = [
        {**good, "endpoint": good["endpoint"].replace("https:", "http:")},
        {**good, "endpoint": "https://push.example.net/wpush/1"},  # not a push service allowed
        {**good, "endpoint": "https://user:pw@127.0.0.1/x"},
        {**good, "endpoint": "not a url"},
        {**good, "keys": {"p256dh": off_curve, "auth": good["keys"]["auth"]}},
        {**good, "keys": {"p256dh": good["keys"]["p256dh"], "auth": b64url(b"short")}},
        {**good, "keys": {"p256dh": good["keys"]["p256dh"][:-4], "auth": good["keys"]["auth"]}},
        {**good, "keys": {"p256dh": "!!!", "auth": good["keys"]["auth"]}},
        {**good, "keys": {"auth": good["keys"]["auth"]}},
        {**good, "extra": 1},
        {"keys": good["keys"]},
        [good],
        "endpoint",
    ]
    for body in bad:
        assert subscribe(svc, b.device_id, b.secret, body) == 422, body
    assert subscriptions(svc) == []
    assert subscribe(svc, b.device_id, b.secret, good) == 204


def test_a_busy_push_service_is_tried_again(svc: Running, fake: FakePushService) -> None:
    badge, b = svc.badge("phone-p9")
    browser = Browser(fake)
    fake.answers[browser.path] = [503, 429, 201]
    assert subscribe(svc, b.device_id, b.secret, browser.subscription()) == 204
    alert_id = badge.raise_alert()
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user()
    (row,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    svc.http.post(f"/api/v1/alerts/{row['id']}/acknowledge", headers=ops)
    tries = wait_until(lambda: fake.pushes(browser.path)[2:], timeout=15, what="the third try")
    assert browser.read(tries[0])["title"] == "Help is on the way"
    assert len(subscriptions(svc)) == 1  # a busy service is not a gone subscription


def test_push_switched_off(db_url: str, mqtt_broker: Broker, tmp_path: Path) -> None:
    settings = service_settings(tmp_path / "data", db_url, mqtt_broker, push_enabled=False)
    with running(settings, mqtt_broker) as svc:
        assert svc.http.get("/app/config.json").json()["vapid_public_key"] == ""
        _, b = svc.badge("phone-p10")
        body = {"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": {}}
        assert subscribe(svc, b.device_id, b.secret, body) == 404
        assert not [r for r in svc.service.app.state.runners if isinstance(r, Pusher)]
