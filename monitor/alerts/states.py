"""The alert state machine and priorities: the one place that says which changes are legal
and what each change brings with it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from monitor.events import Kind


class AlertState(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class AlertType(StrEnum):
    RED = "red"
    MAN_DOWN = "man_down"
    NO_MOTION = "no_motion"
    TEST = "test"
    VISIT_OVERDUE = "visit_overdue"
    DEVICE_OFFLINE = "device_offline"
    # A visit ended with the duress PIN: nothing was pressed, the worker is under threat.
    DURESS = "duress"


class Outcome(StrEnum):
    GENUINE_EMERGENCY = "genuine_emergency"
    FALSE_ALARM = "false_alarm"
    ACCIDENTAL = "accidental"
    TEST = "test"
    WORKER_SAFE = "worker_safe"


ACTIVE_STATES = frozenset({AlertState.RAISED, AlertState.ACKNOWLEDGED})

_ALLOWED: dict[AlertState, frozenset[AlertState]] = {
    AlertState.RAISED: frozenset(
        {AlertState.ACKNOWLEDGED, AlertState.RESOLVED, AlertState.CANCELLED}
    ),
    # Back to raised only under duress (_DURESS_ONLY).
    AlertState.ACKNOWLEDGED: frozenset(
        {AlertState.RAISED, AlertState.RESOLVED, AlertState.CANCELLED}
    ),
    AlertState.RESOLVED: frozenset(),
    AlertState.CANCELLED: frozenset(),
}

# Edges only an alert under duress may take. Back to raised: a duress PIN after someone took
# charge (alerts.service.cancel_from_device) needs a person to take charge of the duress,
# with the full alarm on every console; nothing else puts a taken alert back in the queue.
_DURESS_ONLY = frozenset({(AlertState.ACKNOWLEDGED, AlertState.RAISED)})

# Lower is more urgent; the queue, the console's colours and its alarm follow it. A duress
# alert outranks everything whatever its type. Panic and man down are one rank: a worker in
# danger now, by their own hand or by their fall. An overdue visit comes before no motion: a
# worker who did not come out of a visit is a known risk, stillness is a sensor's guess. Then
# a silent device, and last a test, which is nobody in danger.
_PRIORITY = {
    "duress": 0,
    AlertType.RED: 1,
    AlertType.MAN_DOWN: 1,
    AlertType.VISIT_OVERDUE: 3,
    AlertType.NO_MOTION: 4,
    AlertType.DEVICE_OFFLINE: 5,
    AlertType.TEST: 6,
}


@dataclass(frozen=True)
class Effects:
    """What entering a state brings, applied by `alerts.service.transition` in this order:
    the time (and who) stamped on the row, the positions sealed into the timeline, the
    timeline entry, the command to the device, the event announced."""

    at: str | None  # the alert's column for when it happened (None: the timeline's alone)
    by: str | None  # the alert's column for who did it, if kept on the row
    seal_positions: bool  # the incident is over: its trail joins the hash chain
    entry: str  # the timeline entry's kind
    device_command: str | None  # what the device is told (never under duress)
    event: Kind


EFFECTS: dict[AlertState, Effects] = {
    # Raised again (only a duress after someone took charge does this): raised_at stays the
    # first raise; who had taken it is cleared by the caller and kept in the timeline.
    AlertState.RAISED: Effects(
        at=None,
        by=None,
        seal_positions=False,
        entry="raised_again",
        device_command=None,  # under duress the device is told nothing more
        event=Kind.ALERT_DURESS,
    ),
    AlertState.ACKNOWLEDGED: Effects(
        at="acknowledged_at",
        by="acknowledged_by",
        seal_positions=False,
        entry="acknowledged",
        device_command="alert_acknowledged",
        event=Kind.ALERT_ACKNOWLEDGED,
    ),
    AlertState.CANCELLED: Effects(
        at="cancelled_at",
        by=None,
        seal_positions=True,
        entry="cancelled",
        # The device asked for it, and its reply to the cancel says so.
        device_command=None,
        event=Kind.ALERT_CANCELLED,
    ),
    AlertState.RESOLVED: Effects(
        at="resolved_at",
        by="resolved_by",
        seal_positions=True,
        entry="resolved",
        device_command="alert_closed",
        event=Kind.ALERT_RESOLVED,
    ),
}


class IllegalTransition(Exception):
    """An alert was asked to move to a state it cannot reach from where it is."""

    def __init__(self, current: AlertState, wanted: AlertState, why: str = "") -> None:
        super().__init__(f"an alert that is {current.value} cannot become {wanted.value}{why}")
        self.current = current
        self.wanted = wanted


def next_states(current: AlertState) -> frozenset[AlertState]:
    """The states an alert in `current` may move to (some only under duress: _DURESS_ONLY)."""
    return _ALLOWED[current]


def chosen_next_states(current: AlertState) -> frozenset[AlertState]:
    """The states a person may move an alert in `current` to: the duress-only moves are made
    by the worker's PIN, never from a console."""
    return frozenset(w for w in _ALLOWED[current] if (current, w) not in _DURESS_ONLY)


def check_transition(current: AlertState, wanted: AlertState, *, duress: bool) -> None:
    """Raises IllegalTransition unless an alert in `current`, under duress or not, may move
    to `wanted`."""
    if wanted not in next_states(current):
        raise IllegalTransition(current, wanted)
    if (current, wanted) in _DURESS_ONLY and not duress:
        raise IllegalTransition(current, wanted, " unless the worker is under duress")


def priority(alert_type: AlertType, duress: bool) -> int:
    if duress or alert_type is AlertType.DURESS:
        return _PRIORITY["duress"]
    return _PRIORITY[alert_type]
