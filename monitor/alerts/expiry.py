"""Test alerts that close themselves: one nobody took charge of is resolved as a test by the
service once VIGIL_TEST_ALERT_CLOSE_MIN has passed (the scheduler's `test_alerts` job)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts.models import Alert
from monitor.alerts.service import get, resolve
from monitor.alerts.states import AlertState, Outcome


def tests_to_close(db: Session, now: datetime, after: timedelta, limit: int) -> Sequence[int]:
    """Quiet alerts nobody has taken charge of, raised `after` ago or longer."""
    return db.scalars(
        select(Alert.id)
        .where(
            Alert.state == AlertState.RAISED.value,
            rules.is_quiet_sql(),
            Alert.raised_at <= now - after,
        )
        .order_by(Alert.id)
        .limit(limit)
    ).all()


def close_test(db: Session, alert_id: int, now: datetime, after: timedelta) -> bool:
    """Resolve the test alert with the outcome test, by "system", saying why; False if,
    under its lock, it is no longer one to close (taken, closed, or turned to duress since it
    was found)."""
    alert = get(db, alert_id, for_update=True)
    if alert.state != AlertState.RAISED.value or not rules.is_quiet(alert):
        return False
    if alert.raised_at > now - after:
        return False
    minutes = after.total_seconds() / 60
    resolve(
        db,
        alert_id,
        actor="system",
        outcome=Outcome.TEST,
        note=f"Closed by Vigil: a test alert nobody took charge of within {minutes:g} min "
        "(VIGIL_TEST_ALERT_CLOSE_MIN)",
    )
    return True
