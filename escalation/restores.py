"""The restore an alarm-receiving centre is owed: when an alert it took (its event ACKed) is
resolved or cancelled, the same event with qualifier 3 (restore) goes to it, once, as a
notification like any other (durable, retried, in the timeline).

A restore is a notification of the ARC channel with no step (it ends the escalation's
events rather than being one of its steps); its body is the restore's event and why
(`3120 00 000[IVigil alert #42 resolved: false_alarm]`).
Every function here runs inside the caller's transaction; the engine calls them.
"""

from __future__ import annotations

from sqlalchemy import and_, exists, func, literal, not_, select
from sqlalchemy.orm import Session, aliased

from escalation import arc, dc09
from escalation.channels.arc import Arc
from escalation.delivery import claimed, describe, note, outgoing
from escalation.models import Notification
from escalation.providers import Outgoing
from escalation.states import NotificationStatus
from escalation.timeline import EntryKind
from monitor.alerts import rules
from monitor.alerts import service as alerts
from monitor.alerts.models import Alert
from monitor.alerts.states import AlertState
from monitor.db import utcnow

_restore = aliased(Notification)


def owed(db: Session, limit: int = 100) -> list[int]:
    """Closed alerts with an event taken by a centre and no restore for it yet (their
    event lost to a crash, or taken after the alert closed)."""
    return list(
        db.scalars(
            select(Notification.alert_id)
            .join(Alert, Alert.id == Notification.alert_id)
            .where(
                Notification.channel == Arc.name,
                Notification.status == NotificationStatus.DELIVERED.value,
                Notification.step_id.isnot(None),
                # An event with an end: a new one (qualifier 1), not a test report.
                Notification.body.like(f"{dc09.NEW}%"),
                ~Notification.body.like(f"{dc09.NEW}{arc.TEST} %"),
                not_(rules.is_open_sql()),
                ~exists().where(
                    and_(
                        _restore.alert_id == Notification.alert_id,
                        _restore.channel == Arc.name,
                        _restore.step_id.is_(None),
                        _restore.address == Notification.address,
                        # "3120 00 000[I...]" ends "1120 00 000[X...]..."
                        func.substr(_restore.body, 1, arc.EVENT_LENGTH)
                        == literal(dc09.RESTORE)
                        + func.substr(Notification.body, 2, arc.EVENT_LENGTH - 1),
                    )
                ),
            )
            .distinct()
            .limit(limit)
        )
    )


def queue(db: Session, alert_id: int, node: str) -> list[Outgoing]:
    """If the alert is closed, queue (claimed by this node) a restore for each event a
    centre took and has not had one for. The alert's lock orders two replicas: the second
    finds the first's restores."""
    alert = alerts.get(db, alert_id, for_update=True)
    if rules.is_open(alert):
        return []
    rows = db.scalars(
        select(Notification)
        .where(Notification.alert_id == alert_id, Notification.channel == Arc.name)
        .order_by(Notification.id)
    ).all()
    sent = {(n.address, n.body[: arc.EVENT_LENGTH]) for n in rows if n.step_id is None}
    if alert.state == AlertState.CANCELLED.value:
        why = f"Vigil alert #{alert.id} cancelled by the worker (PIN)"
    else:
        why = f"Vigil alert #{alert.id} resolved: {alert.outcome or 'no outcome given'}"
    now = utcnow()
    made: list[Notification] = []
    for n in rows:
        body = arc.restore_of(n.body, why) if n.step_id is not None else None
        if (
            n.status != NotificationStatus.DELIVERED.value
            or body is None
            or (n.address, body[: arc.EVENT_LENGTH]) in sent
        ):
            continue
        sent.add((n.address, body[: arc.EVENT_LENGTH]))
        made.append(
            claimed(
                alert_id=alert.id,
                step_id=None,
                channel=Arc.name,
                recipient=n.recipient,
                recipient_kind=n.recipient_kind,
                address=n.address,
                body=body,
                node=node,
                now=now,
            )
        )
    if not made:
        return []
    db.add_all(made)
    db.flush()
    for n in made:
        note(
            db,
            alert,
            EntryKind.NOTIFICATION,
            f"{describe(n)}: restore of event {n.body[1:4]} queued, the alert is {alert.state}",
            notification=n.id,
            channel=n.channel,
        )
    return [outgoing(n) for n in made]
