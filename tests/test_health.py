"""Device health: offline by last will or by missed heartbeats, the device_offline alert during
a visit, and offline detection that survives a restart (low battery: tests/fast/test_health.py)."""

from __future__ import annotations

import json
import time

from sqlalchemy import select, update

from monitor.alerts.models import Alert
from monitor.devices.models import Device
from tests.support import Running, wait_until


def _device(svc: Running, device_id: str) -> Device:
    with svc.store.session() as db:
        d = db.get(Device, device_id)
        assert d is not None
        return d


def _alerts(svc: Running) -> list[Alert]:
    with svc.store.session() as db:
        return list(db.scalars(select(Alert)))


def _start_visit(badge, visit_id: str) -> None:  # type: ignore[no-untyped-def]
    badge.publish_raw(
        "visit",
        json.dumps(
            {
                "v": 1,
                "ts": int(time.time() * 1000),
                "id": visit_id,
                "action": "start",
                "duration_s": 1800,
                "note": "Flat 4",
            }
        ),
        qos=1,
    )
    badge.wait_for("visit_started", visit_id=visit_id, timeout=10)


def test_last_will_marks_offline_at_once_without_alert(svc: Running) -> None:
    badge, b = svc.badge("badge-h1")
    wait_until(lambda: _device(svc, b.device_id).online, timeout=10, what="online")
    badge.kill()
    wait_until(lambda: not _device(svc, b.device_id).online, timeout=10, what="offline")
    time.sleep(0.5)
    assert _alerts(svc) == []


def test_last_will_during_visit_raises_device_offline(svc: Running) -> None:
    badge, b = svc.badge("badge-h2")
    _start_visit(badge, "visit-h2")
    badge.kill()
    alert = wait_until(lambda: _alerts(svc), timeout=10, what="device_offline alert")[0]
    assert alert.type == "device_offline" and alert.device_id == b.device_id
    assert alert.note == "Flat 4" and alert.visit_id is not None


def test_missed_heartbeats_during_visit_raise_device_offline(svc: Running) -> None:
    badge, b = svc.badge("badge-h3")
    _start_visit(badge, "visit-h3")
    with svc.store.begin() as db:
        db.execute(update(Device).where(Device.id == b.device_id).values(heartbeat_interval_s=1))
    badge.heartbeat()  # the new interval applies from this message on
    wait_until(lambda: _device(svc, b.device_id).battery is not None, timeout=5, what="hb")
    # Goes quiet without a last will (a clean disconnect sends none).
    badge.disconnect()
    alert = wait_until(lambda: _alerts(svc), timeout=10, what="device_offline alert")[0]
    assert alert.type == "device_offline"
    device = _device(svc, b.device_id)
    assert not device.online
    assert device.last_seen_at is not None
    # Not before two heartbeat intervals (2 x 1 s) of silence.
    assert (alert.raised_at - device.last_seen_at).total_seconds() >= 2.0


def test_offline_detection_survives_restart(svc: Running) -> None:
    badge, b = svc.badge("badge-h4")
    with svc.store.begin() as db:
        db.execute(update(Device).where(Device.id == b.device_id).values(heartbeat_interval_s=1))
    badge.heartbeat()
    wait_until(lambda: _device(svc, b.device_id).battery is not None, timeout=5, what="hb")
    svc.stop()
    badge.disconnect()
    time.sleep(3)
    assert _device(svc, b.device_id).online  # nobody was watching
    svc.restart()
    wait_until(lambda: not _device(svc, b.device_id).online, timeout=5, what="offline at restart")
