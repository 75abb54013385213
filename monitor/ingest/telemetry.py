"""The telemetry writer: locations, heartbeats, presence and refusals, many rows a transaction.

It runs on a thread of its own so that location traffic never stands in front of an alert;
messages are acknowledged to the broker only after their batch commits.
"""

from __future__ import annotations

import logging
import queue
import time
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from monitor import failures, metrics
from monitor.alerts import service as alerts
from monitor.config import Settings
from monitor.db import Store, Turn
from monitor.devices import service as devices
from monitor.devices.models import BatteryWarning
from monitor.events import AlertAside, Kind, emit
from monitor.ingest import refusals
from monitor.ingest.items import Item, ItemWorker, Stopping, count, device_refusal
from monitor.ingest.resync import resync
from monitor.ingest.states import DeviceState, insert_fixes, read_states, write_states
from monitor.orgs.models import Worker
from monitor.protocol import HeartbeatMsg, LocationMsg, StatusMsg
from monitor.visits import service as visits

log = logging.getLogger(__name__)

Reply = tuple[str, dict[str, Any]]


def note_battery(
    db: Session, device: DeviceState, level: int, at: datetime, threshold: int
) -> None:
    """Low battery is a warning on the worker, recorded when the level first drops below."""
    before = device.battery
    device.battery = level
    if device.worker_id is None:
        return
    if level < threshold and (before is None or before >= threshold):
        db.add(BatteryWarning(worker_id=device.worker_id, device_id=device.id, at=at, level=level))
        db.execute(
            update(Worker)
            .where(Worker.id == device.worker_id)
            .values(low_battery=True, low_battery_since=at)
        )
    elif level >= threshold and before is not None and before < threshold:
        db.execute(
            update(Worker)
            .where(Worker.id == device.worker_id)
            .values(low_battery=False, low_battery_since=None)
        )


class TelemetryWriter(ItemWorker):
    path = "telemetry"
    turn = Turn.BULK

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__("vigil-telemetry", store, settings)
        self._q: queue.SimpleQueue[Item] = queue.SimpleQueue()
        # Counted by the one thread that puts and the worker: ints change under the GIL.
        self._taken = 0
        self._finished = 0

    def put(self, item: Item) -> None:
        self._taken += 1
        self._q.put(item)

    def depth(self) -> int:
        """Messages handed over and not yet stored (or refused) and acknowledged."""
        return self._taken - self._finished

    def idle(self) -> bool:
        """Every item handed over so far is stored (or refused) and acknowledged: a retired
        telemetry session is drained (`TelemetryProcesses`)."""
        return self._finished == self._taken

    def finished(self, n: int) -> None:
        self._finished += n

    def run(self) -> None:
        max_n = self.settings.telemetry_batch_limit
        wait_s = self.settings.telemetry_batch_wait_ms / 1000
        while not self._stop_flag.is_set():
            try:
                first = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + wait_s
            while len(batch) < max_n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    batch.append(self._q.get(timeout=left))
                except queue.Empty:
                    break
            count(batch)
            self._commit(batch)

    def _commit(self, batch: list[Item]) -> None:
        try:
            replies = self.retrying(partial(self.apply, items=batch))
        except Stopping:
            return  # nothing acknowledged: the broker delivers them again
        except Exception:
            # It fails for good: store the messages one by one, so a single bad one cannot
            # hold up the rest.
            self._one_by_one(batch)
            return
        self._finish(batch, replies)

    def _finish(self, items: list[Item], replies: list[Reply]) -> None:
        for device_id, fields in replies:
            self.send_reply(device_id, "rejected", **fields)
        for item in items:
            item.ack()
        self.finished(len(items))

    def _one_by_one(self, batch: list[Item]) -> None:
        for item in batch:
            try:
                try:
                    replies = self.retrying(partial(self.apply, items=[item]))
                except Stopping:
                    raise
                except Exception as err:
                    log.error("message on %s cannot be stored", item.incoming.topic, exc_info=err)
                    refused = item.refused or item.refuse("store_failed", failures.describe(err))
                    replies = self.retrying(partial(refusals.refuse, r=refused))
            except Stopping:
                return
            self._finish([item], replies)

    def apply(self, db: Session, items: list[Item]) -> list[Reply]:
        replies: list[Reply] = []
        ids = {i.parsed.device_id for i in items if i.parsed is not None}
        # Plain rows, not ORM objects: a batch touches hundreds of devices, and the unit of
        # work's per-object flush was the largest cost of the whole service under load.
        known = read_states(db, ids)
        # Devices that came online, with when each was last heard from before this batch.
        heard = {d.id: d.last_seen_at for d in known.values()}
        returned: dict[str, datetime | None] = {}
        fixes: list[tuple[Any, ...]] = []
        moved: dict[str, dict[str, Any]] = {}
        threshold = self.settings.low_battery_pct
        for item in items:
            if item.parsed is None:
                assert item.refused is not None
                replies.extend(refusals.refuse(db, item.refused))
                continue
            dev = known.get(item.parsed.device_id)
            refused = device_refusal(item, None if dev is None else dev.enabled)
            if refused is not None:
                replies.extend(refusals.refuse(db, refused))
                continue
            assert dev is not None
            msg = item.parsed.msg
            at = item.received_at
            if isinstance(msg, StatusMsg):
                if msg.online:
                    returned[dev.id] = heard[dev.id]
                    devices.mark_seen(db, dev, at)
                    dev.changed = True
                else:
                    # The last will: the offline transition (and any alert) is claimed in the
                    # database, so what this batch learnt of the device is written first.
                    write_states(db, [dev])
                    visits.device_offline(db, dev.id, "last will", only_if_due=False)
                    dev.online, dev.offline_due_at, dev.changed = False, None, False
                continue
            devices.mark_seen(db, dev, at)
            dev.changed = True
            if isinstance(msg, LocationMsg):
                loc = msg.loc
                fixed_at = msg.at  # a property: made once
                fixes.append(devices.fix_row(dev.id, dev.worker_id, fixed_at, loc, msg.batt, at))
                if devices.note_fix(dev, fixed_at, loc):
                    moved[dev.id] = {"lat": loc.lat, "lon": loc.lon, "acc": loc.acc, "ts": msg.ts}
                if msg.batt is not None:
                    note_battery(db, dev, msg.batt, at, threshold)
            elif isinstance(msg, HeartbeatMsg):
                dev.charging, dev.rssi = msg.chg, msg.rssi
                if msg.fw is not None:
                    dev.firmware = msg.fw[:64]
                note_battery(db, dev, msg.batt, at, threshold)
        write_states(db, [d for d in known.values() if d.changed])
        resync(db, returned)
        if fixes:
            insert_fixes(db, fixes)
            metrics.TELEMETRY_BATCH.observe(len(fixes))
        if moved:
            # Operators follow an alerting worker's position live; others' stay private.
            for device_id, alerting in alerts.active_for_devices(db, list(moved)).items():
                details = {"device_id": device_id, "alert_ids": alerting.alert_ids}
                emit(
                    db,
                    AlertAside(
                        kind=Kind.ALERT_POSITION,
                        org_id=alerting.org_id,
                        team_id=alerting.team_id,
                        details={**details, **moved[device_id]},
                    ),
                )
        return replies
