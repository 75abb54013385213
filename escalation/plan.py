"""An alert's escalation plan as an operator reads it: each step with what it did, the next
step and when it falls due, and why the climb stopped, from the snapshot and its step rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from escalation import channels
from escalation.flows import goes_out, missing_reason, next_step, why_stopped
from escalation.models import Escalation, Notification, Step
from escalation.states import StepState
from escalation.timeline import EntryKind
from monitor.alerts.models import Alert, AlertEvent
from monitor.db import utcnow

# Steps not yet scheduled are shown up to the end of the next step's round, and at most this
# many: a policy may repeat its thirty steps ten times.
PLANNED_AT_MOST = 30


class PlanRecipient(BaseModel):
    name: str
    kind: str  # RecipientKind


class PlanSend(BaseModel):
    """One notification a step made, and where it stands."""

    recipient: str
    address: str
    status: str


class PlanStep(BaseModel):
    position: int  # over every round, from 0
    label: str  # "step 2 of 4", "step 1 of 4, round 2"
    channel: str
    word: str  # the channel in the timeline's word: "SMS", "Call"
    after_s: float  # the policy's wait after the step before
    to: list[PlanRecipient]
    nobody: str | None  # why `to` is empty, e.g. "The team has no backup staff"
    # done, pending (scheduled), cancelled, error (a fault), or planned (not yet scheduled:
    # its due_at is an estimate from the next step's)
    state: Literal["done", "pending", "cancelled", "error", "planned"]
    due_at: datetime | None
    done_at: datetime | None
    result: str | None  # what the timeline said when it ran: whom it reached, or why nobody
    sends: list[PlanSend]


class Plan(BaseModel):
    alert_id: int
    policy: str  # "" when no policy fits: operators only
    # running: a next step is scheduled; exhausted: every step has run and nobody took
    # charge; stopped: taken, resolved or cancelled; none: no escalation (yet)
    status: Literal["running", "exhausted", "stopped", "none"]
    why: str | None  # in words, when not running
    duress: bool
    repeat: int
    round_size: int  # steps in one round of the policy
    steps: list[PlanStep]
    more: int  # steps beyond those listed, still to come in later rounds
    next: int | None  # the position of the next step
    now: datetime  # the service's clock, so a countdown need not trust the browser's
    can_escalate_now: bool


def plan_of(db: Session, alert: Alert) -> Plan:
    now = utcnow()
    esc = db.scalar(select(Escalation).where(Escalation.alert_id == alert.id))
    why = why_stopped(alert, esc)
    if esc is None:
        return Plan(
            alert_id=alert.id,
            policy="",
            status="none",
            why=why,
            duress=False,
            repeat=0,
            round_size=0,
            steps=[],
            more=0,
            next=None,
            now=now,
            can_escalate_now=False,
        )
    snap = esc.snapshot
    rows = db.scalars(select(Step).where(Step.escalation_id == esc.id).order_by(Step.position))
    sends: dict[int, list[PlanSend]] = defaultdict(list)
    for n in db.scalars(
        select(Notification).where(Notification.alert_id == alert.id).order_by(Notification.id)
    ):
        if n.step_id is not None:
            sends[n.step_id].append(
                PlanSend(recipient=n.recipient, address=n.address, status=n.status)
            )
    results: dict[int, str] = {}
    for data, text in db.execute(
        select(AlertEvent.data, AlertEvent.text).where(
            AlertEvent.alert_id == alert.id, AlertEvent.kind == EntryKind.STEP.value
        )
    ):
        if isinstance(data, dict) and isinstance(data.get("position"), int):
            results[data["position"]] = text

    def step(position: int, state: str, due_at: datetime | None, row: Step | None) -> PlanStep:
        spec = snap.step_at(position)
        return PlanStep(
            position=position,
            label=snap.label(position),
            channel=spec.channel,
            word=channels.get(spec.channel).word,
            after_s=spec.after,
            to=[PlanRecipient(name=r.name, kind=r.kind.value) for r in spec.to],
            nobody=". ".join(missing_reason(n) for n in spec.missing or ()) or None,
            state=state,  # a StepState, or "planned"
            due_at=due_at,
            done_at=row.done_at if row is not None else None,
            result=results.get(position) if row is not None else None,
            sends=sends.get(row.id, []) if row is not None else [],
        )

    def state_of(s: Step) -> str:
        # Stopped, its pending steps are about to be cancelled (the runner settles it in a
        # moment); a duress burst on an open alert still runs, even once it was taken.
        if (
            why is not None
            and s.state == StepState.PENDING.value
            and not goes_out(esc, alert, s.position)
        ):
            return StepState.CANCELLED.value
        return s.state

    steps = [step(s.position, state_of(s), s.due_at, s) for s in rows]
    nxt = next_step(db, esc) if why is None else None
    more = 0
    if nxt is not None:
        # The steps after the next, not yet scheduled: each waits its own `after` after the
        # one before runs, so their times are estimates.
        total = snap.positions()
        first = nxt.position + 1
        if snap.in_burst(nxt.position):
            first = max(nxt.position + 1, (snap.burst or 0) + len(snap.steps))
        end_of_round = (nxt.position // len(snap.steps) + 1) * len(snap.steps)
        last = min(total, max(end_of_round, first), first + PLANNED_AT_MOST)
        due = max(nxt.due_at, now)
        scheduled = {s.position for s in steps}
        for position, wait in snap.waits(first, last):
            if position not in scheduled:
                steps.append(step(position, "planned", due + timedelta(seconds=wait), None))
        more = max(0, total - last)
    status: Literal["running", "exhausted", "stopped", "none"]
    if nxt is not None:
        status = "running"
    elif why is None:
        status, why = "exhausted", "every step has run and nobody has taken charge"
    else:
        status = "stopped"
    return Plan(
        alert_id=alert.id,
        policy=esc.policy,
        status=status,
        why=why,
        duress=esc.duress,
        repeat=snap.repeat,
        round_size=len(snap.steps),
        steps=steps,
        more=more,
        next=nxt.position if nxt is not None else None,
        now=now,
        can_escalate_now=nxt is not None and nxt.due_at > now,
    )
