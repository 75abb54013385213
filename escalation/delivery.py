"""Notifications after their step ran: claiming, what came of each send, delivery statuses,
acknowledgements, and going on early when nobody can answer.

Locks are always taken alert first, then notification, then step (as the engine and the
alert service do), so that concurrent senders, webhooks and replicas never deadlock, and two
results for one alert are applied one after the other.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session

from escalation.channels import CHANNELS
from escalation.channels.sms import Sms
from escalation.models import Notification, RecipientKind, Step
from escalation.providers import Outgoing
from escalation.states import FINAL, UNANSWERED, NotificationStatus, StepState
from escalation.timeline import EntryKind
from monitor.alerts import rules
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.alerts.states import AlertState
from monitor.config import Settings
from monitor.db import utcnow
from monitor.events import AlertChanged, Kind, pending
from monitor.orgs.models import Worker

# A claimed notification whose sender died is claimed again after this long.
LEASE = timedelta(seconds=120)
# A claim younger than this needs no last look before its send (needs_last_look).
FRESH_S = LEASE.total_seconds() / 4


def note(
    db: Session, alert: Alert, kind: str, text: str, *, actor: str = "escalation", **data: Any
) -> None:
    """An escalation entry in the alert's timeline, of a kind in timeline.EntryKind (the
    console sets those apart: console/meta.py), written by escalation or by `actor`."""
    alerts.record(db, alert, kind, actor, text, **data)
    # One announcement per alert per transaction is enough: a console refetches the
    # whole timeline when it hears of a change.
    if not any(
        isinstance(e, AlertChanged) and e.kind is Kind.ALERT_ESCALATION and e.alert_id == alert.id
        for e in pending(db)
    ):
        alerts.announce(db, Kind.ALERT_ESCALATION, alert)


def describe(n: Notification) -> str:
    channel = CHANNELS.get(n.channel)
    return f"{channel.word if channel else n.channel} to {n.recipient} ({n.address})"


def outgoing(n: Notification, checked_at: float | None = None) -> Outgoing:
    return Outgoing(n.id, n.alert_id, n.channel, n.address, n.body, n.attempts, checked_at)


def claimed(
    *,
    alert_id: int,
    step_id: int | None,
    channel: str,
    recipient: str,
    recipient_kind: str,
    address: str,
    body: str,
    node: str,
    now: datetime,
) -> Notification:
    """A new notification, already claimed by `node` for its first attempt (its sender
    takes it in the same breath): a step's (flows.run_step) or a restore's (restores.queue),
    with no step."""
    return Notification(
        alert_id=alert_id,
        step_id=step_id,
        channel=channel,
        recipient=recipient,
        recipient_kind=recipient_kind,
        address=address,
        body=body,
        status=NotificationStatus.CLAIMED.value,
        attempts=1,
        lease_until=now + LEASE,
        claimed_by=node,
        created_at=now,
        updated_at=now,
    )


# -- duress: whatever happens, nothing reaches the worker -------------------------------------


def worker_phone(db: Session, alert: Alert) -> str:
    if alert.worker_id is None:
        return ""
    return db.scalar(select(Worker.phone).where(Worker.id == alert.worker_id)) or ""


def may_reach_worker(db: Session, alert: Alert) -> bool:
    """rules.may_reach_worker for a call or an SMS: not while this alert, or any other open
    alert of the same device, is under duress."""
    if not rules.may_tell_device(alert):
        return False  # no need to look at the device's other alerts
    device_duress = alerts.active_duress(db, alert.device_id)
    return rules.may_reach_worker(alert, device_under_duress=device_duress)


def aimed_at_worker(kind: str, address: str, phone: str) -> bool:
    """Whether a notification to this recipient would reach the worker's phone: sent to
    the worker, or to a contact who has the worker's number (`phone`)."""
    return kind == RecipientKind.WORKER.value or (bool(phone) and address == phone)


def aimed_at_worker_sql(phone: str) -> ColumnElement[bool]:
    aimed = Notification.recipient_kind == RecipientKind.WORKER.value
    return or_(aimed, Notification.address == phone) if phone else aimed


def silenced(db: Session, n: Notification, alert: Alert) -> bool:
    """Whether this notification would reach the phone of a worker under duress."""
    aimed = aimed_at_worker(n.recipient_kind, n.address, worker_phone(db, alert))
    return aimed and not may_reach_worker(db, alert)


def silence_worker(db: Session, alert: Alert) -> int:
    """Cancel everything not yet sent to the worker's phone, for every alert of the device."""
    return db.execute(  # type: ignore[attr-defined,no-any-return]
        update(Notification)
        .where(
            Notification.alert_id.in_(select(Alert.id).where(Alert.device_id == alert.device_id)),
            aimed_at_worker_sql(worker_phone(db, alert)),
            cancellable(utcnow()),
        )
        .values(status=NotificationStatus.CANCELLED.value, updated_at=utcnow())
    ).rowcount


# -- claiming --------------------------------------------------------------------------------


def sendable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(
            Notification.status == NotificationStatus.PENDING.value,
            Notification.next_attempt_at <= now,
        ),
        and_(
            Notification.status == NotificationStatus.CLAIMED.value, Notification.lease_until < now
        ),
    )


