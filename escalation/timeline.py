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
    NOTIFICATION = "notification"
    KEYPRESS = "keypress"
    SMS_REPLY = "sms_reply"


# The console shows these apart from the operators' entries, by their text alone; an error
# is not among them, and shows as other entries do, with who wrote it.
SHOWN_APART = frozenset(set(EntryKind) - {EntryKind.ERROR})
