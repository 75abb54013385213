"""The rules about an alert that several parts of Vigil ask, each written once: a Python
predicate on a loaded alert, and beside it its SQL twin for queries that select by it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, not_, or_
from sqlalchemy.orm import aliased

from monitor.alerts.models import Alert
from monitor.alerts.states import ACTIVE_STATES, AlertState

_ACTIVE = [s.value for s in ACTIVE_STATES]


# -- open: nobody has resolved or cancelled it yet


def is_open(alert: Alert) -> bool:
    """Raised or acknowledged: not yet resolved or cancelled (states.ACTIVE_STATES)."""
    return alert.state in _ACTIVE


def is_open_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return alert.state.in_(_ACTIVE)


# -- under duress: the worker keyed the duress PIN, and may be with someone who threatens them


def under_duress(alert: Alert) -> bool:
    """Raised or cancelled with the duress PIN (it stays so, whatever happens to the alert)."""
    return alert.duress


def under_duress_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return alert.duress.is_(True)


def open_under_duress(alert: Alert) -> bool:
    """Under duress and still open: it keeps the worker's phone silent for every alert of
    the device, and keeps the escalation going after someone took the alert."""
    return under_duress(alert) and is_open(alert)


def open_under_duress_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return and_(under_duress_sql(alert), is_open_sql(alert))


def device_under_duress_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    """Whether any open alert of `alert`'s device (itself included) is under duress. Its
    Python twin needs the store: alerts.service.active_duress."""
    other = aliased(Alert)
    return exists().where(other.device_id == alert.device_id, open_under_duress_sql(other))


# -- escalation


def should_escalate(alert: Alert) -> bool:
    """Whether the alert's escalation should still act: nobody has taken charge, or it is
    under duress and still open (a duress burst runs even if someone took the alert)."""
    return alert.state == AlertState.RAISED.value or open_under_duress(alert)


def should_escalate_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return or_(alert.state == AlertState.RAISED.value, open_under_duress_sql(alert))


# -- what may reach the worker


def may_tell_device(alert: Alert) -> bool:
    """Whether the device may be told anything more about this alert (a command about it).
    Never under duress: the device must go on showing a cancelled alert, and whoever is
    with the worker must notice nothing."""
    return not under_duress(alert)


def may_reach_worker(alert: Alert, *, device_under_duress: bool) -> bool:
    """Whether a call or an SMS about this alert may go to the worker's phone: not if the
    device may not be told of it, nor while any open alert of the device is under duress
    (`device_under_duress`: alerts.service.active_duress), since the phone is in the same
    hands."""
    return may_tell_device(alert) and not device_under_duress


def may_reach_worker_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    """may_reach_worker, the device's other alerts included."""
    return not_(or_(under_duress_sql(alert), device_under_duress_sql(alert)))
