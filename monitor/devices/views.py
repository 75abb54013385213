"""REST routes for the device registry and fleet health."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from monitor.alerts import rules
from monitor.alerts.models import Alert
from monitor.deps import ReadSessionDep, ScopeDep, Supervisor
from monitor.devices.models import Device, DeviceOut
from monitor.orgs.models import Worker
from monitor.privacy import positions
from monitor.visits.models import Visit, VisitState

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("")
def list_devices(db: ReadSessionDep, user: Supervisor, scope: ScopeDep) -> list[DeviceOut]:
    """The fleet's health: online or not, battery, last seen, who carries it, open visit."""
    visits = {
        v.device_id: v
        for v in db.scalars(select(Visit).where(Visit.state == VisitState.OPEN.value))
    }
    rows = db.execute(
        select(Device, Worker.name)
        .outerjoin(Worker, Worker.id == Device.worker_id)
        .where(scope.covers(Device.worker_id))
        .order_by(Device.id)
    ).all()
    # Devices whose worker has an active alert: few, whatever the size of the fleet.
    alerting = set(db.scalars(select(Alert.device_id).where(rules.is_open_sql())))
    out = []
    for device, worker_name in rows:
        row = DeviceOut.model_validate(device)
        row.worker_name = worker_name
        visit = visits.get(device.id)
        if visit is not None:
            row.visit_note, row.visit_due_at = visit.note, visit.due_at
        active = visit is not None or device.id in alerting
        out.append(positions.device(row, scope.positions_always, active))
    return out
