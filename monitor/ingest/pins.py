"""PIN checks for cancels and visit ends, on a thread of their own.

argon2 is slow on purpose (tens of milliseconds a check), so a device keying PINs in a loop
must not hold up another device's alert: the urgent worker hands such a message here and
goes on with other devices; the device's own messages wait until its check is done. A PIN
is checked only against an alert the device has raised, and a device gets `WRONG_PIN_LIMIT`
wrong PINs in `WRONG_PIN_WINDOW`; after that its cancels are refused unchecked (the alert
goes on) until the window has passed; only the duress PIN still counts then, silently.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.alerts.models import Alert, AlertEvent
from monitor.alerts.service import find_device_alert
from monitor.config import Settings
from monitor.db import Store, utcnow
from monitor.devices.models import Device
from monitor.ingest.items import Item, ItemWorker, Stopping
from monitor.orgs.models import Worker
from monitor.orgs.service import check_pin
from monitor.protocol import CancelMsg, VisitMsg

WRONG_PIN_LIMIT = 5
WRONG_PIN_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class PinCheck:
    """What a message's PIN turned out to be: "cancel", "duress" or None (wrong); whether it
    was checked at all (not when there was nothing yet to check it against), and whether
    the device was locked out. Locked out, the PIN is still checked, for the duress PIN:
    a worker made to "cancel" after mistyping must still raise the silent alarm."""

    kind: str | None
    checked: bool = True
    locked: bool = False


def needs_check(item: Item) -> bool:
    msg = item.parsed.msg if item.parsed is not None else None
    return isinstance(msg, CancelMsg | VisitMsg) and msg.pin is not None


def wrong_pins(db: Session, device_id: str) -> int:
    """Cancels refused for a wrong PIN on this device's alerts within the window."""
    since = utcnow() - WRONG_PIN_WINDOW
    return (
        db.scalar(
            select(func.count())
            .select_from(AlertEvent)
            .join(Alert, Alert.id == AlertEvent.alert_id)
            .where(
                Alert.device_id == device_id,
                AlertEvent.kind == "cancel_rejected",
                AlertEvent.at >= since,
            )
        )
        or 0
    )


def check(db: Session, item: Item) -> PinCheck:
    assert item.parsed is not None
    msg = item.parsed.msg
    assert isinstance(msg, CancelMsg | VisitMsg) and msg.pin is not None
    device = db.get(Device, item.parsed.device_id)
    worker = db.get(Worker, device.worker_id) if device and device.worker_id else None
    if worker is None:
        return PinCheck(None)
    locked = False
    if isinstance(msg, CancelMsg):
        if find_device_alert(db, item.parsed.device_id, msg.alert_id) is None:
            # Held until the alert arrives, and checked then; or, if another replica stores
            # the alert meanwhile, checked where the cancel is applied.
            return PinCheck(None, checked=False)
        locked = wrong_pins(db, item.parsed.device_id) >= WRONG_PIN_LIMIT
    return PinCheck(check_pin(worker, msg.pin), locked=locked)


class PinChecker(ItemWorker):
    """Checks the PIN of each message handed to it and gives the message back with the
    result."""

    path = "pins"

    def __init__(
        self, store: Store, settings: Settings, resume: Callable[[Item, PinCheck], None]
    ) -> None:
        super().__init__("vigil-pins", store, settings)
        self._resume = resume
        self._q: queue.SimpleQueue[Item] = queue.SimpleQueue()

    def put(self, item: Item) -> None:
        self._q.put(item)

    def run(self) -> None:
        while not self._stop_flag.is_set():
            try:
                item = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                result = self.retrying(partial(check, item=item), read_only=True)
            except Stopping:
                return  # not acknowledged: the broker delivers it again
            except Exception:
                # Not a passing failure: the message is applied with its PIN taken as wrong,
                # so the alert goes on.
                result = PinCheck(None)
            self._resume(item, result)
