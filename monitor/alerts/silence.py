"""An operator silencing one alert's alarm sound on their own console, for a while: the
console keeps the silence, the timeline keeps who asked and for how long."""

from __future__ import annotations

from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts.models import Alert
from monitor.alerts.service import announce, get, record
from monitor.events import Kind


class NotSounding(Exception):
    """The alert's alarm is not sounding (taken, closed, or a test): nothing to silence."""


def silence(db: Session, alert_id: int, *, actor: str, minutes: int) -> Alert:
    """Record that `actor` silenced the alert's sound for `minutes` on their console. The row
    still flashes there, and every other console still sounds."""
    alert = get(db, alert_id, for_update=True)
    if not rules.sounds_alarm(alert):
        raise NotSounding(f"alert {alert_id} is not sounding: nobody's alarm is on for it")
    record(
        db,
        alert,
        "sound_silenced",
        actor,
        f"Alarm sound silenced on {actor.removeprefix('user:')}'s console for {minutes} min",
        minutes=minutes,
    )
    announce(db, Kind.ALERT_UPDATED, alert)
    return alert
