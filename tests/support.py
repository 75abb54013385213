"""Test helpers shared by the suite: real Mosquitto, real databases, a running service."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from starlette.testclient import WebSocketTestSession

from device_sim.device import SimDevice
from monitor import broker
from monitor.config import Settings
from monitor.db import Store
from monitor.devices import service as devices
from monitor.orgs import service as orgs
from monitor.security import hash_secret
from monitor.server import Service
from monitor.users.models import Role
from monitor.users.service import add_user

PG_ADMIN_URL = os.environ.get("VIGIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SERVICE_USER = "vigil-service"
SERVICE_PASSWORD = "test-service-" + secrets.token_hex(8)
PASSWORD = "correct horse battery"
# How long a test waits for what should happen before it fails (a passing wait returns at
# once). Not 5 s: loaded two-core runs have stalled past that (docs/testing.md).
WAIT_S = 15.0
# Fuzz tests run this many times their usual examples: VIGIL_FUZZ_SCALE=50 for a long run.
FUZZ_SCALE = max(1, int(os.environ.get("VIGIL_FUZZ_SCALE", "1")))


def wait_until(
    check: Callable[[], Any], timeout: float = WAIT_S, every: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class PgDatabases:
    """Throwaway PostgreSQL databases, each a copy of a migrated template."""

    def __init__(self) -> None:
        self.prefix = f"vigil_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.template = f"{self.prefix}_tmpl"
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True)

    def url(self, name: str) -> str:
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"

    def setup_template(self) -> None:
        from monitor.migrate import upgrade

        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        self.created.append(self.template)
        store = Store(self.url(self.template))
        upgrade(store)
        store.dispose()

    def new(self, *, empty: bool = False) -> str:
        """A migrated database; with `empty`, one with no schema at all."""
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        with self._admin() as conn:
            template = "" if empty else f' TEMPLATE "{self.template}"'
            conn.execute(f'CREATE DATABASE "{name}"{template}')
        self.created.append(name)
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    @contextlib.contextmanager
    def unavailable(self, url: str) -> Iterator[None]:
        """While inside, the database refuses connections and has lost the ones it had."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        try:
            yield
        finally:
            with self._admin() as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(self.url(name))


class Broker:
    """A private Mosquitto configured by Vigil's own generator, on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = broker.free_port()  # devices'
        self.service_port = broker.free_port()  # the service's own listener
        self.host = "127.0.0.1"
        self.process: broker.MosquittoProcess | None = None

    def start(self, store: Store | None = None) -> None:
        self.write(store)
        self.process = broker.MosquittoProcess(self.dir / "mosquitto.conf", self.port)
        self.process.start()

    def write(self, store: Store | None) -> None:
        if store is None:
            store = Store(f"sqlite:///{self.dir / 'empty.db'}")
            from monitor.migrate import upgrade

            upgrade(store)
        with store.session() as db:
            broker.write_config(
                db,
                self.dir,
                self.port,
                SERVICE_USER,
                SERVICE_PASSWORD,
                service_port=self.service_port,
            )

    def load_registry(self, store: Store) -> None:
        """Let in exactly the devices of this store (and the service), then reload."""
        with store.session() as db:
            broker.write_auth_files(db, self.dir, SERVICE_USER, SERVICE_PASSWORD)
        assert self.process is not None
        self.process.reload()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class Badge:
    device_id: str
    secret: str
    worker_id: int
    cancel_pin: str
    duress_pin: str


def add_badge(
    store: Store,
    device_id: str,
    *,
    name: str = "Alex Worker",
    team: str = "Housing",
    heartbeat_s: int = 300,
    org: str = "Test Org",
) -> Badge:
    with store.begin() as db:
        worker = orgs.add_worker(
            db,
            name=name,
            cancel_pin="1234",
            duress_pin="9876",
            phone="+447700900001",
            team=team,
            responder_notes="Asthma",
            org_name=org,
        )
        device, secret = devices.add_device(
            db, device_id, worker_id=worker.id, heartbeat_interval_s=heartbeat_s
        )
        return Badge(device.id, secret, worker.id, "1234", "9876")


# Timers short enough for tests, shared by both tiers' services.
TEST_TIMERS: dict[str, Any] = {
    "scheduler_tick_s": 0.1,
    "command_resend_s": 2.0,
    "visit_grace_s": 2,
    "waiting_max_s": 5.0,
    "escalation_tick_s": 0.1,
    "escalation_retry_base_s": 0.2,
    "twilio_timeout_s": 2.0,
}


def service_settings(data_dir: Path, db_url: str, brk: Broker, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": db_url,
        "mqtt_host": brk.host,
        "mqtt_port": brk.service_port,
        "mqtt_device_host": brk.host,
        "mqtt_device_port": brk.port,  # where the worker app's relay connects
        "mqtt_username": SERVICE_USER,
        "mqtt_password": SERVICE_PASSWORD,
        # A node name per test: persistent sessions of earlier tests must not feed this one.
        "mqtt_node": "t" + uuid.uuid4().hex[:10],
        "mqtt_session_expiry_s": 600,
        "secret_key": "test-secret-" + secrets.token_hex(16),
        # Telemetry in the service's own process, on both databases, unless a test asks for
        # processes: tests/test_ingest_processes.py runs them, the PostgreSQL default among
        # them; a child per test would cost seconds each.
        "ingest_processes": 0,
        **TEST_TIMERS,
    }
    values.update(extra)
    return Settings(**values)


def serve_env(settings: Settings, http_port: int) -> dict[str, str]:
    """The environment of a `vigil serve` subprocess with these settings' store and broker."""
    return {
        "VIGIL_DATA_DIR": str(settings.data_dir),
        "VIGIL_DATABASE_URL": settings.database_url,
        "VIGIL_MQTT_HOST": settings.mqtt_host,
        "VIGIL_MQTT_PORT": str(settings.mqtt_port),
        "VIGIL_MQTT_DEVICE_HOST": settings.mqtt_device_host,
        "VIGIL_MQTT_DEVICE_PORT": str(settings.mqtt_device_port),
        "VIGIL_MQTT_USERNAME": settings.mqtt_username,
        "VIGIL_MQTT_PASSWORD": settings.mqtt_password,
        "VIGIL_MQTT_NODE": settings.mqtt_node,
        "VIGIL_SECRET_KEY": settings.secret_key,
        "VIGIL_HTTP_PORT": str(http_port),
        "VIGIL_INGEST_PROCESSES": str(settings.telemetry_processes),
    }


