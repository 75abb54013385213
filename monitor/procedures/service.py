"""An alert's checklist: the procedure applied to it and each step's tick, all kept in the
alert's hash-chained timeline, and the rule that open steps need a reason to resolve."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts.labels import TYPE_LABELS, plural
from monitor.alerts.models import Alert, AlertEvent, AlertEventOut, AlertOut
from monitor.alerts.service import active_duress, announce, get, record
from monitor.alerts.states import ACTIVE_STATES, AlertType
from monitor.events import Kind
from monitor.orgs.models import Organisation, Team, Worker
from monitor.procedures.definitions import choose, stored
from monitor.procedures.models import AlertProcedure, StepOut

# The timeline entries this module writes. The checklist is read back from them alone, so
# what the operator saw and ticked is covered by the chain (`vigil audit verify`), and a
# later change to the stored procedures cannot change an alert's.
APPLIED = "procedure"
STEP = "procedure_step"
UNFINISHED = "procedure_unfinished"


class StepNotFound(LookupError):
    """A tick for a step the alert's checklist does not have."""


class ChecklistClosed(Exception):
    """A tick on an alert that is over: its checklist is part of the record now."""


class StepsNotTicked(Exception):
    """A resolve with steps of the procedure not ticked, and no reason given for them."""


@dataclass
class Checklist:
    """What the timeline says: the entry that applied the procedure, and the last tick
    of each of its steps."""

    applied: AlertEventOut | None = None
    ticks: dict[int, AlertEventOut] = field(default_factory=dict)


_ENTRIES = (
    select(AlertEvent)
    .where(AlertEvent.alert_id == bindparam("alert_id"), AlertEvent.kind.in_([APPLIED, STEP]))
    .order_by(AlertEvent.seq)
)
_NAMES = (
    select(Organisation.name, Team.name)
    .select_from(Alert)
    .outerjoin(Organisation, Organisation.id == Alert.org_id)
    .outerjoin(Worker, Worker.id == Alert.worker_id)
    .outerjoin(Team, Team.id == Worker.team_id)
    .where(Alert.id == bindparam("alert_id"))
)


def _found(timeline: Iterable[AlertEventOut]) -> Checklist:
    """The last procedure applied, and the ticks of its steps, from the timeline's entries."""
    found = Checklist()
    for entry in timeline:
        if entry.kind == APPLIED:
            found = Checklist(applied=entry)
        elif (
            entry.kind == STEP
            and found.applied is not None
            and entry.data.get("procedure") == found.applied.seq
        ):
            found.ticks[int(entry.data["step"])] = entry
    return found


def _read(db: Session, alert: Alert) -> Checklist:
    rows = db.scalars(_ENTRIES, {"alert_id": alert.id})
    return _found(AlertEventOut.model_validate(r) for r in rows)


def _wanted_kind(db: Session, alert: Alert, found: Checklist) -> str:
    """Duress whenever the worker may be with whoever threatens them (this alert or another
    of the device under duress), and from then on; else the alert's type."""
    duress = AlertType.DURESS.value
    if found.applied is not None and found.applied.data.get("applies_to") == duress:
        return duress
    if rules.under_duress(alert) or active_duress(db, alert.device_id):
        return duress
    return alert.type


def _view(alert: Alert | AlertOut, found: Checklist, *, active: bool) -> AlertProcedure:
    applied = found.applied
    data: dict[str, Any] = applied.data if applied is not None else {}
    steps = []
    for i, step in enumerate(data.get("steps", [])):
        tick = found.ticks.get(i)
        done = tick is not None and bool(tick.data.get("done"))
        steps.append(
            StepOut(
                index=i,
                do=step["do"],
                detail=step.get("detail"),
                done=done,
                by=tick.actor if tick is not None else None,
                at=tick.at if tick is not None else None,
            )
        )
    return AlertProcedure(
        alert_id=alert.id,
        name=data.get("name"),
        kind=data.get("applies_to", str(alert.type)),
        applied_at=applied.at if applied is not None else None,
        seq=applied.seq if applied is not None else None,
        steps=steps,
        active=active,
    )


def recorded(alert: AlertOut, timeline: Iterable[AlertEventOut]) -> AlertProcedure | None:
    """The checklist as the alert's timeline recorded it, for the incident's review and its
    PDF; None if no procedure was applied. Reads only: it never applies one."""
    found = _found(timeline)
    if found.applied is None:
        return None
    return _view(alert, found, active=alert.state in ACTIVE_STATES)