def cancellable(now: datetime) -> ColumnElement[bool]:
    """Not sent and not being sent: waiting (even for a retry later) or left by a dead sender."""
    return or_(
        Notification.status == NotificationStatus.PENDING.value,
        and_(
            Notification.status == NotificationStatus.CLAIMED.value, Notification.lease_until < now
        ),
    )


def any_sendable(db: Session) -> bool:
    return bool(db.scalar(select(exists().where(sendable(utcnow())))))


def claim(db: Session, node: str, limit: int, max_attempts: int) -> list[Outgoing]:
    """Notifications to (re)send now, claimed for this node under a lease."""
    now = utcnow()
    rows = db.scalars(
        select(Notification)
        .where(sendable(now))
        .order_by(Notification.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    out = []
    for n in rows:
        if n.attempts >= max_attempts:
            # Claimed that often without a result: its senders keep dying. Give up loudly.
            n.status, n.error = NotificationStatus.ERROR.value, "no result after repeated claims"
            n.updated_at = now
            continue
        n.status, n.lease_until, n.claimed_by, n.updated_at = (
            NotificationStatus.CLAIMED.value,
            now + LEASE,
            node,
            now,
        )
        n.attempts += 1
        out.append(outgoing(n))
    return out


def reclaim(db: Session, node: str) -> int:
    """At start: sends this replica claimed before it stopped or died go again now, rather
    than when their lease runs out. (One Twilio took just before a crash goes twice.)"""
    return db.execute(  # type: ignore[attr-defined,no-any-return]
        update(Notification)
        .where(
            Notification.status == NotificationStatus.CLAIMED.value, Notification.claimed_by == node
        )
        .values(status=NotificationStatus.PENDING.value, next_attempt_at=utcnow(), lease_until=None)
    ).rowcount


def needs_last_look(item: Outgoing) -> bool:
    """Whether the sender must look at the notification again before sending it. Not if its
    claim found it fit a moment ago: well inside the lease nobody else can have claimed it,
    and duress silences only the worker's phone (such sends are always looked at again)."""
    return item.checked_at is None or time.monotonic() - item.checked_at > FRESH_S


# Built once: putting a statement this size together costs more than running it cached.
_LAST_LOOK = (
    select(
        Notification.status,
        Notification.attempts,
        Notification.lease_until,
        Notification.recipient_kind,
        Notification.address,
        Worker.phone,
        rules.may_reach_worker_sql(),
    )
    .join(Alert, Alert.id == Notification.alert_id)
    .outerjoin(Worker, Worker.id == Alert.worker_id)
    .where(Notification.id == bindparam("notification_id"))
)


def still_to_send(db: Session, item: Outgoing) -> str | None:
    """Checked by the sending thread just before it sends: None to go ahead, else why not.
    One query (what `silenced` looks up, joined), as it stands between a claim and its send."""
    row = db.execute(_LAST_LOOK, {"notification_id": item.id}).first()
    if row is None:
        return "claimed again elsewhere"
    status, attempts, lease_until, kind, address, phone, may_reach = row
    if status != NotificationStatus.CLAIMED.value or attempts != item.attempt:
        return "claimed again elsewhere"
    if lease_until is None or lease_until <= utcnow():
        return "its lease ran out while it waited"
    if aimed_at_worker(kind, address, phone) and not may_reach:
        return "duress"
    return None


def locked(db: Session, notification_id: int) -> tuple[Notification, Alert]:
    """The notification and its alert, locked in the house order (alert first)."""
    alert_id = db.scalar(select(Notification.alert_id).where(Notification.id == notification_id))
    if alert_id is None:
        raise LookupError(f"no notification {notification_id}")
    alert = alerts.get(db, alert_id, for_update=True)
    n = db.get(Notification, notification_id, with_for_update=True)
    assert n is not None
    return n, alert


# -- what came of a send ---------------------------------------------------------------------


def _ours(n: Notification, item: Outgoing) -> bool:
    return n.status == NotificationStatus.CLAIMED.value and n.attempts == item.attempt


def record_sent(db: Session, item: Outgoing, status: str, sid: str | None) -> None:
    n, alert = locked(db, item.id)
    now = utcnow()
    if _ours(n, item):
        n.status, n.lease_until, n.error = status, None, None
    # Otherwise a status callback got here first (its news is newer than "queued").
    n.provider_sid, n.updated_at = sid or n.provider_sid, now
    data: dict[str, Any] = {"notification": n.id, "status": status, "channel": n.channel}
    if status == NotificationStatus.OUTBOX.value:
        text = f"{describe(n)} kept in the outbox (no Twilio configured)"
        # In data, not the text: it holds the worker's position, which not everyone may see
        # once the alert is over (monitor/privacy/positions.py).
        data["body"] = n.body
    else:
        text = f"{describe(n)}: {status}" + (f" ({sid})" if sid else "")
    note(db, alert, EntryKind.NOTIFICATION, text, **data)


def record_skip(db: Session, item: Outgoing, why: str) -> None:
    n, alert = locked(db, item.id)
    if why == "duress" and _ours(n, item):
        n.status, n.lease_until, n.updated_at = NotificationStatus.CANCELLED.value, None, utcnow()
        note(
            db, alert, EntryKind.NOTIFICATION, f"{describe(n)} not sent: the worker is under duress"
        )


def record_failure(
    db: Session, item: Outgoing, error: str, *, retry: bool, settings: Settings
) -> bool:
    """A send that failed: retried later with backoff, or given up. True if the next step
    was brought forward."""
    n, alert = locked(db, item.id)
    if not _ours(n, item):
        return False  # claimed again meanwhile; that attempt will report for itself
    now = utcnow()
    n.error, n.lease_until, n.updated_at = error, None, now
    if silenced(db, n, alert):
        n.status = NotificationStatus.CANCELLED.value
        note(db, alert, EntryKind.NOTIFICATION, f"{describe(n)} failed; not retried: duress")
        return False
    if retry and n.attempts < settings.escalation_attempts:
        wait = min(settings.escalation_retry_base_s * 2 ** (n.attempts - 1), 60.0)
        n.status, n.next_attempt_at = (
            NotificationStatus.PENDING.value,
            now + timedelta(seconds=wait),
        )
        text = f"{describe(n)} failed ({error}); trying again in {wait:.0f} s"
        note(db, alert, EntryKind.NOTIFICATION, text, notification=n.id, status="retrying")
        return False
    n.status = (NotificationStatus.ERROR if retry else NotificationStatus.FAILED).value
    tries = f" after {n.attempts} tries" if n.attempts > 1 else ""
    note(
        db,
        alert,
        EntryKind.NOTIFICATION,
        f"{describe(n)} failed{tries}: {error}",
        notification=n.id,
        status=n.status,
    )
    return bring_next_step_forward(db, n, alert)


def record_status(db: Session, n: Notification, alert: Alert, status: str, sid: str | None) -> bool:
    """A delivery status from Twilio (both rows locked by the caller). True if the next step
    was brought forward."""
    if n.status == status:
        return False
    text = f"{describe(n)}: {status}"
    if n.status in FINAL:
        # Late news (a call completing after the 1 that acknowledged it): shown, not applied.
        note(db, alert, EntryKind.NOTIFICATION, text, notification=n.id, status=status)
        return False
    # A retry may be waiting after a timeout although Twilio had taken the message: its
    # callback settles it, and the retry is not sent.
    n.status, n.updated_at = status, utcnow()
    n.provider_sid = n.provider_sid or sid
    note(db, alert, EntryKind.NOTIFICATION, text, notification=n.id, status=status)
    if status in UNANSWERED:
        return bring_next_step_forward(db, n, alert)
    return False


def bring_next_step_forward(db: Session, n: Notification, alert: Alert) -> bool:
    """When nobody reached by a step can still answer, the next step need not wait. (The
    alert lock held by every caller orders concurrent results for its notifications.)"""
    if n.step_id is None:
        return False
    statuses = db.scalars(select(Notification.status).where(Notification.step_id == n.step_id))
    if not all(s in UNANSWERED or s == NotificationStatus.CANCELLED.value for s in statuses):
        return False
    step = db.get(Step, n.step_id)
    assert step is not None
    nxt = db.scalar(
        select(Step)
        .where(
            Step.escalation_id == step.escalation_id,
            Step.state == StepState.PENDING.value,
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
    note(db, alert, EntryKind.ADVANCED, "Nobody reached at that step: going on now")
    return True


# -- answers ---------------------------------------------------------------------------------


def acknowledge_by(db: Session, n: Notification, alert: Alert, via: str) -> bool:
    """A recipient said they are handling it (pressed 1, replied to the SMS). False if the
    alert was no longer waiting for anyone."""
    if alert.state != AlertState.RAISED.value:
        return False
    n.status, n.updated_at = NotificationStatus.ACKNOWLEDGED.value, utcnow()
    actor = f"{n.recipient} ({n.address})"
    alerts.acknowledge(db, alert.id, actor=actor, via=via)
    return True


def sms_sent_to(db: Session, number: str, alert_id: int | None) -> tuple[int | None, list[int]]:
    """Which of our SMS to this number a reply answers: the one for `alert_id` if the reply
    names it, else the latest whose alert still waits for someone (else the latest of all).
    Also returns the other alerts texted to this number that still wait."""
    rows = db.execute(
        select(Notification.id, Notification.alert_id, Alert.state)
        .join(Alert, Alert.id == Notification.alert_id)
        .where(Notification.channel == Sms.name, Notification.address == number)
        .order_by(Notification.id.desc())
        .limit(200)
    ).all()
    waiting = [r for r in rows if r.state == AlertState.RAISED.value]
    if alert_id is not None:
        chosen = next((r for r in rows if r.alert_id == alert_id), None)
    else:
        chosen = waiting[0] if waiting else (rows[0] if rows else None)
    others = sorted({r.alert_id for r in waiting} - ({chosen.alert_id} if chosen else set()))
    return (chosen.id if chosen else None), others
