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

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from monitor import metrics
from monitor.alerts import service as alerts
from monitor.config import Settings
from monitor.db import Store
from monitor.devices import service as devices
from monitor.devices.models import BatteryWarning, Device, LocationFix
from monitor.events import emit
from monitor.ingest import failures, refusals
from monitor.ingest.items import Item, ItemWorker, Stopping, device_refusal
from monitor.ingest.messages import HeartbeatMsg, LocationMsg, StatusMsg
from monitor.orgs.models import Worker

log = logging.getLogger(__name__)

Reply = tuple[str, dict[str, Any]]


def note_battery(db: Session, device: Device, level: int, at: datetime, threshold: int) -> None:
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
        emit(db, "worker.low_battery", worker_id=device.worker_id, device_id=device.id, level=level)
    elif level >= threshold and before is not None and before < threshold:
        db.execute(
            update(Worker)
            .where(Worker.id == device.worker_id)
            .values(low_battery=False, low_battery_since=None)
        )


class TelemetryWriter(ItemWorker):
    path = "telemetry"

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__("vigil-telemetry", store, settings)

    def run(self) -> None:
        max_n = self.settings.telemetry_batch_max
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
            metrics.QUEUE_DEPTH.labels("telemetry").set(self._q.qsize())
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
        known = (
            {d.id: d for d in db.scalars(select(Device).where(Device.id.in_(ids)))} if ids else {}
        )
        fixes: list[dict[str, Any]] = []
        moved: dict[str, dict[str, Any]] = {}
        threshold = self.settings.low_battery_pct
        for item in items:
            if item.parsed is None:
                assert item.refused is not None
                replies.extend(refusals.refuse(db, item.refused))
                continue
            refused = device_refusal(item, known.get(item.parsed.device_id))
            if refused is not None:
                replies.extend(refusals.refuse(db, refused))
                continue
            dev = known[item.parsed.device_id]
            msg = item.parsed.msg
            at = item.received_at
            if isinstance(msg, StatusMsg):
                if msg.online:
                    devices.mark_seen(db, dev, at)
                else:
                    db.flush()
                    devices.go_offline(db, dev.id, "last will", only_if_due=False)
                    db.refresh(dev)
                continue
            devices.mark_seen(db, dev, at)
            if isinstance(msg, LocationMsg):
                loc = msg.loc
                fixes.append(devices.fix_row(dev, msg.at, loc, msg.batt, at))
                if devices.note_fix(dev, msg.at, loc):
                    moved[dev.id] = {"lat": loc.lat, "lon": loc.lon, "acc": loc.acc, "ts": msg.ts}
                if msg.batt is not None:
                    note_battery(db, dev, msg.batt, at, threshold)
            elif isinstance(msg, HeartbeatMsg):
                dev.charging, dev.rssi = msg.chg, msg.rssi
                if msg.fw is not None:
                    dev.firmware = msg.fw[:64]
                note_battery(db, dev, msg.batt, at, threshold)
        if fixes:
            db.execute(insert(LocationFix), fixes)
            metrics.TELEMETRY_BATCH.observe(len(fixes))
        if moved:
            # Operators follow an alerting worker's position live; others' stay private.
            for device_id, alert_ids in alerts.active_for_devices(db, list(moved)).items():
                emit(
                    db,
                    "alert.position",
                    device_id=device_id,
                    alert_ids=alert_ids,
                    **moved[device_id],
                )
        return replies
