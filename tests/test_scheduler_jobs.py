"""The scheduler's jobs each run on their own: one that raises is counted under its name, and
the jobs after it in the same tick still do their work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import REGISTRY
from sqlalchemy import func, select

from monitor.config import Settings
from monitor.db import Store, utcnow
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
