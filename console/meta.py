"""The console's vocabulary: what the browser is told by the service rather than knowing.

Each answer is read from where the service keeps the rule (the alert state machine, the
labels, the settings, the roles, escalation's timeline kinds), so that a change there
reaches the console without a change to its JavaScript.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from escalation.timeline import SHOWN_APART
from monitor.alerts.labels import OUTCOME_LABELS, TYPE_LABELS
from monitor.alerts.states import (
    ACTIVE_STATES,
    AlertState,
    AlertType,
    Outcome,
    next_states,
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
    # For each state, the states an alert in it may move to.
    transitions: dict[str, list[str]]
    low_battery_pct: int
    supervising_roles: list[str]
    escalation_kinds: list[str]


@router.get("/meta")
def console_meta(user: CurrentUser, settings: SettingsDep) -> ConsoleMeta:
    """The alert types, outcomes and states, and the thresholds and roles the console
    draws with."""
    return ConsoleMeta(
        alert_types=[Named(value=t.value, label=TYPE_LABELS[t]) for t in AlertType],
        outcomes=[Named(value=o.value, label=OUTCOME_LABELS[o]) for o in Outcome],
        active_states=[s.value for s in AlertState if s in ACTIVE_STATES],
        # From the state machine itself, so that the console allows what the service does.
        transitions={
            s.value: [w.value for w in AlertState if w in next_states(s)] for s in AlertState
        },
        low_battery_pct=settings.low_battery_pct,
        supervising_roles=[r.value for r in SUPERVISING_ROLES],
        escalation_kinds=sorted(k.value for k in SHOWN_APART),
    )
