"""What every HTTP answer carries for the browser's protection, sign-in and its throttling,
tokens, the console's websocket sign-in, and which addresses are believed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt
import pytest
from argon2 import extract_parameters
from pydantic import ValidationError
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from console import hub
from monitor import security
from monitor.audit.models import AuditEntry
from monitor.broker import free_port, wait_for_port
from monitor.config import Settings
from monitor.db import Store
from monitor.migrate import upgrade
from monitor.security import verify_secret
from monitor.users import service as users_service
from monitor.users.models import Role, User
from monitor.users.service import add_user, set_active
from tests.support import (
    PASSWORD,
    Broker,
    Running,
    bearer,
    console_socket,
    running,
    serve_env,
    serve_process,
    service_settings,
    wait_until,
)


def test_every_answer_carries_security_headers(svc: Running) -> None:
    for path in ("/", "/api/v1/alerts", "/healthz", "/no-such-page"):
        r = svc.http.get(path)
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Frame-Options"] == "DENY"
        policy = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert "default-src 'self'" in policy and "object-src 'none'" in policy
    # The map's tiles may come from the configured tile server, and nowhere else.
    tiles = svc.settings.map_tiles_url
    if tiles.startswith("https://"):
        origin = "https://" + tiles.split("/")[2]
        assert origin in svc.http.get("/").headers["Content-Security-Policy"]


def test_wrong_passwords_make_that_name_wait(svc: Running) -> None:
    svc.user("victim")
    svc.user("bystander")
    form = {"username": "victim", "password": "not the password"}
    limit = svc.settings.signin_max_failures
    for _ in range(limit):
        assert svc.http.post("/api/v1/auth/token", data=form).status_code == 401
    refused = svc.http.post("/api/v1/auth/token", data=form)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= svc.settings.signin_window_s
    # While it waits, even the right password is refused: guessing has to stop.
    right = {"username": "VICTIM", "password": PASSWORD}
    assert svc.http.post("/api/v1/auth/token", data=right).status_code == 429
    # Other people signing in from the same address are not held up by it.
    other = {"username": "bystander", "password": PASSWORD}
    assert svc.http.post("/api/v1/auth/token", data=other).status_code == 200


def test_a_good_sign_in_clears_the_count(svc: Running) -> None:
    svc.user("forgetful")
    limit = svc.settings.signin_max_failures
    wrong = {"username": "forgetful", "password": "nope nope nope"}
    for _ in range(limit - 1):
        assert svc.http.post("/api/v1/auth/token", data=wrong).status_code == 401
    svc.login("forgetful")
    for _ in range(limit - 1):
        assert svc.http.post("/api/v1/auth/token", data=wrong).status_code == 401
    svc.login("forgetful")  # never blocked: the count started again after the good one


def test_text_the_database_cannot_store_is_refused_with_the_field_named(svc: Running) -> None:
    ops = svc.user("nul-op")
    badge, _ = svc.badge("badge-nul")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    pk = svc.http.get("/api/v1/alerts", headers=ops).json()[0]["id"]
    r = svc.http.post(f"/api/v1/alerts/{pk}/notes", json={"text": "a\x00b"}, headers=ops)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"]
    # A name with a NUL at sign-in is refused, not a server error.
    r = svc.http.post("/api/v1/auth/token", data={"username": "x\x00y", "password": "whatever1"})
    assert r.status_code in (401, 422)
    # An id too large for the database's integer columns is a bad id, not a server error.
    assert svc.http.get(f"/api/v1/alerts/{2**31}", headers=ops).status_code == 422


# -- the console's websocket: no token in a URL, none in the log -------------------------


def test_a_token_in_the_websocket_url_is_refused_even_when_valid(svc: Running) -> None:
    token = bearer(svc.user("url-token"))
    with svc.http.websocket_connect(f"/ws?token={token}") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4401 and "first message" in closed.value.reason


def test_a_websocket_that_sends_no_token_is_closed(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "SIGN_IN_WAIT_S", 0.5)
    for first in (None, "ping", '{"token": 42}', '["a"]'):
        with svc.http.websocket_connect("/ws") as ws:
            if first is not None:
                ws.send_text(first)
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 4401


def test_no_token_reaches_the_service_log(db_url: str, mqtt_broker: Broker, tmp_path: Path) -> None:
    """`vigil serve` as operators run it, its whole output read back: the console's way of
    signing in puts the token in no log line, and a client that still puts it in a URL is
    refused with the token blotted out of the access log."""
    settings = service_settings(tmp_path / "data", db_url, mqtt_broker)
    store = Store(settings.sqlalchemy_url)
    upgrade(store)
    with store.begin() as db:
        add_user(db, "log-op", PASSWORD, Role.OPERATOR)
    store.dispose()
    port = free_port()
    log = tmp_path / "serve.log"
    # A short session: the broker is the whole test session's, and queues for this one.
    proc = serve_process({**serve_env(settings, port), "VIGIL_MQTT_SESSION_EXPIRY_S": "30"}, log)
    try:
        assert wait_for_port("127.0.0.1", port, 30), log.read_text()
        base = f"127.0.0.1:{port}"
        form = {"username": "log-op", "password": PASSWORD}
        token = httpx.post(f"http://{base}/api/v1/auth/token", data=form).json()["access_token"]
        me = httpx.get(
            f"http://{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200
        with ws_connect(f"ws://{base}/ws") as ws:
            ws.send(json.dumps({"token": token}))
            assert json.loads(ws.recv(timeout=10))["kind"] == "snapshot"
        with ws_connect(f"ws://{base}/ws?token={token}&since=3") as ws:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        # HTTP requests with it in the query string too (the access log writes the query).
        httpx.get(f"http://{base}/api/v1/alerts?access_token={token}")
        wait_until(lambda: "/api/v1/alerts?access_token=" in log.read_text(), timeout=10)
    finally:
        proc.terminate()
        proc.wait(30)
    text = log.read_text()
    assert '"WebSocket /ws"' in text and "/ws?token=[redacted]&since=3" in text, text
    assert token not in text and token.split(".")[2] not in text


# -- sign-in: an unknown name costs what a wrong password costs --------------------------


def test_an_unknown_name_is_checked_against_a_hash_like_a_users(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc.user("known")
    svc.user("leaver")
    with svc.store.begin() as db:
        set_active(db, "leaver", False)
        known_hash = db.scalars(select(User.password_hash).where(User.username == "known")).one()
    checked: list[str] = []

    def spy(stored: str, given: str) -> bool:
        checked.append(stored)
        return verify_secret(stored, given)

    # Both names of the one function: the users' service's, and the one verify_nobody calls.
    monkeypatch.setattr(users_service, "verify_secret", spy)
    monkeypatch.setattr(security, "verify_secret", spy)
    for name in ("known", "nobody-of-that-name", "leaver"):
        checked.clear()
        form = {"username": name, "password": "not the password"}
        assert svc.http.post("/api/v1/auth/token", data=form).status_code == 401
        # One argon2 check each, with the cost of a user's: as long for every name.
        assert len(checked) == 1, name
        assert extract_parameters(checked[0]) == extract_parameters(known_hash), name
    # Not even a password that happens to match the stand-in's lets anyone in.
    assert not security.verify_nobody("")


# -- tokens ---------------------------------------------------------------------------------


def test_a_token_without_expiry_or_user_id_is_refused(svc: Running) -> None:
    """Tokens signed with the service's own key, so only their claims are wrong."""
    svc.user("claims-op")
    with svc.store.session() as db:
        uid = db.scalars(select(User.id).where(User.username == "claims-op")).one()
    later = int(time.time()) + 3600
    key = svc.settings.secret_key
    fine = {"sub": str(uid), "role": "operator", "iat": time.time(), "exp": later}
    good = jwt.encode(fine, key, algorithm="HS256")
    assert svc.http.get("/api/v1/auth/me", headers=_auth(good)).status_code == 200
    wrong = [
        {"sub": str(uid), "role": "operator", "iat": time.time()},  # no expiry: good for ever
        # No time of issue: nothing says whether the user's sessions ended after it.
        {"sub": str(uid), "role": "operator", "exp": later},
        {"sub": "op", "role": "operator", "exp": later},
        {"sub": "", "exp": later},
        {"sub": f"{uid}.0", "exp": later},
        {"sub": f" {uid}", "exp": later},
        {"sub": f"0{uid}", "exp": later},
        {"sub": str(2**31), "exp": later},  # beyond the database's integer column
        {"sub": "9" * 40, "exp": later},
        {"sub": uid, "exp": later},  # a number, not a string
        {"role": "operator", "exp": later},  # no subject
        {"sub": str(uid), "iat": time.time() - 20, "exp": int(time.time()) - 10},  # expired
    ]
    for claims in wrong:
        token = jwt.encode(claims, key, algorithm="HS256")
        r = svc.http.get("/api/v1/auth/me", headers=_auth(token))
        assert r.status_code == 401, (claims, r.status_code)
        assert svc.http.get("/api/v1/alerts", headers=_auth(token)).status_code == 401
        with console_socket(svc.http, token) as ws:
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
            assert closed.value.code == 4401, claims


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- forwarded addresses ----------------------------------------------------------------------


