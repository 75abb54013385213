"""The states of escalations, steps and notifications, as the database stores them."""

from __future__ import annotations

from enum import StrEnum


class EscalationState(StrEnum):
    # After its last step an escalation stays running (the timeline says "exhausted") until
    # someone takes the alert or it is closed.
    RUNNING = "running"
    ACKNOWLEDGED = "acknowledged"
    ENDED = "ended"


class StepState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"
    ERROR = "error"  # it could not run (a fault, not a person); the next step went on


class NotificationStatus(StrEnum):
    """A notification's status: ours, or the provider's own word once it has the message.

    The column holds whatever word Twilio's status callback brings (accepted, sending,
    initiated...); these are the words Vigil acts on.
    """

    # Ours: waiting to be sent (maybe for a retry), and handed to a sending thread.
    PENDING = "pending"
    CLAIMED = "claimed"
    # Ours, final: taken by the person reached, recorded but not sent (no Twilio), never
    # sent, given up.
    ACKNOWLEDGED = "acknowledged"
    OUTBOX = "outbox"
    CANCELLED = "cancelled"
    ERROR = "error"
    # The provider's (a webhook's 2xx is "delivered" too).
    QUEUED = "queued"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no-answer"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    CANCELED = "canceled"  # Twilio's spelling: a call cancelled before it was answered


# What the console shows for each (monitor.alerts.labels' "status" table, added when escalation
# loads). Another word Twilio brings (accepted, sending, ringing...) is shown made readable.
STATUS_LABELS: dict[str, str] = {
    NotificationStatus.PENDING: "waiting to send",
    NotificationStatus.CLAIMED: "sending",
    NotificationStatus.ACKNOWLEDGED: "taken",
    NotificationStatus.OUTBOX: "outbox, not sent",
    NotificationStatus.CANCELLED: "not sent: no longer needed",
    NotificationStatus.ERROR: "error",
    NotificationStatus.QUEUED: "queued",
    NotificationStatus.DELIVERED: "delivered",
    NotificationStatus.COMPLETED: "call ended",
    NotificationStatus.BUSY: "busy",
    NotificationStatus.NO_ANSWER: "no answer",
    NotificationStatus.FAILED: "failed",
    NotificationStatus.UNDELIVERED: "not delivered",
    NotificationStatus.CANCELED: "call cancelled",
}

# The words for a click-to-call's state (escalation/calls.py), a step of the escalation plan
# and the plan itself (escalation/plan.py), as the console shows them: the console's "call",
# "step" and "plan" tables (monitor.alerts.labels, added when escalation loads).
CALL_LABELS: dict[str, str] = {
    "calling_operator": "Ringing",
    "dialling": "Ringing",
    "connected": "Connected",
    "ended": "Ended",
    "no_answer": "No answer",
    "busy": "Busy",
    "failed": "Failed",
    "cancelled": "Cancelled",
}
STEP_LABELS: dict[str, str] = {
    "done": "Done",
    "pending": "Due",
    "cancelled": "Not run",
    "error": "Failed",
    "planned": "Planned",
}
PLAN_LABELS: dict[str, str] = {
    "running": "Escalating",
    "exhausted": "Every step has run",
    "stopped": "Stopped",
    "none": "Not started",
}

# Statuses after which a notification can no longer bring an acknowledgement.
UNANSWERED = frozenset(
    {
        NotificationStatus.FAILED,
        NotificationStatus.UNDELIVERED,
        NotificationStatus.BUSY,
        NotificationStatus.NO_ANSWER,
        NotificationStatus.CANCELED,
        NotificationStatus.COMPLETED,
        NotificationStatus.ERROR,
    }
)
# Statuses no later news changes.
FINAL = UNANSWERED | {
    NotificationStatus.DELIVERED,
    NotificationStatus.ACKNOWLEDGED,
    NotificationStatus.OUTBOX,
    NotificationStatus.CANCELLED,
}


class CallState(StrEnum):
    """A call an operator placed from an alert (escalation.calls): their own phone rings
    first, then the other person's, then the two are bridged."""

    CALLING_OPERATOR = "calling_operator"  # placed: the operator's phone rings
    DIALLING = "dialling"  # the operator answered: the other person's phone rings
    CONNECTED = "connected"  # both sides on the line
    # Final: a conversation that ended; nobody answered; busy; the call failed or was
    # cancelled: the operator hung up first, or a duress stopped a call that would ring the
    # worker's number. A duress ends such a call at once, still ringing the operator or the
    # worker (calls.stop_ringing_worker, through Twilio: the operator hears why), and an
    # operator answering after a duress is told and never connected (calls.answered). A
    # call already connected is left: the worker answered it.
    ENDED = "ended"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELLED = "cancelled"


CALL_OVER = frozenset(
    {CallState.ENDED, CallState.NO_ANSWER, CallState.BUSY, CallState.FAILED, CallState.CANCELLED}
)
