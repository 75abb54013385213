"""Fixtures: one private Mosquitto and one PostgreSQL and one SQLite template per session; per
test a fresh database (a copy of a template) and a running service."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from playwright.sync_api import Browser, BrowserContext, sync_playwright
from typer.testing import CliRunner

from monitor.cli import app
from monitor.db import Store
from tests.browsers import launch, watched_context
from tests.support import Broker, PgDatabases, Running, running, service_settings

# CI runs the same examples every time: a red run must mean a change broke something.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def pg() -> Iterator[PgDatabases]:
    dbs = PgDatabases()
    dbs.setup_template()
    try:
        yield dbs
    finally:
        dbs.drop_all()


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of the test's own, for tests that kill it or have the service rewrite its
    password file: the session's broker is shared."""
    b = Broker(tmp_path / "own-broker")
    b.dir.mkdir()
    b.start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test: migrating a new file every time cost a
    third of a second a test."""
    from monitor.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "vigil.db"
    store = Store(f"sqlite:///{path}")
    upgrade(store)
    store.dispose()
    return path


def _database(request: pytest.FixtureRequest, tmp_path: Path, *, empty: bool) -> Iterator[str]:
    if request.param == "sqlite":
        if not empty:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "vigil.db")
        yield f"sqlite:///{tmp_path / 'vigil.db'}"
        return
    dbs: PgDatabases = request.getfixturevalue("pg")
    url = dbs.new(empty=empty)
    try:
        yield url
    finally:
        dbs.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own: a copy of a migrated template, on PostgreSQL or SQLite
    (the service still checks it is at the latest schema as it opens it)."""
    yield from _database(request, tmp_path, empty=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own with no schema at all, for migrations."""
    yield from _database(request, tmp_path, empty=True)


@pytest.fixture
def svc(db_url: str, mqtt_broker: Broker, tmp_path: Path) -> Iterator[Running]:
    with running(service_settings(tmp_path / "data", db_url, mqtt_broker), mqtt_broker) as r:
        yield r


@pytest.fixture
def vigil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the `vigil` command on a SQLite store of the test's own (`vigil.store()`)."""
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("VIGIL_MQTT_PASSWORD", raising=False)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, input: str | None = None):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args), input=input)
        assert (result.exit_code == 0) == ok, result.output
        return result

    run.store = lambda: Store(f"sqlite:///{tmp_path / 'cli.db'}")  # type: ignore[attr-defined]
    return run


# -- browsers (tests/browsers.py) -------------------------------------------------------------


@pytest.fixture(scope="module", params=["chromium", "firefox"])
def engine(request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Each browser engine in turn, one per module: a test using it runs in both."""
    with sync_playwright() as p:
        b = launch(p, request.param)
        yield b
        b.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Chromium alone, one per module, for what needs checking in one engine only."""
    with sync_playwright() as p:
        b = launch(p, "chromium")
        yield b
        b.close()


def _profile(engine: Browser) -> Iterator[BrowserContext]:
    context, blocked = watched_context(engine)
    yield context
    context.close()
    assert blocked == [], blocked


@pytest.fixture
def browser(engine: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test in each engine, closed after it (its pages stop
    reconnecting), failing the test if the content security policy blocked anything."""
    yield from _profile(engine)


@pytest.fixture
def chrome(chromium: Browser) -> Iterator[BrowserContext]:
    """The same in Chromium only."""
    yield from _profile(chromium)
