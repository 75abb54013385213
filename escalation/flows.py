"""Escalation in the database: start one on an alert, run a due step, stop, jump on duress.

Every function here runs inside the caller's transaction; the engine (escalation.engine)
decides when, and sends what these functions queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from escalation import summary
from escalation.models import Contact, Escalation, Notification, Step
from escalation.policies import BACKUP, WORKER, choose, stored_policies
from escalation.providers import Outgoing
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert, AlertDetail
from monitor.alerts.states import ACTIVE_STATES, AlertState, AlertType
from monitor.config import Settings
from monitor.db import utcnow
from monitor.events import pending
from monitor.orgs.models import Organisation, Team, Worker

ACTIVE = [s.value for s in ACTIVE_STATES]
# Provider statuses after which this notification can no longer bring an acknowledgement.
UNANSWERED = frozenset(
    {"failed", "undelivered", "busy", "no-answer", "canceled", "completed", "error"}
)
FINAL = UNANSWERED | {"delivered", "acknowledged", "outbox", "cancelled"}
# A claimed notification whose sender died is claimed again after this long.
LEASE = timedelta(seconds=120)


def live(alert: Alert, esc: Escalation) -> bool:
    """Whether the escalation should still act: nobody has taken charge, or under duress the
    alert is still open (a duress burst runs even if someone took the alert earlier)."""
    if alert.state == AlertState.RAISED.value:
        return True
    return esc.duress and alert.state in ACTIVE


def _label(esc: Escalation, position: int) -> str:
    steps = esc.snapshot["steps"]
    total = len(steps) * (esc.snapshot["repeat"] + 1)
    return f"step {position + 1} of {total}"


def _note(db: Session, alert: Alert, kind: str, text: str, **data: Any) -> None:
    alerts.record(db, alert, kind, "escalation", text, **data)
    # One announcement per alert per transaction is enough: a console refetches the
    # whole timeline when it hears of a change.
    if not any(
        e.kind == "alert.escalation" and e.data["alert"]["id"] == alert.id for e in pending(db)
    ):
        alerts.announce(db, "alert.escalation", alert)


def _recipients(db: Session, alert: Alert, names: list[str]) -> list[dict[str, str]]:
    """The step's `to` resolved to people and addresses, as they are now."""
    worker = db.get(Worker, alert.worker_id) if alert.worker_id is not None else None
    team = db.get(Team, worker.team_id) if worker is not None and worker.team_id else None
    out: list[dict[str, str]] = []
    for name in names:
        if name == WORKER:
            if worker is not None:
                out.append({"name": worker.name, "kind": WORKER, "phone": worker.phone})
        elif name == BACKUP:
            for c in db.scalars(select(Contact).order_by(Contact.name)):
                if team is not None and team.name in c.backup_for:
                    out.append({"name": c.name, "kind": BACKUP, "phone": c.phone})
        else:
            named = db.scalar(select(Contact).where(Contact.name == name))
            if named is not None:
                out.append(
                    {
                        "name": named.name,
                        "kind": "contact",
                        "phone": named.phone,
                        "webhook": named.webhook,
                    }
                )
    return out


def start(db: Session, alert: Alert) -> Escalation:
    """Snapshot the alert's policy onto it and schedule the first step (or, under duress,
    every step of the first round at once)."""
    worker = db.get(Worker, alert.worker_id) if alert.worker_id is not None else None
    team = db.get(Team, worker.team_id) if worker is not None and worker.team_id else None
    org = db.get(Organisation, alert.org_id) if alert.org_id is not None else None
    policy = choose(
        stored_policies(db), alert.type, org.name if org else None, team.name if team else None
    )
    if policy is None:
        steps: list[dict[str, Any]] = [{"after": 0, "channel": "console", "to": []}]
        repeat, name = 0, ""
    else:
        steps = [
            {
                "after": s.after,
                "channel": s.channel,
                "to": _recipients(db, alert, s.to),
            }
            for s in policy.steps
        ]
        repeat, name = policy.repeat, policy.name
    if alert.type == AlertType.TEST.value:
        # A test alert proves the badge works; it must not wake anybody's phone.
        steps = [s for s in steps if s["channel"] == "console"] or [
            {"after": 0, "channel": "console", "to": []}
        ]
        repeat = 0
    esc = Escalation(
        alert_id=alert.id,
        policy=name,
        snapshot={"repeat": repeat, "steps": steps},
        duress=alert.duress,
        started_at=utcnow(),
    )
    db.add(esc)
    db.flush()
    if alert.duress:
        _schedule_burst(db, esc, alert)
    else:
        db.add(
            Step(
                escalation_id=esc.id,
                alert_id=alert.id,
                position=0,
                due_at=alert.raised_at + timedelta(seconds=steps[0]["after"]),
            )
        )
    if policy is None:
        text = "No escalation policy fits this alert: operators only"
    elif alert.type == AlertType.TEST.value:
        text = f"Escalation policy {name!r}: a test alert goes to operators only"
    else:
        text = f"Escalation policy {name!r} started ({len(steps)} steps, repeated {repeat} times)"
    _note(db, alert, "escalation_started", text, policy=name)
    return esc


