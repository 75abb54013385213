"""The one table of words people read in place of stored values (alert types, outcomes,
states, timeline entries, roles, actors), for the console, the review pages and the PDF."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from monitor.alerts.states import AlertState, AlertType, Outcome
from monitor.users.models import Role

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

STATE_LABELS: dict[AlertState, str] = {
    AlertState.RAISED: "Raised, nobody in charge",
    AlertState.ACKNOWLEDGED: "Taken charge of",
    AlertState.RESOLVED: "Resolved",
    AlertState.CANCELLED: "Cancelled by the worker",
}

ROLE_LABELS: dict[Role, str] = {
    Role.OPERATOR: "Operator",
    Role.SUPERVISOR: "Supervisor",
    Role.ADMIN: "Administrator",
}

# What a device's alert says set it off (protocol.AlertMsg.trigger).
TRIGGER_LABELS: dict[str, str] = {
    "button": "button held",
    "fall": "fall detected",
    "impact": "impact detected",
    "tilt": "tilt detected",
    "voice": "voice command",
    "app": "from the app",
}

# The kinds of the entries in an alert's timeline. The service's own are here; an extension
# adds its own with `add_entries` when it is loaded (escalation's are beside its EntryKind),
# so that a new kind is one line in one table, and the service names no extension.
# A worker on the fleet map without an alert (monitor/reads/fleet.py's status): the console's
# "fleet" table.
FLEET_LABELS: dict[str, str] = {
    "overdue": "Visit past its time",
    "offline": "Device offline, on a visit",
    "visit": "On a visit",
}

ENTRY_LABELS: dict[str, str] = {
    "raised": "Alert raised",
    "positions": "Positions sealed",
    "acknowledged": "Taken charge",
    "taken_over": "Taken over",
    "resolved": "Resolved",
    "cancelled": "Cancelled",
    "cancel_rejected": "Cancel refused",
    "duress": "Duress PIN",
    "cancel_after_duress": "Cancel after duress",
    "raised_again": "Raised again",
    "sound_silenced": "Alarm sound silenced",
    "note": "Note",
    "authorities_called": "Authorities called",
    "procedure": "Procedure applied",
    "procedure_step": "Procedure step",
    "procedure_unfinished": "Resolved with steps not ticked",
    "hold_placed": "Put on hold",
    "hold_released": "Hold released",
    "evidence": "Evidence",
    "evidence_accessed": "Evidence accessed",
    "recording": "Recording",
    "place": "Place",
    "details_dropped": "Details dropped",
    "cautions_shown": "Cautions shown",
}

# A caution's kind (monitor/places/models.py, CautionKind): the console's "caution_kind".
CAUTION_KIND_LABELS: dict[str, str] = {
    "aggressive_animal": "Aggressive animal",
    "hostile_person": "Hostile or violent person",
    "previous_assault": "Previous assault",
    "weapons": "Weapons",
    "drugs": "Drugs",
    "safeguarding": "Safeguarding concern",
    "access": "Access or parking",
    "health_hazard": "Health hazard",
    "other": "Other",
}


# A device's kind (monitor/devices/admin.py, KINDS): the console's "device_kind".
DEVICE_KIND_LABELS: dict[str, str] = {
    "badge": "Badge (protocol v1)",
    "phone": "Phone (worker app or protocol v1)",
    "osmand": "Traccar Client / OsmAnd tracker",
    "owntracks": "OwnTracks",
    "line": "Phone line (texts and calls)",
}


def add_entries(labels: Mapping[str, str]) -> None:
    """An extension's timeline entry kinds, with their words."""
    ENTRY_LABELS.update(labels)


# Tables of an extension's own values, by name (escalation's "status": a notification's).
EXTENSION_TABLES: dict[str, dict[str, str]] = {}


def add_table(name: str, labels: Mapping[str, str]) -> None:
    """An extension's own table of words, which the console is told with the rest."""
    EXTENSION_TABLES.setdefault(name, {}).update(labels)


def humanise(value: str) -> str:
    """A value nobody gave words to yet, made readable rather than shown raw
    ("call_bridged": "Call bridged"). console/static/words.js does the same."""
    return value.replace("_", " ").replace(".", " ").strip().capitalize()


def entry_label(kind: str) -> str:
    return ENTRY_LABELS.get(kind) or humanise(kind)


def actor_label(actor: str) -> str:
    """Who wrote a timeline entry, as people say it: "user:ana" is ana, "device:b-7" the
    device b-7, "system" Vigil itself."""
    who, _, name = actor.partition(":")
    if not name:
        return "Vigil" if who == "system" else humanise(who)
    if who == "user":
        return name
    return f"{humanise(who).lower()} {name}"


def plural(n: int, one: str, many: str | None = None) -> str:
    """ "1 time", "3 times": a count with its noun, agreed."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def span(seconds: float) -> str:
    """A length of time in words, rounded to the second: "45 s", "2 min 5 s", "1 h 2 min"
    (past an hour the seconds are left out). One way for every text that says one: a
    call's length, how early a step was run."""
    h, rest = divmod(max(0, round(seconds)), 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m} min"
    return f"{m} min {s} s" if m else f"{s} s"


def moment(at: datetime) -> str:
    """A time written into a timeline entry's text: "14:30:05 UTC on 6 December 2026".

    The text is hash-chained and read outside any browser (the PDF, `vigil audit verify`,
    exports), so it says a time that means the same to every reader, in UTC as the PDF does,
    with its date; the entry's data keeps the ISO time for machines, and each page shows the
    entry's own time in its reader's zone."""
    at = at.astimezone(UTC)
    return f"{at:%H:%M:%S} UTC on {at.day} {at:%B %Y}"


def all_labels() -> dict[str, dict[str, str]]:
    """Every table by its name, as the console is told it (GET /api/v1/console/meta)."""
    return {
        "type": {k.value: v for k, v in TYPE_LABELS.items()},
        "outcome": {k.value: v for k, v in OUTCOME_LABELS.items()},
        "state": {k.value: v for k, v in STATE_LABELS.items()},
        "role": {k.value: v for k, v in ROLE_LABELS.items()},
        "trigger": dict(TRIGGER_LABELS),
        "fleet": dict(FLEET_LABELS),
        "entry": dict(ENTRY_LABELS),
        "caution_kind": dict(CAUTION_KIND_LABELS),
        "device_kind": dict(DEVICE_KIND_LABELS),
        **{name: dict(table) for name, table in EXTENSION_TABLES.items()},
    }
