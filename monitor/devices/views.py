"""REST routes for the device registry and fleet health."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from monitor.deps import SessionDep, Supervisor
from monitor.devices.models import Device, DeviceOut

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("")
def list_devices(db: SessionDep, user: Supervisor) -> list[DeviceOut]:
    return [DeviceOut.model_validate(d) for d in db.scalars(select(Device).order_by(Device.id))]
