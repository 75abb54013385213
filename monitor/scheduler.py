"""Durable timers: visit deadlines, overdue visits, silent devices, unsent commands, and
the deletion of expired location history; SQLite's checkpoints; the broker's password file
kept in step with the registry.

Every timer is a column in the store (a visit's `due_at`, a device's `offline_due_at`, an
unsent command), not a timer in memory: after a restart the first tick finds whatever fell
due while the service was down. Each action is claimed by a conditional update, so with
several replicas it still happens once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor import health
from monitor.broker_sync import BrokerSync
from monitor.config import Settings
from monitor.db import Store, utcnow
from monitor.devices import commands
from monitor.devices.models import Device, DeviceCommand
from monitor.ingest import waiting
from monitor.ingest.models import WaitingMessage
from monitor.privacy import retention
from monitor.visits import service as visits
from monitor.visits.models import Visit, VisitState

log = logging.getLogger(__name__)

BATCH = 500


class Scheduler(threading.Thread):
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        resend: Callable[[int, str, dict[str, Any]], None],
        take_published: Callable[[], list[int]],
        can_send: Callable[[], bool],
    ) -> None:
        super().__init__(name="vigil-scheduler", daemon=True)
        self.store = store
        self.settings = settings
        self._resend = resend
        self._take_published = take_published
        self._can_send = can_send
        self._last_try: dict[int, float] = {}
        self._stop_flag = threading.Event()
        self._next_purge = 0.0
        self._purging: threading.Thread | None = None
        # Every fix up to this id is deleted or kept for good (retention.expired).
        self._settled = 0
        # Set by VIGIL_BROKER_DIR (and the demo): also used by routes that change credentials.
        self.broker_sync = BrokerSync.from_settings(store, settings)

    def stop(self) -> None:
        self._stop_flag.set()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            try:
                # A write that changes nothing, every second: this replica's readiness (and
                # the consoles' banner) says the store cannot write before an alert finds out.
                self.store.probe(max_age=health.PROBE_EVERY_S)
                self.tick()
            except Exception as err:
                # Under a name of its own: the tick reads, and its reads must not clear what
                # the probe's writes met.
                self.store.health.store_failed(err, "scheduler tick")
                log.exception("scheduler tick failed; trying again")
            else:
                self.store.health.store_ok("scheduler tick")
            # Tells the consoles of what changes with no report: an MQTT link lost or back.
            self.store.health.check()
            self._stop_flag.wait(self.settings.scheduler_tick_s)
        if self._purging is not None:
            self._purging.join()  # it stops after its current batch: before the store closes

    def tick(self) -> None:
        if self.broker_sync is not None:
            self.broker_sync.check()
        now = utcnow()
        grace = self.settings.visit_grace_s
        with self.store.session() as db:
            due = db.scalars(
                select(Visit.id)
                .where(
                    Visit.state == VisitState.OPEN.value,
                    Visit.due_notified_at.is_(None),
                    Visit.due_at <= now,
                )
                .limit(BATCH)
            ).all()
            overdue = db.scalars(
                select(Visit.id)
                .where(
                    Visit.state == VisitState.OPEN.value,
                    Visit.overdue_alert_id.is_(None),
                    Visit.due_at <= now - timedelta(seconds=grace),
                )
                .limit(BATCH)
            ).all()
            silent = db.scalars(
                select(Device.id)
                .where(Device.online.is_(True), Device.offline_due_at <= now)
                .limit(BATCH)
            ).all()
            stale_waiting = db.scalar(
                select(WaitingMessage.id)
                .where(
                    WaitingMessage.received_at
                    <= now - timedelta(seconds=self.settings.waiting_max_s)
                )
                .limit(1)
            )
        for visit_id in due:
            self._each("visit due", visit_id, lambda db, v: visits.notify_due(db, v, now))
        for visit_id in overdue:
            self._each(
                "visit overdue", visit_id, lambda db, v: visits.raise_overdue(db, v, now, grace)
            )
        for device_id in silent:
            self._each(
                "offline check",
                device_id,
                lambda db, d: visits.device_offline(
                    db, d, "missed two heartbeats", only_if_due=True
                ),
            )
        if stale_waiting is not None:
            self._each(
                "expiring held messages",
                now,
                lambda db, t: waiting.expire(db, t, self.settings.waiting_max_s),
            )
        self._mark_sent()
        self._resend_unsent()
        self.store.checkpoint()
        if self.settings.location_retention_days > 0 and time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + self.settings.location_purge_every_s
            # On a thread of its own: a long first purge must not hold up overdue visits
            # and silent devices, which this thread raises alerts for.
            if self._purging is None or not self._purging.is_alive():
                self._purging = threading.Thread(
                    target=self._purge_locations, name="vigil-retention", daemon=True
                )
                self._purging.start()

    def _purge_locations(self) -> None:
        keep = timedelta(days=self.settings.location_retention_days)
        now, deleted = utcnow(), 0
        try:
            # Found with one session, deleted a batch per transaction: a first purge of a
            # large backlog never holds a long transaction over the telemetry writers.
            with self.store.session() as reading:
                for batch in retention.expired(reading, now, keep, after=self._settled):
                    if self._stop_flag.is_set():
                        break
                    with self.store.begin(bulk=True) as db:
                        deleted += retention.delete_fixes(db, batch.doomed)
                    self._settled = batch.settled
        except Exception:
            log.exception("deleting expired location history failed; will try again")
        if deleted:
            log.info("deleted %d location fixes older than the retention time", deleted)

    def _each(self, what: str, key: Any, action: Callable[[Session, Any], object]) -> None:
        # One item that fails must not hold up the others due in the same tick.
        try:
            with self.store.begin() as db:
                action(db, key)
        except Exception:
            log.exception("%s for %s failed; will try again", what, key)

    def _mark_sent(self) -> None:
        done = self._take_published()
        if done:
            with self.store.begin() as db:
                commands.mark_sent(db, done)

    def _resend_unsent(self) -> None:
        if not self._can_send():
            return
        wait = self.settings.command_resend_s
        cutoff = utcnow() - timedelta(seconds=wait)
        with self.store.session() as db:
            rows = db.execute(
                select(DeviceCommand.id, DeviceCommand.device_id, DeviceCommand.payload)
                .where(DeviceCommand.sent_at.is_(None), DeviceCommand.created_at <= cutoff)
                .order_by(DeviceCommand.id)
                .limit(BATCH)
            ).all()
        mono = time.monotonic()
        for cmd_id, device_id, payload in rows:
            if mono - self._last_try.get(cmd_id, 0.0) < wait:
                continue
            self._last_try[cmd_id] = mono
            log.info("publishing command %s to %s again", payload.get("type"), device_id)
            self._resend(cmd_id, device_id, payload)
        live = {r[0] for r in rows}
        for cmd_id in list(self._last_try):
            if cmd_id not in live:
                del self._last_try[cmd_id]
