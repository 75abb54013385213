"""Commands survive the broker: a device coming online is told again where each of its alerts
and visits stands, so what a broker crash loses is made good, and duress still cannot show."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from device_sim.device import SimDevice
from monitor.devices.models import Device, DeviceCommand
from tests.support import Broker, Running, running, service_settings, wait_until


def _alert_pk(svc: Running, ops: dict[str, str], device_alert_id: str) -> int:
    rows = svc.http.get("/api/v1/alerts?state=all", headers=ops).json()
    (pk,) = [r["id"] for r in rows if r["device_alert_id"] == device_alert_id]
    return int(pk)


def _sent(svc: Running, command_type: str, device_id: str) -> bool:
    with svc.store.session() as db:
        return (
            db.scalar(
                select(DeviceCommand.id).where(
                    DeviceCommand.device_id == device_id,
                    DeviceCommand.type == command_type,
                    DeviceCommand.sent_at.is_not(None),
                )
            )
            is not None
        )


def _online_since(svc: Running, device_id: str, since: datetime) -> bool:
    with svc.store.session() as db:
        device = db.get(Device, device_id)
        assert device is not None
        return bool(device.online and device.last_seen_at and device.last_seen_at > since)


def _reconnect(svc: Running, badge: SimDevice) -> list[tuple[str, dict[str, Any]]]:
    """Connect the device again; the state commands its `online` status was answered with."""

    def offline() -> bool:
        with svc.store.session() as db:
            device = db.get(Device, badge.device_id)
            return device is not None and not device.online

    # Its last will first: what going offline causes is not part of the answer.
    wait_until(offline, timeout=10, what="the last will")
    with svc.store.session() as db:
        last = db.scalar(select(DeviceCommand.id).order_by(DeviceCommand.id.desc()).limit(1)) or 0
        seen = db.get(Device, badge.device_id)
        assert seen is not None and seen.last_seen_at is not None
        before = seen.last_seen_at
    badge.connect(timeout=20)
    wait_until(lambda: _online_since(svc, badge.device_id, before), timeout=20, what="online")
    with svc.store.session() as db:
        rows = db.execute(
            select(DeviceCommand.type, DeviceCommand.payload)
            .where(DeviceCommand.device_id == badge.device_id, DeviceCommand.id > last)
            .order_by(DeviceCommand.id)
        ).all()
    return [(t, p) for t, p in rows]


@pytest.mark.parametrize("processes", [0, 1])
def test_an_acknowledgement_lost_by_a_crashed_broker_reaches_the_device(
    db_url: str, own_broker: Broker, tmp_path: Path, processes: int
) -> None:
    if processes and not db_url.startswith("postgresql"):
        pytest.skip("telemetry processes need PostgreSQL")
    settings = service_settings(tmp_path / "data", db_url, own_broker, ingest_processes=processes)
    with running(settings, own_broker) as svc:
        badge, _ = svc.badge("crash")
        alert_id = badge.raise_alert(type="red")
        badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
        ops = svc.user()

        # The device goes away; its persistent session keeps its subscription to `cmd`.
        badge.kill()
        pk = _alert_pk(svc, ops, alert_id)
        assert svc.http.post(f"/api/v1/alerts/{pk}/acknowledge", headers=ops).status_code == 200
        # The broker has taken the command (it is marked sent) and holds it for the device...
        wait_until(
            lambda: _sent(svc, "alert_acknowledged", badge.device_id),
            timeout=10,
            what="the broker to acknowledge the command",
        )
        # ...in memory only: killed before its next save, it loses it.
        assert own_broker.process is not None
        own_broker.process.kill()
        own_broker.process.start()
        assert wait_until(
            lambda: svc.service.ingest.urgent_link.connected.is_set(),
            timeout=20,
            what="the service to reconnect",
        )

        badge.connect(timeout=20)
        cmd = badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=30)
        assert set(cmd.payload) == {"v", "ts", "type", "alert_id"}


def test_a_returning_device_cannot_tell_duress_from_a_cancel(svc: Running) -> None:
    plain, pb = svc.badge("plain")
    forced, fb = svc.badge("forced")
    ops = svc.user()
    ids = {}
    for badge, b, pin in ((plain, pb, pb.cancel_pin), (forced, fb, fb.duress_pin)):
        alert_id = badge.raise_alert(type="red")
        badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
        badge.cancel_alert(alert_id, pin)
        badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
        badge.kill()
        ids[b.device_id] = alert_id

    # The duress alert goes on silently: an operator takes charge of it while its device is
    # away, and later resolves it.
    duress_pk = _alert_pk(svc, ops, ids[fb.device_id])
    assert svc.http.post(f"/api/v1/alerts/{duress_pk}/acknowledge", headers=ops).status_code == 200

    def told(badge: SimDevice) -> list[tuple[str, bool]]:
        return [(t, p["alert_id"] == ids[badge.device_id]) for t, p in _reconnect(svc, badge)]

    first = told(plain), told(forced)
    assert first[0] == first[1] == [("alert_cancelled", True)]
    forced.wait_for("alert_cancelled", alert_id=ids[fb.device_id], timeout=10)
    plain.kill()
    forced.kill()

    assert (
        svc.http.post(
            f"/api/v1/alerts/{duress_pk}/resolve",
            headers=ops,
            json={"outcome": "genuine_emergency"},
        ).status_code
        == 200
    )
    second = told(plain), told(forced)
    assert second[0] == second[1] == []
    assert not [c for c in forced.commands if c.type in ("alert_acknowledged", "alert_closed")]


def test_a_returning_device_is_told_its_open_visit(svc: Running) -> None:
    badge, _ = svc.badge("visitor")
    badge.start_visit("visit-77", 600, note="12 Elm St")
    started = badge.wait_for("visit_started", visit_id="visit-77", timeout=10)
    badge.kill()
    (answer,) = _reconnect(svc, badge)
    assert answer[0] == "visit_started"
    assert answer[1]["due_ts"] == started.payload["due_ts"]
    wait_until(
        lambda: any(c.payload == answer[1] for c in badge.commands),
        timeout=10,
        what="the device to hear it",
    )
