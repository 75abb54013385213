"""The entries escalation writes in an alert's timeline, and those the console sets apart."""

from __future__ import annotations

from enum import StrEnum


class EntryKind(StrEnum):
    STARTED = "escalation_started"
    STEP = "escalation_step"
    STOPPED = "escalation_stopped"
    EXHAUSTED = "escalation_exhausted"
    ADVANCED = "escalation_advanced"
    DURESS = "escalation_duress"
    ERROR = "escalation_error"
    NOW = "escalation_now"  # an operator's "Escalate now"
    NOTIFICATION = "notification"
    KEYPRESS = "keypress"
    SMS_REPLY = "sms_reply"
    CALL = "call"  # a call an operator placed from the alert (escalation.calls)


# What people read for each (the one table is monitor.alerts.labels: the extension adds these
# to it when it is loaded).
LABELS: dict[str, str] = {
    EntryKind.STARTED: "Escalation started",
    EntryKind.STEP: "Escalation step",
    EntryKind.STOPPED: "Escalation stopped",
    EntryKind.EXHAUSTED: "Escalation ran out of steps",
    EntryKind.ADVANCED: "Escalated",
    EntryKind.DURESS: "Escalation: duress",
    EntryKind.ERROR: "Escalation fault",
    EntryKind.NOW: "Escalate now",
    EntryKind.NOTIFICATION: "Notification",
    EntryKind.KEYPRESS: "Key pressed on a call",
    EntryKind.SMS_REPLY: "SMS reply",
    EntryKind.CALL: "Call from the console",
}

# The console shows these apart from the operators' entries, by their text alone; an error
# and an operator's "Escalate now" are not among them, and show as other entries do, with
# who wrote them.
SHOWN_APART = frozenset(set(EntryKind) - {EntryKind.ERROR, EntryKind.NOW})
