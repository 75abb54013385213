"""Benchmark harness: a private Mosquitto, a fresh store, `vigil serve` in its own process.

Everything runs on this machine's loopback and stops by itself.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from escalation import policies
from monitor import broker
from monitor.db import Store
from monitor.devices.service import add_device
from monitor.migrate import upgrade
from monitor.orgs.service import add_worker

SERVICE_USER = "vigil-service"


@dataclass
class Rig:
    workdir: Path
    db_url: str
    store: Store
    broker_port: int
    service_password: str
    http_port: int
    credentials: dict[str, str]
    service_port: int  # the broker's listener for the service account (devices use broker_port)


def processes_env(n: int | None) -> dict[str, str]:
    """`VIGIL_INGEST_PROCESSES` for the service, or nothing for its default."""
    return {} if n is None else {"VIGIL_INGEST_PROCESSES": str(n)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    admin = os.environ.get("VIGIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Fresh:
    workdir: Path  # a temporary directory, removed at the end
    url: str
    store: Store  # migrated, empty


@contextlib.contextmanager
def fresh_store(kind: str) -> Iterator[Fresh]:
    """A temporary directory and an empty, migrated store of `kind`, both gone at the end."""
    with (
        tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp,
        database(kind, Path(tmp)) as url,
    ):
        store = Store(url)
        try:
            upgrade(store)
            yield Fresh(Path(tmp), url, store)
        finally:
            store.dispose()


def wait_up(
    http_port: int,
    path: str = "/healthz",
    limit: float = 300,
    proc: subprocess.Popen[bytes] | None = None,
) -> float:
    """time.perf_counter() when the service first answers `path` with 200; RuntimeError if
    it does not within `limit` seconds, or its process `proc` ends first."""
    end = time.perf_counter() + limit
    while time.perf_counter() < end and (proc is None or proc.poll() is None):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}{path}", timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"the service did not answer {path} with 200")


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    broker_port: int
    password: str  # the service account's, at the broker
    http_port: int
    started: float  # time.perf_counter() when `vigil serve` was started
    service_port: int  # the broker's listener for the service account


@dataclass
class Broker:
    port: int  # devices'
    service_port: int  # the service account's listener
    password: str  # the service account's


@contextlib.contextmanager
def broker_for(store: Store, workdir: Path) -> Iterator[Broker]:
    """A private Mosquitto configured from the store's registry."""
    password = secrets.token_urlsafe(16)
    port, service_port = broker.free_port(), broker.free_port()
    with store.session() as db:
        files = broker.write_config(
            db, workdir / "broker", port, SERVICE_USER, password, service_port=service_port
        )
    mosq = broker.MosquittoProcess(files.conf, port)
    mosq.start()
    try:
        yield Broker(port, service_port, password)
    finally:
        mosq.stop()


@contextlib.contextmanager
def service(
    workdir: Path,
    url: str,
    brk: Broker,
    http_port: int,
    env_extra: dict[str, str] | None = None,
    log_name: str = "serve.log",
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """`vigil serve` on `brk`, started but not waited for, and time.perf_counter() when it
    was started; its output goes to `workdir/log_name`. Stopped (SIGTERM) at the end."""
    env = {
        **os.environ,
        "VIGIL_DATA_DIR": str(workdir / "data"),
        "VIGIL_DATABASE_URL": url,
        "VIGIL_MQTT_PORT": str(brk.service_port),
        "VIGIL_MQTT_DEVICE_PORT": str(brk.port),  # the worker app's relay connects there
        "VIGIL_MQTT_USERNAME": SERVICE_USER,
        "VIGIL_MQTT_PASSWORD": brk.password,
        "VIGIL_HTTP_PORT": str(http_port),
        "VIGIL_SECRET_KEY": secrets.token_urlsafe(32),
        **(env_extra or {}),
    }
    log = open(workdir / log_name, "ab")  # noqa: SIM115
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield proc, started
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@contextlib.contextmanager
def serving(
    store: Store, workdir: Path, url: str, env_extra: dict[str, str] | None = None
) -> Iterator[Served]:
    """A private Mosquitto configured from the store's registry, and `vigil serve` on both,
    started but not waited for; its output goes to `workdir/serve.log`."""
    http_port = broker.free_port()
    with (
        broker_for(store, workdir) as brk,
        service(workdir, url, brk, http_port, env_extra) as (proc, started),
    ):
        yield Served(proc, brk.port, brk.password, http_port, started, brk.service_port)


@contextlib.contextmanager
def rig(
    kind: str,
    *,
    plain_devices: int,
    alerting_devices: int,
    env_extra: dict[str, str] | None = None,
    policy_yaml: str | None = None,
) -> Iterator[Rig]:
    """Devices `load-NNNNN` (no worker) and `alert-NNN` (with a worker and PINs, team
    "Bench"); `vigil serve` with `env_extra` and, if given, these escalation policies."""
    with fresh_store(kind) as fresh:
        workdir, url, store = fresh.workdir, fresh.url, fresh.store
        creds: dict[str, str] = {}
        with store.begin() as db:
            for i in range(alerting_devices):
                w = add_worker(
                    db, name=f"Worker {i}", cancel_pin="1234", duress_pin="9876", team="Bench"
                )
                d, s = add_device(db, f"alert-{i:03d}", worker_id=w.id)
                creds[d.id] = s
            for i in range(plain_devices):
                d, s = add_device(db, f"load-{i:05d}", worker_id=None)
                creds[d.id] = s
        if policy_yaml is not None:
            with store.begin() as db:
                policies.replace_all(db, policies.parse_file(policy_yaml))
        with serving(store, workdir, url, env_extra) as served:
            if not broker.wait_for_port("127.0.0.1", served.http_port, 60):
                raise RuntimeError((workdir / "serve.log").read_text())
            time.sleep(1.0)  # MQTT sessions up
            yield Rig(
                workdir,
                url,
                store,
                served.broker_port,
                served.password,
                served.http_port,
                creds,
                served.service_port,
            )
