"""`locate` commands for apps in HTTP mode, which can only be told in the answer to their
next POST: taken from the outbox (monitor.devices.commands), each handed out once here."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from monitor.db import Store, utcnow
from monitor.devices.models import DeviceCommand

# A request for a fix older than this is not worth answering: the next report will do.
FRESH = timedelta(minutes=10)


class Locates:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Device id -> the newest `locate` this replica has handed out. In memory: after a
        # restart, or from another replica, a recent one may be handed out again, which costs
        # one extra fix.
        self._given: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, device_id: str) -> bool:
        """Whether a `locate` is waiting for the device (and now counts as given)."""
        with self.store.session() as db:
            newest = db.scalar(
                select(func.max(DeviceCommand.id)).where(
                    DeviceCommand.device_id == device_id,
                    DeviceCommand.type == "locate",
                    DeviceCommand.created_at >= utcnow() - FRESH,
                )
            )
        if newest is None:
            return False
        with self._lock:
            if newest <= self._given.get(device_id, 0):
                return False
            self._given[device_id] = newest
            return True
