"""Durable timers: visit deadlines, overdue visits, silent devices, test alerts left open,
unsent commands, and the deletion of sent commands, expired location history and cautions; SQLite's
checkpoints; the broker's password file kept in step with the registry. Each is a job of every tick
(`Scheduler.jobs`), run on its own: one that fails does not stop the others.

Every timer is a column in the store (a visit's `due_at`, a device's `offline_due_at`, an
unsent command), not a timer in memory: after a restart the first tick finds whatever fell
due while the service was down. Each action is claimed by a conditional update, so with
several replicas it still happens once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor import failures, health, metrics
from monitor.alerts import expiry
from monitor.broker_sync import BrokerSync
from monitor.config import Settings
from monitor.db import Store, Turn, utcnow
from monitor.devices import commands
from monitor.devices.models import Device, DeviceCommand
from monitor.ingest import waiting
from monitor.ingest.models import WaitingMessage
from monitor.places import expiry as caution_expiry
from monitor.privacy import retention
from monitor.visits import service as visits
from monitor.visits.models import Visit, VisitState

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True)
class Job:
    """One thing every tick does, given the tick's time. It runs whatever the jobs before it
    did: one that raises is logged and counted under its name
    (`vigil_scheduler_failures_total{job=...}`), and the next still runs."""

    name: str
    run: Callable[[datetime], object]


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
        grace = settings.visit_grace_s
        # What each tick does, in this order. A new job is one more entry.
        self.jobs: list[Job] = [
            # A write that changes nothing, every second: this replica's readiness (and the
            # consoles' banner) says the store cannot write before an alert finds out.
            Job("probe", lambda now: store.probe(max_age=health.PROBE_EVERY_S)),
            self._each_due(
                "visits_due", self._due_visits, lambda db, v, now: visits.notify_due(db, v, now)
            ),
            self._each_due(
                "visits_overdue",
                self._overdue_visits,
                lambda db, v, now: visits.raise_overdue(db, v, now, grace),
            ),
            self._each_due(
                "silent_devices",
                self._silent_devices,
                lambda db, d, now: visits.device_offline(
                    db, d, "missed two heartbeats", only_if_due=True
                ),
            ),
            self._each_due(
                "test_alerts",
                self._tests_to_close,
                lambda db, a, now: expiry.close_test(db, a, now, self._test_close_after),
            ),
            Job("held_messages", self._expire_held),
            Job("commands_published", self._mark_sent),
            Job("commands_unsent", self._resend_unsent),
            Job("commands_sent", self._forget_sent),
            Job("checkpoint", lambda now: store.checkpoint()),
            Job("location_retention", self._start_purge),
            Job("caution_expiry", self._expire_cautions),
            # Last: a reload of the broker can take seconds, and the jobs before it share the
            # tick's time.
            Job("broker_sync", self._sync_broker),
        ]

    def stop(self) -> None:
        self._stop_flag.set()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            self.tick()
            # Tells the consoles of what changes with no report: an MQTT link lost or back.
            self.store.health.check()
            self._stop_flag.wait(self.settings.scheduler_tick_s)
        if self._purging is not None:
            self._purging.join()  # it stops after its current batch: before the store closes

    def tick(self) -> None:
        """Every job once, in order, each on its own."""
        now = utcnow()
        failed = False
        for job in self.jobs:
            try:
                job.run(now)
            except Exception as err:
                failed = True
                self._failed(job.name, err)
                # Under a name of its own: the jobs read, and their reads must not clear what
                # the probe's writes met.
                self.store.health.store_failed(err, "scheduler tick")
        if not failed:
            self.store.health.store_ok("scheduler tick")

    def _failed(self, job: str, err: Exception, what: object = None) -> None:
        metrics.SCHEDULER_FAILURES.labels(job).inc()
        of = "" if what is None else f" for {what}"
        if failures.is_transient(err):
            # Every job meets the same outage: a line each, not a traceback each, per tick.
            log.warning("scheduler job %s%s: store unavailable (%s); will try again", job, of, err)
        else:
            log.error("scheduler job %s%s failed; will try again", job, of, exc_info=err)

    def _each_due(
        self,
        name: str,
        find: Callable[[Session, datetime], Sequence[Any]],
        act: Callable[[Session, Any, datetime], object],
    ) -> Job:
        """A job that finds what fell due (`find`, at most `BATCH`) and acts on each in a
        transaction of its own: one that fails does not hold up the others due."""

        def run(now: datetime) -> None:
            with self.store.session() as db:
                keys = find(db, now)
            for key in keys:
                try:
                    with self.store.begin() as db:
                        act(db, key, now)
                except Exception as err:
                    self._failed(name, err, key)

        return Job(name, run)

    def _sync_broker(self, now: datetime) -> None:
        if self.broker_sync is not None:
            self.broker_sync.check()

    def _due_visits(self, db: Session, now: datetime) -> Sequence[int]:
        return db.scalars(
            select(Visit.id)
            .where(
                Visit.state == VisitState.OPEN.value,
                Visit.due_notified_at.is_(None),
                Visit.due_at <= now,
            )
            .limit(BATCH)
        ).all()

    def _overdue_visits(self, db: Session, now: datetime) -> Sequence[int]:
        grace = timedelta(seconds=self.settings.visit_grace_s)
        return db.scalars(
            select(Visit.id)
            .where(
                Visit.state == VisitState.OPEN.value,
                Visit.overdue_alert_id.is_(None),
                Visit.due_at <= now - grace,
            )
            .limit(BATCH)
        ).all()

    def _silent_devices(self, db: Session, now: datetime) -> Sequence[str]:
        return db.scalars(
            select(Device.id)
            .where(Device.online.is_(True), Device.offline_due_at <= now)
            .limit(BATCH)
        ).all()

    @property
    def _test_close_after(self) -> timedelta:
        return timedelta(minutes=self.settings.test_alert_close_min)

    def _tests_to_close(self, db: Session, now: datetime) -> Sequence[int]:
        if self.settings.test_alert_close_min <= 0:
            return []  # never
        return expiry.tests_to_close(db, now, self._test_close_after, BATCH)

    def _expire_held(self, now: datetime) -> None:
        """Refuse messages held too long for the alert or visit they are about."""
        max_age = self.settings.waiting_max_s
        with self.store.session() as db:
            stale = db.scalar(
                select(WaitingMessage.id)
                .where(WaitingMessage.received_at <= now - timedelta(seconds=max_age))
                .limit(1)
            )
        if stale is not None:
            with self.store.begin() as db:
                waiting.expire(db, now, max_age)

    def _start_purge(self, now: datetime) -> None:
        if self.settings.location_retention_days <= 0 or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.settings.location_purge_every_s
        # On a thread of its own: a long first purge must not hold up overdue visits and
        # silent devices, which this thread raises alerts for.
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
                    with self.store.begin(turn=Turn.BULK) as db:
                        deleted += retention.delete_fixes(db, batch.doomed)
                    self._settled = batch.settled
        except Exception as err:
            self._failed("location_retention", err)  # the job started it: counted under its name
        if deleted:
            log.info("deleted %d location fixes older than the retention time", deleted)

    def _expire_cautions(self, now: datetime) -> None:
        """Delete cautions kept VIGIL_CAUTION_KEEP_DAYS past their expiry (docs/privacy.md);
        a look-up by an index each tick, a write only when one is due."""
        keep, on = self.settings.caution_keep_days, now.date()
        with self.store.session() as db:
            due = caution_expiry.any_due(db, on, keep)
        if due:
            with self.store.begin() as db:
                caution_expiry.delete_expired(db, on, keep)

    def _mark_sent(self, now: datetime) -> None:
        done = self._take_published()
        if done:
            with self.store.begin() as db:
                commands.mark_sent(db, done)

    def _forget_sent(self, now: datetime) -> None:
        """Delete commands the broker took a day ago (commands.SENT_KEPT); a look-up by an
        index each tick, a write only when one is due."""
        with self.store.session() as db:
            due = commands.any_sent_before(db, now)
        if due:
            with self.store.begin() as db:
                commands.delete_sent(db, now)

    def _resend_unsent(self, now: datetime) -> None:
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
