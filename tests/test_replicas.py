"""Two `vigil serve` replicas on one PostgreSQL: each alert is stored once, and a console on
one replica sees what an operator does on the other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.alerts.models import Alert
from tests.support import (
    Broker,
    PgDatabases,
    bearer,
    console_socket,
    running,
    service_settings,
    wait_until,
)


@pytest.fixture
def pg_url(pg: PgDatabases):  # type: ignore[no-untyped-def]
    url = pg.new()
    yield url
    pg.drop(url)


def test_console_on_one_replica_sees_the_other(
    pg_url: str, mqtt_broker: Broker, tmp_path: Path
) -> None:
    with (
        running(service_settings(tmp_path / "a", pg_url, mqtt_broker), mqtt_broker) as a,
        running(
            service_settings(tmp_path / "b", pg_url, mqtt_broker, secret_key=a.settings.secret_key),
            mqtt_broker,
        ) as b,
    ):
        assert b.service.fanout is not None and b.service.fanout.listening.wait(10)
        assert a.service.fanout is not None and a.service.fanout.listening.wait(10)
        ops = a.user("op-a")
        badge, _ = a.badge("badge-r1")
        alert_id = badge.raise_alert(type="red")
        badge.wait_for("alert_received", alert_id=alert_id, timeout=10)

        def stored() -> int:
            with a.store.session() as db:
                return db.scalar(select(func.count()).select_from(Alert)) or 0

        wait_until(lambda: stored() == 1, timeout=10, what="the alert stored")
        with console_socket(b.http, bearer(ops)) as ws:
            snapshot = json.loads(ws.receive_text())
            assert snapshot["kind"] == "snapshot" and len(snapshot["alerts"]) == 1
            pk = snapshot["alerts"][0]["id"]
            # An operator on replica A takes charge; the console on replica B hears of it.
            assert a.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
            while True:
                msg = json.loads(ws.receive_text())
                if msg["kind"] == "alert.acknowledged":
                    break
            assert msg["alert"]["acknowledged_by"] == "user:op-a"
        # Both replicas received the alert; it was stored once, and answered.
        assert stored() == 1
        badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
        later = badge.raise_alert(type="test")  # a sync point: commands arrive in order
        badge.wait_for("alert_received", alert_id=later, timeout=10)
        acks = [c for c in badge.commands if c.type == "alert_acknowledged"]
        assert len(acks) == 1  # the command went out from A only
