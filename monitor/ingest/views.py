"""REST route for refused device messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from monitor.deps import ReadSessionDep, ScopeDep, Supervisor
from monitor.devices.models import Device
from monitor.ingest.models import RefusedMessage, RefusedOut

router = APIRouter(prefix="/api/v1/refused", tags=["refused"])


@router.get("")
def list_refused(
    db: ReadSessionDep,
    user: Supervisor,
    scope: ScopeDep,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RefusedOut]:
    """Device messages the service refused, newest first, with the reason for each."""
    q = select(RefusedMessage).order_by(RefusedMessage.id.desc()).limit(limit)
    if not scope.service_wide:
        # A message is about the worker carrying the device that sent it; messages under
        # ids that are no registered device are seen by the whole service's people only.
        q = q.where(
            RefusedMessage.device_id.in_(select(Device.id).where(scope.covers(Device.worker_id)))
        )
    if device_id:
        q = q.where(RefusedMessage.device_id == device_id)
    return [RefusedOut.model_validate(r) for r in db.scalars(q)]
