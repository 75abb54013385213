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
    AlertState.ACKNOWLEDGED: frozenset({AlertState.RESOLVED, AlertState.CANCELLED}),
    AlertState.RESOLVED: frozenset(),
    AlertState.CANCELLED: frozenset(),
}

# Lower is more urgent. A duress alert outranks everything whatever its type.
_PRIORITY = {
    "duress": 0,
    AlertType.RED: 1,
    AlertType.MAN_DOWN: 2,
    AlertType.NO_MOTION: 3,
    AlertType.VISIT_OVERDUE: 4,
    AlertType.DEVICE_OFFLINE: 5,
    AlertType.TEST: 6,
}


@dataclass(frozen=True)
class Effects:
    """What entering a state brings, applied by `alerts.service.transition` in this order:
    the time (and who) stamped on the row, the positions sealed into the timeline, the
    timeline entry, the command to the device, the event announced."""

    at: str  # the alert's column for when it happened
    by: str | None  # the alert's column for who did it, if kept on the row
    seal_positions: bool  # the incident is over: its trail joins the hash chain
    entry: str  # the timeline entry's kind
    device_command: str | None  # what the device is told (never under duress)
    event: Kind


EFFECTS: dict[AlertState, Effects] = {
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

    def __init__(self, current: AlertState, wanted: AlertState) -> None:
        super().__init__(f"an alert that is {current.value} cannot become {wanted.value}")
        self.current = current
        self.wanted = wanted


def next_states(current: AlertState) -> frozenset[AlertState]:
    """The states an alert in `current` may move to."""
    return _ALLOWED[current]


def check_transition(current: AlertState, wanted: AlertState) -> None:
    if wanted not in next_states(current):
        raise IllegalTransition(current, wanted)


def priority(alert_type: AlertType, duress: bool) -> int:
    if duress or alert_type is AlertType.DURESS:
        return _PRIORITY["duress"]
    return _PRIORITY[alert_type]
