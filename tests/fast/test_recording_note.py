"""The worker stopping the app's recording is in the alert's timeline, once per press."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import select

from monitor.alerts.models import Alert, AlertEvent
from tests.fast.handlers import Handlers as Running


def test_a_stopped_recording_is_in_the_timeline_once(svc: Running) -> None:
    badge, b = svc.badge("badge-rec")
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    url = f"/api/v1/devices/{b.device_id}/alerts/{alert_id}/recording"
    auth = httpx.BasicAuth(b.device_id, b.secret)
    press = {"recording": False, "ts": int(time.time() * 1000)}

    assert svc.http.post(url, json=press, auth=auth).status_code == 204
    assert svc.http.post(url, json=press, auth=auth).status_code == 204  # sent again
    again = {"recording": True, "ts": press["ts"] + 5000}
    assert svc.http.post(url, json=again, auth=auth).status_code == 204

    wrong = httpx.BasicAuth(b.device_id, "not-the-secret")
    assert svc.http.post(url, json=press, auth=wrong).status_code == 401
    unknown = f"/api/v1/devices/{b.device_id}/alerts/no-such-alert-1/recording"
    assert svc.http.post(unknown, json=press, auth=auth).status_code == 404
    assert svc.http.post(url, json={"recording": "no", "ts": 1}, auth=auth).status_code == 422

    with svc.store.session() as db:
        alert = db.scalars(select(Alert).where(Alert.device_alert_id == alert_id)).one()
        kinds = db.scalars(
            select(AlertEvent.kind)
            .where(AlertEvent.alert_id == alert.id, AlertEvent.kind.like("recording_%"))
            .order_by(AlertEvent.seq)
        ).all()
    assert kinds == ["recording_stopped", "recording_started"]
