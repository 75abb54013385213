"""The scheduler's jobs each run on their own: one that raises is counted under its name, and
the jobs after it in the same tick still do their work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from monitor.config import Settings
from monitor.db import Store, utcnow
from monitor.devices import commands
from monitor.devices.models import DeviceCommand
from monitor.ingest import waiting
from monitor.ingest.models import RefusedMessage, WaitingMessage
from monitor.migrate import upgrade
from monitor.scheduler import Job, Scheduler
from tests.support import add_badge


def failures(job: str) -> float:
    return REGISTRY.get_sample_value("vigil_scheduler_failures_total", {"job": job}) or 0.0


def test_a_job_that_raises_does_not_stop_the_next(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, waiting_max_s=30)
    store = Store(settings.sqlalchemy_url)
    upgrade(store)
    badge = add_badge(store, "badge-s1")
    # A cancel held for an alert that never came, for longer than it may wait.
    with store.begin() as db:
        waiting.hold(
            db,
            device_id=badge.device_id,
            suffix="alert/cancel",
            ref_id="alert-never",
            topic=f"vigil/v1/{badge.device_id}/alert/cancel",
            payload=b'{"v":1}',
            received_at=utcnow() - timedelta(seconds=60),
        )
    scheduler = Scheduler(
        store, settings, resend=lambda *_: None, take_published=list, can_send=lambda: False
    )
    ran: list[str] = []

    def broken(now: object) -> None:
        ran.append("broken")
        raise RuntimeError("a bug in one job")

    scheduler.jobs.insert(0, Job("broken", broken))
    scheduler.jobs.append(Job("last", lambda now: ran.append("last")))
    before = failures("broken"), failures("held_messages")
    try:
        scheduler.tick()
        scheduler.tick()
    finally:
        store.dispose()
    assert ran == ["broken", "last", "broken", "last"]
    assert (failures("broken"), failures("held_messages")) == (before[0] + 2, before[1])
    with store.session() as db:
        assert db.scalar(select(func.count()).select_from(WaitingMessage)) == 0
        (refused,) = db.scalars(select(RefusedMessage)).all()
    assert refused.reason == "unknown alert alert-never"
    # A bug is not the store failing: readiness is not changed by it.
    assert store.health.status().store is None


def test_commands_the_broker_took_are_deleted_a_day_later(tmp_path: Path) -> None:
    # A visit's `visit_started` carries the cautions at its place, personal data that expires
    # and can be deleted: the outbox must not keep a copy of it for ever.
    settings = Settings(data_dir=tmp_path)
    store = Store(settings.sqlalchemy_url)
    upgrade(store)
    badge = add_badge(store, "badge-s2")
    now = utcnow()
    with store.begin() as db:
        made = {
            name: commands.queue_command(
                db, badge.device_id, "visit_started", visit_id=name, cautions=[{"text": name}]
            ).id
            for name in ("old", "recent", "unsent")
        }
        db.execute(
            update(DeviceCommand)
            .where(DeviceCommand.id == made["old"])
            .values(sent_at=now - commands.SENT_KEPT - timedelta(minutes=1))
        )
        db.execute(
            update(DeviceCommand)
            .where(DeviceCommand.id == made["recent"])
            .values(sent_at=now - commands.SENT_KEPT + timedelta(minutes=5))
        )
        # Never taken by the broker: published again until it is, whatever its age.
        db.execute(
            update(DeviceCommand)
            .where(DeviceCommand.id == made["unsent"])
            .values(created_at=now - timedelta(days=30))
        )
    scheduler = Scheduler(
        store, settings, resend=lambda *_: None, take_published=list, can_send=lambda: False
    )
    try:
        scheduler.tick()
        with store.session() as db:
            left = set(db.scalars(select(DeviceCommand.id)))
    finally:
        store.dispose()
    assert left == {made["recent"], made["unsent"]}
