"""Commands to devices: written to the outbox with the change that causes them.

The row commits with the change; the `device.command` event then asks the MQTT side to publish
it, and the scheduler publishes again whatever the broker has not acknowledged, so a crash
between commit and publish delays a command but never loses it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from monitor.db import utcnow
from monitor.devices.models import DeviceCommand
from monitor.events import CommandQueued, emit


def command_payload(type_: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "ts": int(time.time() * 1000), "type": type_, **fields}


def queue_command(db: Session, device_id: str, type_: str, **fields: Any) -> DeviceCommand:
    cmd = DeviceCommand(device_id=device_id, type=type_, payload=command_payload(type_, **fields))
    db.add(cmd)
    db.flush()
    emit(db, CommandQueued(id=cmd.id, device_id=device_id, payload=cmd.payload))
    return cmd


def mark_sent(db: Session, command_ids: list[int]) -> None:
    """The broker has acknowledged these outbox rows: they are not published again."""
    db.execute(
        update(DeviceCommand).where(DeviceCommand.id.in_(command_ids)).values(sent_at=utcnow())
    )


# A command the broker has taken is never published again; it is kept a day, to look into a
# delivery, then deleted: what it carried (a visit's cautions, personal data that expires
# and may be deleted sooner, docs/privacy.md) must not outlive it in the outbox.
SENT_KEPT = timedelta(days=1)
BATCH = 500


def any_sent_before(db: Session, now: datetime) -> bool:
    """Whether a command is due for deletion (one indexed look-up, for every tick)."""
    cutoff = now - SENT_KEPT
    return (
        db.scalar(select(DeviceCommand.id).where(DeviceCommand.sent_at < cutoff).limit(1))
        is not None
    )


def delete_sent(db: Session, now: datetime) -> int:
    """Delete up to BATCH commands the broker took more than SENT_KEPT before `now`."""
    ids = list(
        db.scalars(
            select(DeviceCommand.id)
            .where(DeviceCommand.sent_at < now - SENT_KEPT)
            .order_by(DeviceCommand.id)
            .limit(BATCH)
        )
    )
    if ids:
        db.execute(delete(DeviceCommand).where(DeviceCommand.id.in_(ids)))
    return len(ids)