def test_forwarded_for_is_believed_only_from_the_proxies_named(
    db_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    """Served by uvicorn as `vigil serve` serves, reached over loopback with X-Forwarded-For:
    by default the header is ignored (throttling and the audit log see 127.0.0.1); with
    loopback named in VIGIL_TRUSTED_PROXIES, the address it names is the client's."""
    for trusted in ("", "127.0.0.1"):
        settings = service_settings(
            tmp_path / f"proxies-{trusted or 'none'}",
            db_url,
            mqtt_broker,
            trusted_proxies=trusted,
            signin_max_failures=1,  # so one address may fail 4 times (PER_ADDRESS)
        )
        with running(settings, mqtt_broker) as svc:
            base = svc.serve_http()
            codes = []
            for i in range(5):
                form = {"username": f"guess-{trusted}-{i}", "password": "wrong wrong"}
                forwarded = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
                r = httpx.post(f"{base}/api/v1/auth/token", data=form, headers=forwarded)
                codes.append(r.status_code)
            with svc.store.session() as db:
                addresses = list(
                    db.scalars(
                        select(AuditEntry.address)
                        .where(AuditEntry.actor.startswith(f"guess-{trusted}-"))
                        .order_by(AuditEntry.id)
                    )
                )
        if not trusted:
            # Four failures from one address, then it waits: the header changed nothing.
            assert codes == [401, 401, 401, 401, 429]
            assert addresses == ["127.0.0.1"] * 5
        else:
            assert codes == [401] * 5
            assert addresses == [f"203.0.113.{i + 1}" for i in range(5)]


def test_trusted_proxies_must_be_addresses() -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(trusted_proxies="127.0.0.1, proxy.example.org")
    assert Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8").trusted_proxy_list == [
        "127.0.0.1",
        "10.0.0.0/8",
    ]