def _schedule_burst(db: Session, esc: Escalation, alert: Alert) -> None:
    """Every step of the first round falls due now (duress: the top level at once)."""
    now = utcnow()
    have = {
        s.position: s
        for s in db.scalars(select(Step).where(Step.escalation_id == esc.id).with_for_update())
    }
    for position in range(len(esc.snapshot["steps"])):
        step = have.get(position)
        if step is None:
            db.add(Step(escalation_id=esc.id, alert_id=alert.id, position=position, due_at=now))
        elif step.state == "pending":
            step.due_at = now


def apply_duress(db: Session, esc: Escalation, alert: Alert) -> None:
    """The worker keyed the duress PIN after the escalation began."""
    esc.duress = True
    if esc.state != "running" and alert.state in ACTIVE:
        esc.state, esc.ended_at = "running", None
    _schedule_burst(db, esc, alert)
    # Nothing may reach the worker's phone now: whoever is with them would hear it.
    db.execute(
        update(Notification)
        .where(
            Notification.alert_id == alert.id,
            Notification.recipient_kind == WORKER,
            _sendable(utcnow()),
        )
        .values(status="cancelled", updated_at=utcnow())
    )
    _note(
        db,
        alert,
        "escalation_duress",
        "Duress: every level of the policy is notified now; the worker is not contacted",
    )


def outgoing(n: Notification) -> Outgoing:
    return Outgoing(n.id, n.alert_id, n.channel, n.address, n.body)


def run_step(
    db: Session, step: Step, alert: Alert, node: str, settings: Settings
) -> list[Outgoing]:
    """Run one due step (its row is locked by the caller): queue its notifications, already
    claimed by this node, and schedule the next step. Returns the notifications to send."""
    esc = db.get(Escalation, step.escalation_id)
    assert esc is not None
    now = utcnow()
    if esc.state != "running" or not live(alert, esc):
        step.state = "cancelled"
        return []
    step.state, step.done_at, step.done_by = "done", now, node
    steps = esc.snapshot["steps"]
    spec = steps[step.position % len(steps)]
    channel: str = spec["channel"]
    label = _label(esc, step.position)
    queued: list[Notification] = []
    if channel == "console":
        _note(db, alert, "escalation_step", f"Escalation {label}: operators, on the console")
    else:
        detail = alerts.detail(db, alert)
        skipped = []
        for r in spec["to"]:
            if esc.duress and r["kind"] == WORKER:
                continue
            address = r.get("phone", "") if channel in ("sms", "voice") else ""
            if channel == "webhook":
                address = r.get("webhook", "")
            elif channel == "dispatch":
                address = r.get("phone", "") or r.get("webhook", "")
            if not address:
                skipped.append(r["name"])
                continue
            queued.append(
                Notification(
                    alert_id=alert.id,
                    step_id=step.id,
                    channel=channel,
                    recipient=r["name"],
                    recipient_kind=r["kind"],
                    address=address,
                    body=_body(detail, channel, r["kind"], address, step.position, settings),
                    status="sending",
                    attempts=1,
                    lease_until=now + LEASE,
                    claimed_by=node,
                    created_at=now,
                    updated_at=now,
                )
            )
        db.add_all(queued)
        who = ", ".join(f"{n.recipient} ({n.address})" for n in queued) or "nobody reachable"
        text = f"Escalation {label}: {channel} to {who}"
        if skipped:
            text += f"; no address for {', '.join(skipped)}"
        _note(db, alert, "escalation_step", text, channel=channel, position=step.position)
    # A step that reached nobody (no backup staff for the team, no number) has nobody to
    # wait for: the next step follows at once.
    _schedule_next(db, esc, alert, step.position, now, at_once=channel != "console" and not queued)
    db.flush()
    return [outgoing(n) for n in queued]


def _body(
    a: AlertDetail, channel: str, kind: str, address: str, position: int, settings: Settings
) -> str:
    if channel == "sms":
        return summary.sms(a, settings.public_url, to_worker=kind == WORKER)
    if channel == "voice":
        return summary.voice(a, to_worker=kind == WORKER)
    if channel == "dispatch" and not address.startswith("http"):
        return summary.voice(a, dispatch=True)
    return summary.webhook(a, settings.public_url, step=position + 1, channel=channel)


