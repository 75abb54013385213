"""The rules about an alert that several parts of Vigil ask, each written once: a Python
predicate on a loaded alert, and beside it its SQL twin for queries that select by it."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, not_, or_
from sqlalchemy.orm import aliased

from monitor.alerts.models import Alert
from monitor.alerts.states import ACTIVE_STATES, AlertState, AlertType

_ACTIVE = [s.value for s in ACTIVE_STATES]


# -- open: nobody has resolved or cancelled it yet


def is_open(alert: Alert) -> bool:
    """Raised or acknowledged: not yet resolved or cancelled (states.ACTIVE_STATES)."""
    return alert.state in _ACTIVE


def is_open_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return alert.state.in_(_ACTIVE)


# -- held: a person has taken charge of it, and may be in the middle of handling it


def holder_other_than(alert: Alert, actor: str) -> str | None:
    """Who has taken charge of the open alert, if it is someone other than `actor` (as the
    timeline names them, "user:" left off); None if nobody or `actor` themselves."""
    holder = alert.acknowledged_by
    if alert.state != AlertState.ACKNOWLEDGED.value or not holder or holder == actor:
        return None
    return holder.removeprefix("user:")


# -- the consoles' alarm: it sounds and flashes for an alert nobody has taken charge of

# Types nobody is in danger by: no sound, no flash, and (a test) closed after a while.
QUIET_TYPES = frozenset({AlertType.TEST})


def is_quiet(alert: Alert) -> bool:
    """A quiet type, not under duress (a test cancelled with the duress PIN is an emergency)."""
    return alert.type in QUIET_TYPES and not alert.duress


def is_quiet_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return and_(alert.type.in_([t.value for t in QUIET_TYPES]), not_(under_duress_sql(alert)))


def sounds_alarm(alert: Alert) -> bool:
    """Whether the consoles' alarm sounds for the alert: raised, nobody in charge, not quiet.
    console/static/urgency.js applies the same rule, told QUIET_TYPES by console/meta.py."""
    return alert.state == AlertState.RAISED.value and not is_quiet(alert)


# -- under duress: the worker keyed the duress PIN, and may be with someone who threatens them


def under_duress(alert: Alert) -> bool:
    """Raised or cancelled with the duress PIN (it stays so, whatever happens to the alert)."""
    return alert.duress


def under_duress_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return alert.duress.is_(True)


def open_under_duress(alert: Alert) -> bool:
    """Under duress and still open: it keeps the worker's phone silent for every alert of
    the device, and lets a duress burst already under way finish after someone took the
    alert (duress_burst_goes_on)."""
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
    """Whether the alert's escalation climbs: nobody has taken charge of it. Once someone
    has (or the alert is closed), it stops: only a duress burst already under way goes on
    (duress_burst_goes_on)."""
    return alert.state == AlertState.RAISED.value


def should_escalate_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return alert.state == AlertState.RAISED.value


def duress_burst_goes_on(alert: Alert) -> bool:
    """Whether a duress burst (every step of the policy at once, the moment the duress PIN
    was keyed) still goes out, its retries included: while the alert is open, even once
    someone has taken it; a resolve or a cancel ends it like everything else."""
    return open_under_duress(alert)


def needs_escalation(alert: Alert) -> bool:
    """Whether an alert with no escalation should get one: it climbs, or it has a duress
    burst to send (raised under duress and taken before the engine saw it)."""
    return should_escalate(alert) or duress_burst_goes_on(alert)


def needs_escalation_sql(alert: type[Alert] = Alert) -> ColumnElement[bool]:
    return or_(should_escalate_sql(alert), open_under_duress_sql(alert))


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
