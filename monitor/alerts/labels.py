"""What people call each alert type and outcome: the words the console shows for them."""

from __future__ import annotations

from monitor.alerts.states import AlertType, Outcome

TYPE_LABELS: dict[AlertType, str] = {
    AlertType.RED: "Panic",
    AlertType.MAN_DOWN: "Man down",
    AlertType.NO_MOTION: "No motion",
    AlertType.TEST: "Test",
    AlertType.VISIT_OVERDUE: "Visit overdue",
    AlertType.DEVICE_OFFLINE: "Device offline",
    AlertType.DURESS: "Duress",
}

OUTCOME_LABELS: dict[Outcome, str] = {
    Outcome.GENUINE_EMERGENCY: "Genuine emergency",
    Outcome.FALSE_ALARM: "False alarm",
    Outcome.ACCIDENTAL: "Accidental",
    Outcome.TEST: "Test",
    Outcome.WORKER_SAFE: "Worker safe",
}
