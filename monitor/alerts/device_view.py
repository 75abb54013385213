"""What a device has been told of one of its alerts: the command that states it, and when
the alert ended as the device sees it. A duress alert looks exactly like a cancelled one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.alerts import rules
from monitor.alerts.models import Alert
from monitor.alerts.states import AlertState


@dataclass(frozen=True)
class Told:
    command: str
    # None while the alert is open for the device; else when it ended for the device.
    ended_at: datetime | None


def device_view(alert: Alert, duress_at: datetime | None) -> Told:
    """The state of a device's own alert as the device must see it. `duress_at` is when the
    duress PIN was accepted for it (its `duress` timeline entry), for a duress alert.

    The device answered a duress PIN exactly as a cancel PIN, so it must see what the cancel
    PIN would have left: an alert that was still open became cancelled then, one that had
    already ended stays as it ended, and nothing that happens to it afterwards shows.
    """
    if rules.under_duress(alert):
        at = duress_at or alert.raised_at
        if alert.resolved_at is not None and alert.resolved_at <= at:
            return Told("alert_closed", alert.resolved_at)
        if alert.cancelled_at is not None and alert.cancelled_at <= at:
            return Told("alert_cancelled", alert.cancelled_at)
        return Told("alert_cancelled", at)
    state = alert.state_enum
    if state is AlertState.CANCELLED:
        return Told("alert_cancelled", alert.cancelled_at or alert.raised_at)
    if state is AlertState.RESOLVED:
        return Told("alert_closed", alert.resolved_at or alert.raised_at)
    if state is AlertState.ACKNOWLEDGED:
        return Told("alert_acknowledged", None)
    return Told("alert_received", None)
