"""The console's vocabulary: what the browser is told by the service rather than knowing.

Each answer is read from where the service keeps the rule (the alert state machine, the
labels, the settings, the roles, escalation's timeline kinds), so that a change there
reaches the console without a change to its JavaScript.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from escalation.timeline import SHOWN_APART
from monitor.alerts import rules
from monitor.alerts.labels import OUTCOME_LABELS, TYPE_LABELS, all_labels
from monitor.alerts.states import (
    ACTIVE_STATES,
    AlertState,
    AlertType,
    Outcome,
    chosen_next_states,
)
from monitor.deps import SUPERVISING_ROLES, CurrentUser, SettingsDep

router = APIRouter(prefix="/api/v1/console", tags=["console"])


class Named(BaseModel):
    """A value the service stores, with what the console calls it."""

    value: str
    label: str


class ConsoleMeta(BaseModel):
    alert_types: list[Named]
    outcomes: list[Named]
    active_states: list[str]
    # For each state, the states a person may move an alert in it to.
    transitions: dict[str, list[str]]
    low_battery_pct: int
    supervising_roles: list[str]
    escalation_kinds: list[str]
    # The one table of words (monitor.alerts.labels), by table ("type", "outcome", "state",
    # "entry", "role", "trigger"), then by stored value: what the console shows instead.
    labels: dict[str, dict[str, str]]
    # The alarm repeats this often, seconds, while an alert waits for someone to take charge.
    alarm_repeat_s: float
    # VIGIL_ACK_TARGETS' seconds, shortest first: an unanswered row is marked late past each.
    ack_target_s: list[float]
    # Alert types that neither sound nor flash unless under duress (alerts.rules.sounds_alarm).
    quiet_types: list[str]


@router.get("/meta")
def console_meta(user: CurrentUser, settings: SettingsDep) -> ConsoleMeta:
    """The alert types, outcomes and states, and the thresholds and roles the console
    draws with."""
    return ConsoleMeta(
        alert_types=[Named(value=t.value, label=TYPE_LABELS[t]) for t in AlertType],
        outcomes=[Named(value=o.value, label=OUTCOME_LABELS[o]) for o in Outcome],
        active_states=[s.value for s in AlertState if s in ACTIVE_STATES],
        # From the state machine itself, so that the console offers what the service allows
        # a person to do.
        transitions={
            s.value: [w.value for w in AlertState if w in chosen_next_states(s)] for s in AlertState
        },
        low_battery_pct=settings.low_battery_pct,
        supervising_roles=[r.value for r in SUPERVISING_ROLES],
        escalation_kinds=sorted(k.value for k in SHOWN_APART),
        labels=all_labels(),
        alarm_repeat_s=settings.alarm_repeat_s,
        ack_target_s=[seconds for seconds, _ in settings.ack_target_list],
        quiet_types=sorted(t.value for t in rules.QUIET_TYPES),
    )
