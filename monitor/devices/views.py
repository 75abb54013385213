"""REST routes for the device registry and fleet health."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from monitor.deps import ReadSessionDep, ScopeDep, Supervisor
from monitor.devices.models import Device, DeviceOut
from monitor.orgs.models import Worker
from monitor.visits.models import Visit, VisitState

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("")
def list_devices(db: ReadSessionDep, user: Supervisor, scope: ScopeDep) -> list[DeviceOut]:
    """The fleet's health: online or not, battery, last seen, who carries it, open visit."""
    visits = {
        v.device_id: v
        for v in db.scalars(select(Visit).where(Visit.state == VisitState.OPEN.value))
    }
    out = []
    for device, worker_name in db.execute(
        select(Device, Worker.name)
        .outerjoin(Worker, Worker.id == Device.worker_id)
        .where(scope.covers(Device.worker_id))
        .order_by(Device.id)
    ):
        row = DeviceOut.model_validate(device)
        row.worker_name = worker_name
        visit = visits.get(device.id)
        if visit is not None:
            row.visit_note, row.visit_due_at = visit.note, visit.due_at
        out.append(row)
    return out
