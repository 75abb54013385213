"""Low battery is a warning, not an alert (offline by last will or missed heartbeats, which
need the broker or a restart, is in tests/test_health.py)."""

from __future__ import annotations

from sqlalchemy import select

from monitor.devices.models import BatteryWarning
from monitor.orgs.models import Worker
from tests.fast.handlers import Handlers as Running
from tests.support import wait_until
from tests.test_health import _alerts, _device


def test_low_battery_is_a_warning_not_an_alert(svc: Running) -> None:
    badge, b = svc.badge("badge-h5")
    badge.heartbeat(batt=60)
    wait_until(lambda: _device(svc, b.device_id).battery == 60, timeout=5, what="batt 60")
    badge.heartbeat(batt=12)
    badge.heartbeat(batt=11)

    def warned() -> bool:
        with svc.store.session() as db:
            w = db.get(Worker, b.worker_id)
            return bool(w and w.low_battery)

    wait_until(warned, timeout=5, what="low battery warning")
    wait_until(lambda: _device(svc, b.device_id).battery == 11, timeout=5, what="batt 11")
    with svc.store.session() as db:
        levels = db.scalars(
            select(BatteryWarning.level).where(BatteryWarning.device_id == b.device_id)
        ).all()
    assert levels == [12]  # one warning per drop below the threshold
    assert _alerts(svc) == []
    badge.heartbeat(batt=80)
    wait_until(lambda: not warned(), timeout=5, what="warning cleared")