def _schedule_next(
    db: Session, esc: Escalation, alert: Alert, position: int, now: datetime, *, at_once: bool
) -> None:
    steps = esc.snapshot["steps"]
    total = len(steps) * (esc.snapshot["repeat"] + 1)
    nxt = position + 1
    if esc.duress:
        return  # the burst scheduled the whole first round; no repeats are waited for
    if nxt >= total:
        _note(
            db,
            alert,
            "escalation_exhausted",
            "Every escalation step has run; nobody has taken charge",
        )
        return
    wait = timedelta(seconds=0 if at_once else steps[nxt % len(steps)]["after"])
    db.add(Step(escalation_id=esc.id, alert_id=alert.id, position=nxt, due_at=now + wait))


def stop(db: Session, esc: Escalation, alert: Alert) -> None:
    """Nobody needs to be called any more: the alert was taken, resolved or cancelled."""
    now = utcnow()
    esc.state = "acknowledged" if alert.state == AlertState.ACKNOWLEDGED.value else "ended"
    esc.ended_at = now
    db.execute(
        update(Step)
        .where(Step.escalation_id == esc.id, Step.state == "pending")
        .values(state="cancelled")
    )
    cancelled = db.execute(
        update(Notification)
        .where(Notification.alert_id == alert.id, _sendable(now))
        .values(status="cancelled", updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    why = {"acknowledged": f"taken by {alert.acknowledged_by}"}.get(esc.state, alert.state)
    text = f"Escalation stopped: alert {why}"
    if cancelled:
        text += f" ({cancelled} notifications not sent)"
    _note(db, alert, "escalation_stopped", text)


# -- what the engine looks for on every tick ------------------------------------------------


def alerts_without_escalation(db: Session, limit: int = 100) -> list[int]:
    """Alerts that should be escalating and are not: new ones, and any whose event was lost
    (committed just before a crash)."""
    return list(
        db.scalars(
            select(Alert.id)
            .where(
                or_(
                    Alert.state == AlertState.RAISED.value,
                    and_(Alert.duress.is_(True), Alert.state.in_(ACTIVE)),
                ),
                ~exists().where(Escalation.alert_id == Alert.id),
            )
            .order_by(Alert.priority, Alert.raised_at)
            .limit(limit)
        )
    )


def escalations_to_change(db: Session, limit: int = 100) -> list[int]:
    """Running escalations whose alert was taken or closed, and escalations of alerts that
    turned to duress since they started."""
    stale = or_(
        Alert.state.not_in(ACTIVE),
        and_(Alert.state == AlertState.ACKNOWLEDGED.value, Escalation.duress.is_(False)),
    )
    turned = and_(Alert.duress.is_(True), Escalation.duress.is_(False), Alert.state.in_(ACTIVE))
    return list(
        db.scalars(
            select(Escalation.id)
            .join(Alert, Alert.id == Escalation.alert_id)
            .where(or_(and_(Escalation.state == "running", stale), turned))
            .limit(limit)
        )
    )


def settle(db: Session, esc_id: int) -> None:
    """Bring one escalation in line with its alert (see escalations_to_change)."""
    esc = db.get(Escalation, esc_id, with_for_update=True)
    assert esc is not None
    alert = alerts.get(db, esc.alert_id, for_update=True)
    if alert.duress and not esc.duress and alert.state in ACTIVE:
        apply_duress(db, esc, alert)
    elif esc.state == "running" and not live(alert, esc):
        stop(db, esc, alert)


def _sendable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(Notification.status == "pending", Notification.next_attempt_at <= now),
        and_(Notification.status == "sending", Notification.lease_until < now),
    )


def due(db: Session) -> tuple[bool, bool]:
    """Whether any step, and any notification, is due now (a cheap read)."""
    now = utcnow()
    steps = db.scalar(select(exists().where(Step.state == "pending", Step.due_at <= now)))
    sends = db.scalar(select(exists().where(_sendable(now))))
    return bool(steps), bool(sends)


def claim_due_step(db: Session) -> Step | None:
    return db.scalar(
        select(Step)
        .where(Step.state == "pending", Step.due_at <= utcnow())
        .order_by(Step.due_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def next_due_step(db: Session, esc_id: int) -> Step | None:
    """The escalation's first step that is due now (for running steps right after start)."""
    return db.scalar(
        select(Step)
        .where(Step.escalation_id == esc_id, Step.state == "pending", Step.due_at <= utcnow())
        .order_by(Step.position)
        .limit(1)
        .with_for_update()
    )


def reclaim(db: Session, node: str) -> int:
    """At start: sends this replica claimed before it stopped or died go again now, rather
    than when their lease runs out. (One Twilio took just before a crash goes twice.)"""
    return db.execute(  # type: ignore[attr-defined,no-any-return]
        update(Notification)
        .where(Notification.status == "sending", Notification.claimed_by == node)
        .values(status="pending", next_attempt_at=utcnow(), lease_until=None)
    ).rowcount


def claim_notifications(db: Session, node: str, limit: int) -> list[Outgoing]:
    """Notifications to (re)send now, claimed for this node under a lease."""
    now = utcnow()
    rows = db.scalars(
        select(Notification)
        .where(_sendable(now))
        .order_by(Notification.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for n in rows:
        n.status, n.lease_until, n.updated_at = "sending", now + LEASE, now
        n.claimed_by = node
        n.attempts += 1
    return [outgoing(n) for n in rows]


def bring_next_step_forward(db: Session, n: Notification, alert: Alert) -> bool:
    """When nobody reached by a step can still answer, the next step need not wait."""
    if n.step_id is None:
        return False
    statuses = db.scalars(select(Notification.status).where(Notification.step_id == n.step_id))
    if not all(s in UNANSWERED or s == "cancelled" for s in statuses):
        return False
    step = db.get(Step, n.step_id)
    assert step is not None
    nxt = db.scalar(
        select(Step)
        .where(
            Step.escalation_id == step.escalation_id,
            Step.state == "pending",
            Step.position > step.position,
        )
        .order_by(Step.position)
        .limit(1)
        .with_for_update()
    )
    now = utcnow()
    if nxt is None or nxt.due_at <= now:
        return False
    nxt.due_at = now
    _note(db, alert, "escalation_advanced", "Nobody reached at that step: going on now")
    return True


# -- what became of a notification ----------------------------------------------------------

CHANNEL_WORDS = {"sms": "SMS", "voice": "Call", "webhook": "Webhook", "dispatch": "Dispatch"}


def _describe(n: Notification) -> str:
    return f"{CHANNEL_WORDS.get(n.channel, n.channel)} to {n.recipient} ({n.address})"


def record_sent(db: Session, n: Notification, alert: Alert, status: str, sid: str | None) -> None:
    # A status callback may have beaten us here; its news is newer than "queued".
    if n.status == "sending":
        n.status = status
    n.provider_sid, n.lease_until, n.error, n.updated_at = sid, None, None, utcnow()
    if status == "outbox":
        text = f"{_describe(n)} kept in the outbox (no Twilio configured): {n.body}"
    else:
        text = f"{_describe(n)}: {status}" + (f" ({sid})" if sid else "")
    _note(db, alert, "notification", text, notification=n.id, status=status, channel=n.channel)


def record_failure(
    db: Session, n: Notification, alert: Alert, error: str, *, retry: bool, settings: Settings
) -> bool:
    """A send that failed: retried later with backoff, or given up. True if the next step
    was brought forward."""
    now = utcnow()
    n.error, n.lease_until, n.updated_at = error, None, now
    if retry and n.attempts < settings.escalation_attempts:
        wait = min(settings.escalation_retry_base_s * 2 ** (n.attempts - 1), 60.0)
        n.status, n.next_attempt_at = "pending", now + timedelta(seconds=wait)
        text = f"{_describe(n)} failed ({error}); trying again in {wait:.0f} s"
        _note(db, alert, "notification", text, notification=n.id, status="retrying")
        return False
    n.status = "error" if retry else "failed"
    tries = f" after {n.attempts} tries" if n.attempts > 1 else ""
    _note(
        db,
        alert,
        "notification",
        f"{_describe(n)} failed{tries}: {error}",
        notification=n.id,
        status=n.status,
    )
    return bring_next_step_forward(db, n, alert)


def record_status(db: Session, n: Notification, alert: Alert, status: str) -> bool:
    """A delivery status from Twilio. True if the next step was brought forward."""
    if n.status in FINAL or n.status == status:
        return False  # late or repeated news changes nothing (an acknowledged call completes)
    n.status, n.updated_at = status, utcnow()
    _note(db, alert, "notification", f"{_describe(n)}: {status}", notification=n.id, status=status)
    if status in UNANSWERED:
        return bring_next_step_forward(db, n, alert)
    return False


def acknowledge_by(db: Session, n: Notification, alert: Alert, via: str) -> bool:
    """A recipient said they are handling it (pressed 1, replied to the SMS). False if the
    alert was no longer waiting for anyone."""
    if alert.state != AlertState.RAISED.value:
        return False
    n.status, n.updated_at = "acknowledged", utcnow()
    actor = f"{n.recipient} ({n.address})"
    alerts.acknowledge(db, alert.id, actor=actor, via=via)
    return True
