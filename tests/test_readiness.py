"""While the store cannot write: /readyz fails with the cause, API routes answer JSON 503s,
devices hear nothing until the alert is stored, and operators' consoles show a banner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from monitor.alerts.models import Alert
from monitor.users.models import Role
from tests.browsers import ARGS, CHROMIUM, sign_in
from tests.support import (
    PASSWORD,
    Broker,
    PgDatabases,
    Running,
    running,
    service_settings,
    urgent_store_errors,
    wait_until,
    writes_refused,
)

DOWN = "the database cannot be reached"


@pytest.fixture
def db_url(pg: PgDatabases) -> Iterator[str]:
    # PostgreSQL only: the test takes its own database away (`PgDatabases.unavailable`).
    url = pg.new()
    try:
        yield url
    finally:
        pg.drop(url)


def _stored(svc: Running, device_id: str, alert_id: str) -> int:
    with svc.store.session() as db:
        return (
            db.scalar(
                select(func.count())
                .select_from(Alert)
                .where(Alert.device_id == device_id, Alert.device_alert_id == alert_id)
            )
            or 0
        )


def test_readyz_and_api_say_why_while_the_database_is_down(svc: Running, pg: PgDatabases) -> None:
    badge, b = svc.badge("badge-ready")
    headers = svc.user("op1", Role.OPERATOR)
    wait_until(lambda: svc.http.get("/readyz").status_code == 200, what="ready")
    assert svc.http.get("/readyz").json()["status"] == "ready"

    with pg.unavailable(svc.settings.database_url):
        r = wait_until(
            lambda: (r := svc.http.get("/readyz")).status_code == 503 and r, what="not ready"
        )
        assert r.json()["store"]["cause"] == DOWN
        assert r.json()["detail"] == f"The service cannot store new alerts: {DOWN}."
        assert svc.http.get("/healthz").status_code == 200  # liveness: the process answers

        api = svc.http.get("/api/v1/alerts", headers=headers)
        assert api.status_code == 503
        assert api.json() == {"detail": f"the store is unavailable: {DOWN}; try again shortly"}
        name = svc.settings.database_url.rsplit("/", 1)[1]
        assert name not in api.text and "Traceback" not in api.text

        # An alert raised now is tried, and not answered: it is not stored.
        errors = urgent_store_errors()
        alert_id = badge.raise_alert(type="red")
        wait_until(lambda: urgent_store_errors() > errors, what="the alert tried")
        assert [c for c in badge.commands if c.type == "alert_received"] == []
        # What waits is counted: the gauge is read when scraped, not when the worker moves on.
        assert REGISTRY.get_sample_value("vigil_ingest_queue_depth", {"path": "urgent"}) == 1

    wait_until(lambda: svc.http.get("/readyz").status_code == 200, timeout=15, what="ready again")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=15)
    assert _stored(svc, b.device_id, alert_id) == 1
    assert svc.http.get("/api/v1/alerts", headers=headers).status_code == 200


def test_console_shows_a_banner_while_the_database_is_down(svc: Running, pg: PgDatabases) -> None:
    base = svc.serve_http()
    svc.user("carol", Role.OPERATOR)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = sign_in(browser.new_context(), base, "carol")
            banner = page.locator("#service-banner")
            expect(banner).to_be_hidden()
            with pg.unavailable(svc.settings.database_url):
                expect(banner).to_have_text(
                    f"The service cannot store new alerts: {DOWN}.", timeout=10_000
                )
            expect(banner).to_be_hidden(timeout=15_000)
        finally:
            browser.close()


def test_sqlite_that_cannot_write_is_not_ready(mqtt_broker: Broker, tmp_path: Path) -> None:
    settings = service_settings(
        tmp_path / "data", f"sqlite:///{tmp_path / 'vigil.db'}", mqtt_broker
    )
    with running(settings, mqtt_broker) as svc:
        badge, b = svc.badge("badge-ro")
        headers = svc.user("op2", Role.OPERATOR)
        wait_until(lambda: svc.http.get("/readyz").status_code == 200, what="ready")
        with writes_refused(svc.store):
            # Nothing else writes meanwhile: the service's own probe finds it out.
            r = wait_until(
                lambda: (r := svc.http.get("/readyz")).status_code == 503 and r, what="not ready"
            )
            assert r.json()["store"]["cause"] == "the database is read-only"
            assert svc.http.get("/api/v1/alerts", headers=headers).status_code == 200  # reads
            # Signing in writes to the audit log.
            r = svc.http.post("/api/v1/auth/token", data={"username": "op2", "password": PASSWORD})
            assert r.status_code == 503
            assert r.json() == {
                "detail": "the store is unavailable: the database is read-only; try again shortly"
            }
            errors = urgent_store_errors()
            alert_id = badge.raise_alert(type="red")
            wait_until(lambda: urgent_store_errors() > errors, what="the alert tried")
            assert [c for c in badge.commands if c.type == "alert_received"] == []
        wait_until(lambda: svc.http.get("/readyz").status_code == 200, timeout=15, what="ready")
        badge.wait_for("alert_received", alert_id=alert_id, timeout=15)
        assert _stored(svc, b.device_id, alert_id) == 1


def test_readyz_says_when_the_broker_is_down(tmp_path: Path) -> None:
    brk = Broker(tmp_path / "mosquitto")  # a broker of its own, to stop and start again
    brk.start()
    settings = service_settings(tmp_path / "data", f"sqlite:///{tmp_path / 'vigil.db'}", brk)
    try:
        with running(settings, brk) as svc:
            wait_until(lambda: svc.http.get("/readyz").status_code == 200, what="ready")
            assert brk.process is not None
            brk.process.stop()
            # Each link finds the broker gone on its own.
            r = wait_until(
                lambda: len((r := svc.http.get("/readyz")).json()["mqtt"]["down"]) == 2 and r,
                what="both links down",
            )
            assert r.status_code == 503 and r.json()["store"]["ok"]
            assert r.json()["mqtt"]["down"] == ["urgent", "telemetry"]
            assert r.json()["detail"] == (
                "The service cannot hear devices: its MQTT connection (urgent and telemetry)"
                " is down."
            )
            brk.process.start()
            wait_until(lambda: svc.http.get("/readyz").status_code == 200, timeout=20, what="back")
    finally:
        brk.stop()