def serve_process(settings_env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`vigil serve` in a process of its own, with `serve_env`'s environment (and any extra
    settings) over this one's, its output appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "serve"],
            env={**os.environ, **settings_env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


class SignsIn:
    """Users and their sign-in, for a service under test with a `store` and an API client
    `http`: `Running` here, and the fast tier's `Handlers`."""

    store: Store
    http: TestClient

    def user(
        self,
        username: str = "op1",
        role: Role = Role.OPERATOR,
        *,
        org: str | None = None,
        team: str | None = None,
    ) -> dict[str, str]:
        with self.store.begin() as db:
            add_user(
                db,
                username,
                PASSWORD,
                role,
                full_name=username.title(),
                org=org,
                team=team,
                password_hash=password_hash(),
            )
        return self.login(username)

    def login(self, username: str) -> dict[str, str]:
        r = self.http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@functools.cache
def password_hash() -> str:
    """PASSWORD's argon2 hash, made once a process: each test makes a few users, and argon2
    takes a tenth of a second on purpose (signing in still checks it)."""
    return hash_secret(PASSWORD)


class Running(SignsIn):
    """A started service with an API client signed in as an operator."""

    def __init__(self, settings: Settings, brk: Broker) -> None:
        self.settings = settings
        self.broker = brk
        self.service = Service(settings)
        self.store = self.service.store
        self.devices: list[SimDevice] = []
        self.http = TestClient(self.service.app)
        self._started = False

    def start(self) -> None:
        self._started = True  # so that close() stops it even if the check below fails
        self.service.start(wait_s=10)
        assert self.service.ingest.urgent_link.connected.is_set(), "service did not connect"

    def stop(self, *, end_session: bool = False) -> None:
        if self._started:
            self.service.stop(end_session=end_session)
            self._started = False

    def restart(self, **changes: Any) -> None:
        """Stop the service and start a new one on the same store and MQTT session."""
        self.stop()
        self.http.close()
        self.settings = self.settings.model_copy(update=changes)
        self.service = Service(self.settings)
        self.store = self.service.store
        self.http = TestClient(self.service.app)
        self.start()

    def serve_http(self, log_level: str = "warning", port: int | None = None) -> str:
        """Serve the app over real HTTP as `vigil serve` does (for a browser); returns its
        base URL. `port` serves it again where stop_http left off."""
        import threading

        import uvicorn

        port = port or broker.free_port()
        server = uvicorn.Server(self.service.http_config("127.0.0.1", port, log_level))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        self._http_server = (server, thread)
        assert broker.wait_for_port("127.0.0.1", port, 10)
        return f"http://127.0.0.1:{port}"

    def stop_http(self) -> None:
        """Stop serving HTTP (browsers lose the service); the service itself runs on."""
        if getattr(self, "_http_server", None):
            server, thread = self._http_server
            server.should_exit = True
            thread.join(10)
            del self._http_server

    def close(self) -> None:
        self.stop_http()
        for d in self.devices:
            with contextlib.suppress(Exception):
                # The broker is shared by the session: leave no retained status behind for
                # later tests' services to refuse as an unknown device.
                if d.connected:
                    d.publish_raw("status", b"", qos=1, retain=True)
                d.disconnect()
        # Nor a session that would queue every later test's traffic.
        self.stop(end_session=True)
        self.http.close()
        self.store.dispose()

    def badge(self, prefix: str, **kw: Any) -> tuple[SimDevice, Badge]:
        """A registered, connected badge; its id is `prefix` plus a random suffix, since the
        broker (shared by the session) keeps retained messages and sessions of earlier tests."""
        b = add_badge(self.store, f"{prefix}-{uuid.uuid4().hex[:6]}", **kw)
        self.broker.load_registry(self.store)
        return self._connect(b), b

    def badges(self, prefix: str, count: int) -> list[tuple[SimDevice, Badge]]:
        """Many connected badges, registered with one broker reload."""
        made = [
            add_badge(self.store, f"{prefix}-{i:03d}-{uuid.uuid4().hex[:4]}") for i in range(count)
        ]
        self.broker.load_registry(self.store)
        return [(self._connect(b), b) for b in made]

    def _connect(self, b: Badge) -> SimDevice:
        d = SimDevice(
            device_id=b.device_id,
            secret=b.secret,
            host=self.broker.host,
            port=self.broker.port,
            cancel_pin=b.cancel_pin,
            duress_pin=b.duress_pin,
            alert_retry_s=1.0,
        )
        # Mosquitto re-reads its password file a moment after SIGHUP: try until it has.
        deadline = time.monotonic() + 10
        while True:
            try:
                d.connect(timeout=10)
                break
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.devices.append(d)
        return d


def bearer(headers: dict[str, str]) -> str:
    """The access token in `Running.user`'s or `login`'s headers."""
    return headers["Authorization"].removeprefix("Bearer ")


@contextlib.contextmanager
def console_socket(http: TestClient, token: str, query: str = "") -> Iterator[WebSocketTestSession]:
    """The console's websocket, signed in as the console does it: the token in the first
    message, never in the URL."""
    with http.websocket_connect("/ws" + (f"?{query}" if query else "")) as ws:
        ws.send_text(json.dumps({"token": token}))
        yield ws


@contextlib.contextmanager
def running(settings: Settings, brk: Broker) -> Iterator[Running]:
    r = Running(settings, brk)
    try:
        r.start()
        yield r
    finally:
        r.close()


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> Path:
    """A throwaway CA in `d`, with a server certificate for 127.0.0.1 and a client certificate
    (CN badge-t1), valid one day."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "1", "-subj", "/CN=Vigil test CA", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "badge-t1")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "1",
                *(["-extfile", "san.ext"] if name == "server" else []), cwd=d)  # fmt: skip
    return d


@contextlib.contextmanager
def writes_refused(store: Store) -> Iterator[None]:
    """While inside, SQLite refuses every write to the store, as it does for a database file
    it cannot write (run as root, the tests cannot take a file's write permission away)."""

    def read_only(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only = ON")

    event.listen(store.engine, "connect", read_only)
    store.engine.dispose()
    try:
        yield
    finally:
        event.remove(store.engine, "connect", read_only)
        store.engine.dispose()


@contextlib.contextmanager
def commits_fail(store: Store) -> Iterator[None]:
    """While inside, every commit to the store fails as a lost connection's does: the
    transaction's work is done, then thrown away (either database)."""

    def fail(conn: Any) -> None:
        raise OperationalError("COMMIT", {}, ConnectionError("the test cut the connection"))

    event.listen(store.engine, "commit", fail)
    try:
        yield
    finally:
        event.remove(store.engine, "commit", fail)


def urgent_store_errors() -> float:
    """The urgent worker's store failures so far, in this process (the service's metric)."""
    return REGISTRY.get_sample_value("vigil_store_errors_total", {"path": "urgent"}) or 0.0
