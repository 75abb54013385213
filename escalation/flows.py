"""Escalation in the database: start one on an alert, run a due step, stop, jump on duress.

Every function here runs inside the caller's transaction; the engine (escalation.engine)
decides when, and sends what these functions queue (escalation.delivery follows them up).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, exists, not_, select, update
from sqlalchemy.orm import Session

from escalation import channels, snapshots
from escalation.channels.base import Sending
from escalation.delivery import (
    aimed_at_worker,
    cancellable,
    claimed,
    may_reach_worker,
    note,
    outgoing,
    silence_worker,
)
from escalation.models import Escalation, Notification, Recipient, RecipientKind, Step
from escalation.providers import Outgoing
from escalation.states import EscalationState, NotificationStatus, StepState
from escalation.timeline import EntryKind
from monitor.alerts import chain, rules
from monitor.alerts import service as alerts
from monitor.alerts.labels import actor_label, plural, span
from monitor.alerts.models import Alert
from monitor.alerts.states import AlertState, AlertType
from monitor.config import Settings
from monitor.db import utcnow
from monitor.reads.alert_detail import detail as read_detail


class ToStart(NamedTuple):
    alert: Alert
    ctx: snapshots.Context
    shielded: bool  # not rules.may_reach_worker: the worker's phone stays silent


# Built once: putting a statement this size together costs more than running it cached.
_TO_START = (
    snapshots.with_context(
        select(
            Alert,
            exists().where(Escalation.alert_id == Alert.id),
            rules.may_reach_worker_sql(),
        )
    )
    .where(Alert.id == bindparam("alert_id"))
    .with_for_update(of=Alert)
)


def lock_to_start(db: Session, alert_id: int) -> ToStart | None:
    """The alert, locked, who it is about and whether it is under duress, if it needs an
    escalation and has none yet: the lock and every look in one query."""
    row = db.execute(_TO_START, {"alert_id": alert_id}).first()
    if row is None:
        return None
    alert, started, may_reach, *ctx = row
    if started or not rules.needs_escalation(alert):
        return None
    chain.held(db, alert)
    return ToStart(alert, snapshots.Context(*ctx), not may_reach)


def start_now(db: Session, found: ToStart, node: str, settings: Settings) -> list[Outgoing]:
    """Start the alert's escalation (its alert locked by the caller) and run the steps due at
    once, the console and the first SMS, in the same transaction. They were made by this
    transaction, so no other replica can see or claim them: they need no look-up or lock,
    and the first contact's phone (what this path is measured by) waits for no other.
    (`found.ctx` is held meanwhile, so the summary for a phone finds the worker loaded.)"""
    alert = found.alert
    _, due = start(db, alert, found.ctx)
    to_send: list[Outgoing] = []
    while due:
        step = due.pop(0)
        if step.due_at > utcnow():
            continue
        ran = run_step(db, step, alert, node, settings, shielded=found.shielded)
        to_send += ran.sent
        if ran.next is not None:
            due.append(ran.next)
    return to_send


def start(
    db: Session, alert: Alert, ctx: snapshots.Context | None = None
) -> tuple[Escalation, list[Step]]:
    """Snapshot the alert's policy onto it (later edits do not change it) and schedule the
    first step, or under duress every step at once. Returns the steps it scheduled."""
    name, snapshot = snapshots.snapshot(db, alert, alert.type, ctx)
    esc = Escalation(
        alert_id=alert.id, policy=name, snapshot=snapshot, duress=False, started_at=utcnow()
    )
    db.add(esc)
    db.flush()
    steps = snapshot.steps
    if not name:
        text = "No escalation policy fits this alert: operators only"
    elif alert.type == AlertType.TEST.value:
        # A test wakes no person; the channels kept for tests that send (an alarm-receiving
        # centre, which logs a 602) are said.
        sending = any(channels.get(s.channel).sends for s in steps)
        centres = " and the alarm-receiving centre" if sending else ""
        text = f"Escalation policy {name!r}: a test alert goes to operators{centres} only"
    else:
        again = f"repeated {plural(snapshot.repeat, 'time')}" if snapshot.repeat else "not repeated"
        text = f"Escalation policy {name!r} started ({plural(len(steps), 'step')}, {again})"
    note(db, alert, EntryKind.STARTED, text, policy=name)
    if rules.under_duress(alert):
        return esc, apply_duress(db, esc, alert)
    first = alert.raised_at + timedelta(seconds=steps[0].after)
    step = Step(escalation_id=esc.id, alert_id=alert.id, position=0, due_at=first)
    db.add(step)
    return esc, [step]


def apply_duress(db: Session, esc: Escalation, alert: Alert) -> list[Step]:
    """Duress: a new round of every step falls due now (the policy's top level at once),
    then the policy goes on as usual; nothing reaches the worker's phone any more. Returns
    the burst's steps."""
    if kind := snapshots.kind_under_duress(alert.type):
        # A test alert cancelled with the duress PIN is an emergency: use the duress policy.
        esc.policy, snapshot = snapshots.snapshot(db, alert, kind)
    else:
        snapshot = esc.snapshot
    n = len(snapshot.steps)
    highest = db.scalar(
        select(Step.position).where(Step.escalation_id == esc.id).order_by(Step.position.desc())
    )
    # The burst is the next round: positions go on from the highest scheduled.
    burst = 0 if highest is None else (highest // n + 1) * n
    esc.snapshot = snapshot.with_burst(burst)
    esc.duress = True
    esc.state, esc.ended_at = EscalationState.RUNNING.value, None
    db.execute(
        update(Step)
        .where(Step.escalation_id == esc.id, Step.state == StepState.PENDING.value)
        .values(state=StepState.CANCELLED.value)
    )
    now = utcnow()
    made = [
        Step(escalation_id=esc.id, alert_id=alert.id, position=burst + i, due_at=now)
        for i in range(n)
    ]
    db.add_all(made)
    silenced = silence_worker(db, alert)
    note(
        db,
        alert,
        EntryKind.DURESS,
        "Duress: every step of the policy runs now, and the worker's phone is not contacted"
        + (f" ({plural(silenced, 'notification')} to it cancelled)" if silenced else ""),
    )
    return made


class Ran(NamedTuple):
    """What running a step did: notifications claimed for sending, and the step it scheduled."""

    sent: list[Outgoing]
    next: Step | None


def run_step(
    db: Session,
    step: Step,
    alert: Alert,
    node: str,
    settings: Settings,
    *,
    shielded: bool | None = None,
) -> Ran:
    """Run one due step (it and its alert locked by the caller): queue its notifications,
    already claimed by this node, and schedule the next step. `shielded`: under_duress, if
    the caller has looked in this transaction."""
    esc = db.get(Escalation, step.escalation_id)
    assert esc is not None
    now = utcnow()
    plan = esc.snapshot
    if not goes_out(esc, alert, step.position):
        step.state = StepState.CANCELLED.value
        return Ran([], None)
    step.state, step.done_at, step.done_by = StepState.DONE.value, now, node
    spec = plan.step_at(step.position)
    channel = channels.get(spec.channel)
    label = plan.label(step.position)
    queued: list[Notification] = []
    phone = ""  # the worker's
    if not channel.sends:
        note(
            db,
            alert,
            EntryKind.STEP,
            f"Escalation {label}: operators, on the console",
            channel=channel.name,
            position=step.position,
        )
    else:
        if step.id is None:
            db.flush()  # the step was made in this transaction: its notifications need its id
        detail = read_detail(db, alert, history=False)
        if shielded is None:
            shielded = not may_reach_worker(db, alert)
        phone = detail.worker.phone if detail.worker is not None else ""
        # Why each recipient not reached was not: said in the timeline, never just "nobody".
        why_not = [missing_reason(name) for name in spec.missing or ()]
        for r in spec.to:
            address = channel.address(r)
            if shielded and aimed_at_worker(r.kind, address, phone):
                why_not.append(held_back_reason(channel, r, address))
                continue
            if not address:
                why_not.append(no_address_reason(channel, r))
                continue
            queued.append(
                claimed(
                    alert_id=alert.id,
                    step_id=step.id,
                    channel=channel.name,
                    recipient=r.name,
                    recipient_kind=r.kind.value,
                    address=address,
                    body=channel.body(
                        detail, r.kind.value, address, step.position + 1, settings.public_url
                    ),
                    node=node,
                    now=now,
                )
            )
        db.add_all(queued)
        if queued:
            who = ", ".join(f"{n.recipient} ({n.address})" for n in queued)
            text = f"Escalation {label}: {channel.name} to {who}"
        else:
            text = f"Escalation {label}: {channel.name} reached nobody"
        if why_not := why_not or ([] if queued else [NOBODY_NAMED]):
            text += ". " + ". ".join(why_not)
        note(
            db,
            alert,
            EntryKind.STEP,
            text,
            channel=channel.name,
            position=step.position,
            reached=len(queued),
        )
    # A step that reached nobody waits its policy's delay like any other: going on at once
    # sent the next round straight after (the same backup got three SMS in three seconds),
    # and an operator who wants the next step now has "Escalate now" (escalate_now).
    nxt = _schedule_next(db, esc, alert, step.position, now, at_once=False)
    if queued:
        db.flush()  # their ids, for the senders; else the next query or the commit flushes
    # Found fit to send just now; only a send to the worker's phone is looked at again.
    checked = time.monotonic()
    return Ran(
        [
            outgoing(n, None if aimed_at_worker(n.recipient_kind, n.address, phone) else checked)
            for n in queued
        ],
        nxt,
    )


# Why a step reached nobody, when its snapshot cannot say (rows from before `missing`).
NOBODY_NAMED = "Its recipients resolved to nobody when the escalation started"


def missing_reason(name: str) -> str:
    """Why a name in the policy's `to` reached nobody (snapshots: it resolved to nobody)."""
    if name == RecipientKind.BACKUP.value:
        return "The team has no backup staff"
    if name == RecipientKind.WORKER.value:
        return "The alert has no worker on record to reach"
    return f"No contact named {name!r} existed when the escalation started"


def held_back_reason(channel: channels.Channel, r: Recipient, address: str) -> str:
    """Why a send aimed at the phone of a worker under duress was not made."""
    whose = f"{r.name}'s phone" if r.kind is RecipientKind.WORKER else f"{r.name} ({address})"
    return (
        f"{channel.word} to {whose} held back: under duress, whoever is with the worker "
        "would hear it"
    )


def no_address_reason(channel: channels.Channel, r: Recipient) -> str:
    if r.kind is RecipientKind.CONTACT and isinstance(channel, Sending):
        why = channel.no_address(r.name)
        return why[:1].upper() + why[1:]
    return f"{r.name} has no phone number on record"


def _schedule_next(
    db: Session, esc: Escalation, alert: Alert, position: int, now: datetime, *, at_once: bool
) -> Step | None:
    if esc.state != EscalationState.RUNNING.value or not rules.should_escalate(alert):
        return None  # stopped: a duress burst that goes on schedules nothing after it
    plan = esc.snapshot
    nxt = position + 1
    if esc.duress and plan.in_burst(nxt):
        return None  # the duress burst scheduled these already
    if nxt >= plan.positions():
        note(
            db,
            alert,
            EntryKind.EXHAUSTED,
            "Every escalation step has run; nobody has taken charge",
        )
        return None
    wait = timedelta(seconds=0 if at_once else plan.step_at(nxt).after)
    step = Step(escalation_id=esc.id, alert_id=alert.id, position=nxt, due_at=now + wait)
    db.add(step)
    return step


def goes_out(esc: Escalation, alert: Alert, position: int) -> bool:
    """Whether the escalation's step at `position` still runs when it falls due: the
    escalation runs and nobody has taken the alert, or the step is one of a duress burst
    that goes on (rules.duress_burst_goes_on) even though someone has taken it since."""
    if esc.snapshot.in_burst(position) and rules.duress_burst_goes_on(alert):
        return True
    return esc.state == EscalationState.RUNNING.value and rules.should_escalate(alert)


def _burst_going_on_sql(esc: Escalation, alert: Alert) -> ColumnElement[bool] | None:
    """goes_out's burst half as a condition on Step rows, or None if no burst goes on."""
    plan = esc.snapshot
    if plan.burst is None or not rules.duress_burst_goes_on(alert):
        return None
    return Step.position.between(plan.burst, plan.burst + len(plan.steps) - 1)


def stop(db: Session, esc: Escalation, alert: Alert) -> None:
    """Nobody needs to be called any more: the alert was taken, resolved or cancelled. Its
    pending steps are cancelled, and its sends not yet made (a retry waiting, a sender that
    died). A duress burst on an alert still open is kept, its steps and their retries: it
    went out the moment the duress PIN was keyed (goes_out); only what follows it stops."""
    now = utcnow()
    taken = alert.state == AlertState.ACKNOWLEDGED.value
    esc.state = (EscalationState.ACKNOWLEDGED if taken else EscalationState.ENDED).value
    esc.ended_at = now
    burst = _burst_going_on_sql(esc, alert)
    kept = False
    steps = [Step.escalation_id == esc.id, Step.state == StepState.PENDING.value]
    sends = [Notification.alert_id == alert.id, cancellable(now)]
    if burst is not None:
        of_burst = exists().where(Step.id == Notification.step_id, burst)
        kept = bool(
            db.scalar(
                select(exists().where(and_(*steps, burst)) | exists().where(*sends, of_burst))
            )
        )
        steps.append(not_(burst))
        sends.append(~of_burst)
    db.execute(update(Step).where(*steps).values(state=StepState.CANCELLED.value))
    cancelled = db.execute(
        update(Notification)
        .where(*sends)
        .values(status=NotificationStatus.CANCELLED.value, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    why = f"taken by {actor_label(alert.acknowledged_by or '')}" if taken else alert.state
    text = f"Escalation stopped: alert {why}"
    if cancelled:
        text += f" ({plural(cancelled, 'notification')} not sent)"
    if kept:
        text += "; the duress burst already under way still goes out"
    note(db, alert, EntryKind.STOPPED, text)


class Refused(Exception):
    """Why "Escalate now" cannot bring a step forward, in words for the operator."""


def why_stopped(alert: Alert, esc: Escalation | None) -> str | None:
    """Why this alert's escalation runs no step any more (or has not started), or None."""
    if esc is None:
        return "no escalation has started for this alert" + (
            "" if rules.needs_escalation(alert) else " (it does not escalate)"
        )
    if alert.state == AlertState.ACKNOWLEDGED.value:
        return f"the alert was taken by {_who(alert.acknowledged_by)}"
    if not rules.is_open(alert):
        return f"the alert is {alert.state}"
    if esc.state != EscalationState.RUNNING.value or not rules.should_escalate(alert):
        return "the escalation has ended"
    return None


def _who(actor: str | None) -> str:
    return (actor or "someone").removeprefix("user:")


def next_step(db: Session, esc: Escalation, *, lock: bool = False) -> Step | None:
    """The escalation's next step to run: its pending step of lowest position."""
    query = (
        select(Step)
        .where(Step.escalation_id == esc.id, Step.state == StepState.PENDING.value)
        .order_by(Step.position)
        .limit(1)
    )
    return db.scalar(query.with_for_update() if lock else query)


def escalate_now(db: Session, alert_id: int, actor: str) -> Step:
    """An operator's "Escalate now": the next step falls due now, written in the timeline
    with who asked. It is not run here: under the alert's lock its due time is set, and the
    step runner claims it as it claims every due step (FOR UPDATE SKIP LOCKED), so it runs
    once across replicas, and a second press before it ran is refused rather than bringing
    the step after it forward too. Raises Refused with the reason when nothing can run."""
    alert = alerts.get(db, alert_id, for_update=True)
    esc = db.scalar(select(Escalation).where(Escalation.alert_id == alert_id).with_for_update())
    if why := why_stopped(alert, esc):
        raise Refused(f"Nothing to escalate: {why}")
    assert esc is not None
    plan = esc.snapshot
    step = next_step(db, esc, lock=True)
    if step is None:
        raise Refused("Nothing to escalate: every step of the policy has run")
    label = plan.label(step.position)
    now = utcnow()
    if step.due_at <= now:
        raise Refused(f"Escalation {label} is already due: it is running now")
    spec = plan.step_at(step.position)
    whom = ", ".join(r.name for r in spec.to)
    what = f"{spec.channel} to {whom}" if whom else spec.channel
    early = span(max(1, (step.due_at - now).total_seconds()))
    step.due_at = now
    note(
        db,
        alert,
        EntryKind.NOW,
        f"Escalate now: {label} ({what}) runs at once, {early} before it was due",
        actor=actor,
        position=step.position,
    )
    return step


def fail_step(db: Session, step_id: int, error: str) -> None:
    """A step that could not run (a fault, not a person): recorded, and the escalation goes
    on with the next step rather than trying this one for ever."""
    step = db.get(Step, step_id)
    if step is None or step.state != StepState.PENDING.value:
        return
    alert = alerts.get(db, step.alert_id, for_update=True)
    esc = db.get(Escalation, step.escalation_id)
    assert esc is not None
    step.state, step.done_at = StepState.ERROR.value, utcnow()
    label = esc.snapshot.label(step.position)
    note(db, alert, EntryKind.ERROR, f"Escalation {label} failed: {error}")
    _schedule_next(db, esc, alert, step.position, utcnow(), at_once=True)


# -- what the engine looks for on every tick ------------------------------------------------


def alerts_without_escalation(db: Session, limit: int = 100) -> list[int]:
    """Alerts that should be escalating and are not: new ones, and any whose event was lost
    (committed just before a crash)."""
    return list(
        db.scalars(
            select(Alert.id)
            .where(rules.needs_escalation_sql(), ~exists().where(Escalation.alert_id == Alert.id))
            .order_by(Alert.priority, Alert.raised_at)
            .limit(limit)
        )
    )


def escalations_to_change(db: Session, limit: int = 100) -> list[int]:
    """Escalations out of step with their alert (three queries, each on an index): running
    ones whose alert should no longer escalate (taken or closed); ones stopped when their
    alert was taken under duress, whose alert is now closed (a burst kept going ends with
    it); and those of alerts that turned to duress since they started. (A duress on a taken
    alert raises it again: alerts.service.cancel_from_device.)"""
    stale = db.scalars(
        select(Escalation.id)
        .join(Alert, Alert.id == Escalation.alert_id)
        .where(Escalation.state == EscalationState.RUNNING.value, not_(rules.should_escalate_sql()))
        .limit(limit)
    ).all()
    closed = db.scalars(
        select(Escalation.id)
        .join(Alert, Alert.id == Escalation.alert_id)
        .where(
            Escalation.state == EscalationState.ACKNOWLEDGED.value,
            Escalation.duress.is_(True),
            not_(rules.is_open_sql()),
        )
        .limit(limit)
    ).all()
    turned = db.scalars(
        select(Escalation.id)
        .join(Alert, Alert.id == Escalation.alert_id)
        .where(rules.open_under_duress_sql(), Escalation.duress.is_(False))
        .limit(limit)
    ).all()
    return list(dict.fromkeys([*turned, *stale, *closed]))


def _to_stop(esc: Escalation, alert: Alert) -> bool:
    """escalations_to_change's first two queries, for one escalation."""
    if esc.state == EscalationState.RUNNING.value:
        return not rules.should_escalate(alert)
    taken = esc.state == EscalationState.ACKNOWLEDGED.value
    return taken and esc.duress and not rules.is_open(alert)


def settle(db: Session, esc_id: int) -> None:
    """Bring one escalation in line with its alert (see escalations_to_change). A duress on
    an alert someone takes before this runs gets its burst, and the rest stops at once."""
    alert_id = db.scalar(select(Escalation.alert_id).where(Escalation.id == esc_id))
    assert alert_id is not None
    alert = alerts.get(db, alert_id, for_update=True)  # the alert first, as everywhere
    esc = db.get(Escalation, esc_id, with_for_update=True)
    assert esc is not None
    if rules.open_under_duress(alert) and not esc.duress:
        apply_duress(db, esc, alert)
    if _to_stop(esc, alert):
        stop(db, esc, alert)


def any_step_due(db: Session) -> bool:
    due = exists().where(Step.state == StepState.PENDING.value, Step.due_at <= utcnow())
    return bool(db.scalar(select(due)))


def due_step_candidate(db: Session) -> tuple[int, int] | None:
    """The step due longest (its id and alert), read without a lock: the caller locks the
    alert, then claims the step, in the house order."""
    row = db.execute(
        select(Step.id, Step.alert_id)
        .where(Step.state == StepState.PENDING.value, Step.due_at <= utcnow())
        .order_by(Step.due_at)
        .limit(1)
    ).first()
    return (row.id, row.alert_id) if row is not None else None


def claim_step(db: Session, step_id: int) -> Step | None:
    """The step, locked, if no other replica holds or has run it (FOR UPDATE SKIP LOCKED)."""
    return db.scalar(
        select(Step)
        .where(Step.id == step_id, Step.state == StepState.PENDING.value)
        .with_for_update(skip_locked=True)
    )