def _due(db: Session, alert: Alert, found: Checklist) -> tuple[str, Any] | None:
    """(kind, procedure or None) when the open alert's checklist must be (re)applied: it has
    none and one fits, or it has one for another kind (the worker keyed the duress PIN)."""
    if not rules.is_open(alert):
        return None
    kind = _wanted_kind(db, alert, found)
    if found.applied is not None and found.applied.data.get("applies_to") == kind:
        return None
    org, team = db.execute(_NAMES, {"alert_id": alert.id}).one()
    procedure = choose(stored(db), kind, org, team)
    if procedure is None and found.applied is None:
        return None  # nothing applies now; looked for again the next time it is shown
    return kind, procedure


def shown(db: Session, alert: Alert) -> AlertProcedure | None:
    """The alert's checklist as it stands; None if a procedure is due to be applied first
    (which writes: see `ensure`)."""
    found = _read(db, alert)
    return (
        None
        if _due(db, alert, found) is not None
        else _view(alert, found, active=rules.is_open(alert))
    )


def ensure(db: Session, alert: Alert) -> AlertProcedure:
    """The alert's checklist, the procedure applied first if it is due. The caller holds
    the alert's row lock, as every writer of its timeline does."""
    found = _read(db, alert)
    due = _due(db, alert, found)
    if due is None:
        return _view(alert, found, active=rules.is_open(alert))
    kind, procedure = due
    label = TYPE_LABELS[AlertType(kind)]
    if procedure is None:
        # The kind changed (duress) and nothing is stored for it: the old steps must go,
        # not be followed (they may say to call the worker).
        before = found.applied.data.get("name") if found.applied is not None else None
        text = f"No procedure for {label}: the {before} steps no longer apply"
        steps: list[dict[str, Any]] = []
    else:
        text = f"Procedure for {label}: {procedure.name} ({plural(len(procedure.steps), 'step')})"
        steps = [s.model_dump(exclude_none=True) for s in procedure.steps]
    name = procedure.name if procedure is not None else None
    record(db, alert, APPLIED, "system", text, name=name, applies_to=kind, steps=steps)
    announce(db, Kind.ALERT_UPDATED, alert)
    return _view(alert, _read(db, alert), active=rules.is_open(alert))


def tick(db: Session, alert_id: int, step: int, *, done: bool, actor: str) -> AlertProcedure:
    """Tick (or untick) one step, in the timeline with who and when. Ticking a step as it
    already is writes nothing: two operators ticking at once make one entry."""
    alert = get(db, alert_id, for_update=True)
    if not rules.is_open(alert):
        raise ChecklistClosed(f"alert {alert_id} is closed: its checklist is part of the record")
    checklist = ensure(db, alert)
    if not 0 <= step < len(checklist.steps):
        raise StepNotFound(f"alert {alert_id}'s checklist has no step {step}")
    if checklist.steps[step].done == done:
        return checklist
    what = checklist.steps[step].do
    text = f"Step {step + 1} {'done' if done else 'not done after all'}: {what}"
    record(db, alert, STEP, actor, text, procedure=checklist.seq, step=step, done=done)
    announce(db, Kind.ALERT_UPDATED, alert)
    return _view(alert, _read(db, alert), active=rules.is_open(alert))


def check_resolve(db: Session, alert_id: int, *, actor: str, note: str | None) -> None:
    """The rule for resolving with steps not ticked: only with a reason, the resolution
    note, which the timeline records beside the steps left open. Called before the resolve,
    in its transaction, so that both are kept or neither."""
    alert = get(db, alert_id, for_update=True)
    if not rules.is_open(alert):
        return  # the resolve itself says why it cannot be
    checklist = ensure(db, alert)
    left = [s for s in checklist.steps if not s.done]
    if not left:
        return
    reason = (note or "").strip()
    count = f"{len(left)} step{'s' if len(left) > 1 else ''}"
    if not reason:
        raise StepsNotTicked(
            f"{count} of the {checklist.name} procedure not ticked: say why in the note"
        )
    record(
        db,
        alert,
        UNFINISHED,
        actor,
        f"Resolved with {count} not ticked ({'; '.join(s.do for s in left)}). Why: {reason}",
        procedure=checklist.seq,
        steps=[s.index for s in left],
        reason=reason,
    )
