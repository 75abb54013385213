"""The worker stopping or restarting the app's recording during an alert, in the alert's
timeline: an operator listening must know why the clips stopped coming."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from monitor.alerts import rules
from monitor.alerts import service as alerts
from monitor.alerts.models import AlertEvent
from monitor.deps import CurrentDevice, StoreDep
from monitor.events import Kind
from monitor.evidence.views import DevicePath
from monitor.protocol import AlertId, DeviceTs

router = APIRouter(prefix="/api/v1/devices", tags=["worker app"])


class RecordingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    recording: bool
    ts: DeviceTs  # when the worker pressed the button, as the protocol's `ts`


@router.post("/{device_id}/alerts/{alert_id}/recording", status_code=status.HTTP_204_NO_CONTENT)
def recording(
    device_id: DevicePath,
    alert_id: Annotated[AlertId, Field()],
    body: RecordingIn,
    device: CurrentDevice,
    store: StoreDep,
) -> None:
    """Note in the alert's timeline that the worker stopped (or restarted) recording
    (HTTP Basic auth: DEVICE and its secret). Sent again, the same press is noted once."""
    at = datetime.fromtimestamp(body.ts / 1000, UTC)
    kind = "recording_started" if body.recording else "recording_stopped"
    with store.begin() as db:
        alert = alerts.find_device_alert(db, device.id, alert_id, for_update=True)
        if alert is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown alert {alert_id}")
        if not rules.is_open(alert):
            # Nothing to note once it is over, and no way to grow a closed incident's record.
            raise HTTPException(status.HTTP_409_CONFLICT, f"alert {alert_id} is over")
        noted = db.scalars(
            select(AlertEvent.data).where(AlertEvent.alert_id == alert.id, AlertEvent.kind == kind)
        )
        if any(data.get("ts") == body.ts for data in noted):
            return  # a resent press
        text = (
            "The worker started the app's recording again"
            if body.recording
            else "The worker stopped the app's recording"
        )
        alerts.record(db, alert, kind, f"device:{device.id}", text, ts=body.ts, at=at.isoformat())
        alerts.announce(db, Kind.ALERT_UPDATED, alert)


def install(app: FastAPI, context: dict[str, Any]) -> None:
    app.include_router(router)
