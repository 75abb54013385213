"""Alert service functions: every change to an alert, from MQTT or the API, goes through here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from monitor.alerts import chain, rules
from monitor.alerts.labels import OUTCOME_LABELS, TRIGGER_LABELS, TYPE_LABELS, plural
from monitor.alerts.models import (
    Alert,
    AlertEvent,
    AlertEventOut,
    AlertOut,
    TrailPoint,
)
from monitor.alerts.states import (
    EFFECTS,
    AlertState,
    AlertType,
    Outcome,
    check_transition,
    priority,
)
from monitor.db import utcnow
from monitor.devices.commands import queue_command
from monitor.devices.models import Device, LocationFix
from monitor.events import AlertChanged, Kind, emit
from monitor.orgs.models import Team, Worker
from monitor.orgs.scope import Scope
from monitor.protocol import AlertMsg, Loc


class AlertNotFound(Exception):
    pass


def record(db: Session, alert: Alert, kind: str, actor: str, text: str = "", **data: Any) -> None:
    """Add an entry to the end of the alert's timeline (entries are never edited)."""
    entry = AlertEvent(alert_id=alert.id, at=utcnow(), kind=kind, actor=actor, text=text, data=data)
    chain.append(db, alert, entry)


def to_out(db: Session, alert: Alert) -> AlertOut:
    return to_out_many(db, [alert])[0]


# Workers looked up at a time: an export's thousands of alerts would otherwise make one IN
# list longer than SQLite takes.
NAMES_BATCH = 1000


def to_out_many(db: Session, alerts: Sequence[Alert]) -> list[AlertOut]:
    """Alerts as the API shows them, with worker names and teams in a query for a thousand."""
    worker_ids = sorted({a.worker_id for a in alerts if a.worker_id is not None})
    names: dict[int, tuple[str, int | None, str | None]] = {}
    for start in range(0, len(worker_ids), NAMES_BATCH):
        for worker_id, name, team_id, team in db.execute(
            select(Worker.id, Worker.name, Worker.team_id, Team.name)
            .outerjoin(Team, Team.id == Worker.team_id)
            .where(Worker.id.in_(worker_ids[start : start + NAMES_BATCH]))
        ):
            names[worker_id] = (name, team_id, team)
    out = []
    for alert in alerts:
        row = AlertOut.model_validate(alert)
        if alert.worker_id in names:
            row.worker_name, row.team_id, row.team = names[alert.worker_id]
        out.append(row)
    return out


def timeline_of(db: Session, alert_id: int) -> list[AlertEventOut]:
    rows = db.scalars(
        select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.seq)
    )
    return [AlertEventOut.model_validate(r) for r in rows]


TRAIL_BEFORE = timedelta(minutes=15)
TRAIL_POINTS = 500


def trail_of(db: Session, alert: Alert, newest: int | None = TRAIL_POINTS) -> list[TrailPoint]:
    """The incident's positions, oldest first: the device's fixes from TRAIL_BEFORE before
    it was raised until it closed (or now); only the `newest` so many, where the worker is
    now mattering most, or every one (None)."""
    closed = alert.resolved_at or alert.cancelled_at
    q = (
        select(LocationFix)
        .where(
            LocationFix.device_id == alert.device_id,
            LocationFix.device_ts >= alert.raised_at - TRAIL_BEFORE,
            # Where the worker went after the incident is none of its business.
            LocationFix.device_ts <= closed if closed is not None else true(),
        )
        .order_by(LocationFix.device_ts.desc())
    )
    if newest is not None:
        q = q.limit(newest)
    return [TrailPoint.model_validate(f) for f in reversed(db.scalars(q).all())]


def _seal_positions(db: Session, alert: Alert) -> None:
    """Write the incident's positions into its timeline as it closes, so the hash chain
    covers where the worker was as well as what was done."""
    points = trail_of(db, alert, newest=None)
    if points:
        first, last = points[0].device_ts, points[-1].device_ts
        text = f"{plural(len(points), 'position')} from {first:%H:%M:%S} to {last:%H:%M:%S} UTC"
        fixes = [p.model_dump(mode="json") for p in points]
        record(db, alert, "positions", "system", text, fixes=fixes)


def announce(db: Session, kind: Kind, alert: Alert, **extra: Any) -> None:
    """Announce that `alert` changed, as it now is, once the transaction commits."""
    db.flush()
    alert_json = to_out(db, alert).model_dump(mode="json")
    emit(db, AlertChanged(kind=kind, alert=alert_json, extra=extra))


def _tell_device(db: Session, alert: Alert, type_: str) -> None:
    # After a duress PIN the device must go on believing the alert was cancelled: it is told
    # nothing more about this alert, whatever happens to it.
    if not rules.may_tell_device(alert) or alert.device_alert_id is None:
        return
    queue_command(db, alert.device_id, type_, alert_id=alert.device_alert_id)


def transition(
    db: Session,
    alert: Alert,
    to: AlertState,
    *,
    actor: str,
    text: str,
    columns: dict[str, Any] | None = None,
    **data: Any,
) -> None:
    """Move `alert` to `to` with everything that change brings (states.EFFECTS), setting
    `columns` too once it is legal: the one way an alert's state changes, whoever asks.
    `data` goes into the timeline entry."""
    check_transition(alert.state_enum, to, duress=rules.under_duress(alert))
    effects = EFFECTS[to]
    alert.state = to.value
    if effects.at is not None:
        setattr(alert, effects.at, utcnow())
    if effects.by is not None:
        setattr(alert, effects.by, actor)
    for name, value in (columns or {}).items():
        setattr(alert, name, value)
    if effects.seal_positions:
        _seal_positions(db, alert)
    record(db, alert, effects.entry, actor, text, **data)
    if effects.device_command is not None:
        _tell_device(db, alert, effects.device_command)
    announce(db, effects.event, alert)


def _ask_position(db: Session, alert: Alert) -> None:
    """Ask the device for a fresh fix (it answers with a `location`). Never under duress:
    the device must see nothing unusual."""
    if rules.may_tell_device(alert):
        queue_command(db, alert.device_id, "locate")


def get(db: Session, alert_id: int, *, for_update: bool = False) -> Alert:
    alert = db.get(Alert, alert_id, with_for_update=for_update)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id}")
    if for_update:
        chain.held(db, alert)
    return alert


def in_scope(db: Session, alert_id: int, scope: Scope) -> bool:
    """Whether the alert exists within `scope` (for the whole service: whether it exists,
    or not even that is looked up)."""
    if scope.service_wide:
        return True
    found = db.scalar(
        select(Alert.id).where(Alert.id == alert_id, scope.covers(Alert.worker_id, Alert.org_id))
    )
    return found is not None


def check_in_scope(db: Session, alert_id: int, scope: Scope) -> None:
    """Raise AlertNotFound for an alert outside `scope`: to a person who may not see it,
    an alert of another organisation does not exist (a 403 would confirm that it does)."""
    if not in_scope(db, alert_id, scope):
        raise AlertNotFound(f"no alert {alert_id}")


def find_device_alert(
    db: Session, device_id: str, device_alert_id: str, *, for_update: bool = False
) -> Alert | None:
    q = select(Alert).where(Alert.device_id == device_id, Alert.device_alert_id == device_alert_id)
    if not for_update:
        return db.scalar(q)
    alert = db.scalar(q.with_for_update())
    if alert is not None:
        chain.held(db, alert)
    return alert


def _place(alert: Alert, loc: Loc | None) -> None:
    if loc is not None:
        alert.lat, alert.lon, alert.acc = loc.lat, loc.lon, loc.acc
        alert.loc = loc.model_dump(exclude_none=True)


def raise_from_device(
    db: Session, *, device: Device, msg: AlertMsg, received_at: datetime
) -> tuple[Alert, bool]:
    """Store a device's alert; (alert, False) when this (device, id) is already stored."""
    existing = find_device_alert(db, device.id, msg.id)
    if existing is not None:
        return existing, False  # a resent copy: nothing more to look up
    org_id = (
        db.scalar(select(Worker.org_id).where(Worker.id == device.worker_id))
        if device.worker_id is not None
        else None
    )
    kind = AlertType(msg.type)
    alert = Alert(
        org_id=org_id,
        worker_id=device.worker_id,
        device_id=device.id,
        device_alert_id=msg.id,
        type=kind.value,
        trigger=msg.trigger,
        priority=priority(kind, False),
        note=msg.note,
        device_ts=msg.at,
        raised_at=received_at,
        battery=msg.batt,
    )
    _place(alert, msg.loc)
    db.add(alert)
    db.flush()
    chain.begin(db, alert)
    record(
        db,
        alert,
        "raised",
        f"device:{device.id}",
        # In words: the text is the record people read (the kind is kept as the alert's type).
        f"{TYPE_LABELS[kind]} alert raised"
        + (f" ({TRIGGER_LABELS.get(msg.trigger, msg.trigger)})" if msg.trigger else ""),
        device_ts=msg.at.isoformat(),
        received_at=received_at.isoformat(),
        loc=alert.loc,
        battery=msg.batt,
    )
    announce(db, Kind.ALERT_RAISED, alert)
    if msg.loc is None:
        _ask_position(db, alert)
    return alert, True


def raise_by_service(
    db: Session,
    *,
    device: Device,
    org_id: int | None,
    kind: AlertType,
    text: str,
    visit_id: int | None = None,
    note: str | None = None,
    duress: bool = False,
    lat: float | None = None,
    lon: float | None = None,
    acc: float | None = None,
    **data: Any,
) -> Alert:
    """An alert the service raises itself: an overdue visit, a silent device, a duress end."""
    now = utcnow()
    alert = Alert(
        org_id=org_id,
        worker_id=device.worker_id,
        device_id=device.id,
        device_alert_id=None,
        type=kind.value,
        priority=priority(kind, duress),
        duress=duress,
        note=note,
        raised_at=now,
        visit_id=visit_id,
        lat=lat,
        lon=lon,
        acc=acc,
        battery=device.battery,
    )
    db.add(alert)
    db.flush()
    chain.begin(db, alert)
    record(db, alert, "raised", "system", text, **data)
    announce(db, Kind.ALERT_RAISED, alert)
    _ask_position(db, alert)
    return alert


def cancel_from_device(
    db: Session, alert: Alert, device: Device, pin_kind: str | None, actor: str
) -> str:
    """Apply a cancel message whose PIN checked out as `pin_kind` ("cancel", "duress" or None).

    Returns the command type the device gets: `alert_cancelled` or `cancel_rejected`. The
    duress PIN is answered exactly as the cancel PIN is, whatever state the alert is in.
    """
    if pin_kind is None:
        record(db, alert, "cancel_rejected", actor, "Cancel refused: wrong PIN")
        announce(db, Kind.ALERT_UPDATED, alert)
        return "cancel_rejected"
    if pin_kind == "duress":
        if not rules.under_duress(alert):
            alert.duress = True
            alert.priority = priority(alert.type_enum, True)
            record(db, alert, "duress", actor, "Cancelled with the DURESS PIN: worker under threat")
            if alert.state == AlertState.ACKNOWLEDGED.value:
                _raise_again(db, alert, actor)
            else:
                announce(db, Kind.ALERT_DURESS, alert)
        if not rules.is_open(alert) and not active_duress(db, device.id):
            # The alert had ended, yet a person keys the duress PIN: they are under threat
            # now, so a new duress alert goes to the top of the queue. (A resent copy of the
            # same message finds that alert active and raises no second one.)
            raise_by_service(
                db,
                device=device,
                org_id=alert.org_id,
                kind=AlertType.DURESS,
                duress=True,
                text=f"Duress PIN keyed to cancel closed alert #{alert.id}",
                lat=alert.lat,
                lon=alert.lon,
                acc=alert.acc,
                earlier_alert=alert.id,
            )
        return "alert_cancelled"
    # The real cancel PIN.
    if rules.under_duress(alert):
        # Under duress the worker may be made to cancel again; it changes nothing.
        record(db, alert, "cancel_after_duress", actor, "Cancel PIN after duress: ignored")
    elif rules.is_open(alert):
        text = "Cancelled by the worker with the cancel PIN"
        transition(db, alert, AlertState.CANCELLED, actor=actor, text=text)
    # An alert that is already over is answered as cancelled too: the device only needs to
    # know the alert is over, and a different answer here would set duress apart.
    return "alert_cancelled"


def _raise_again(db: Session, alert: Alert, actor: str) -> None:
    """A duress on an alert someone had taken: whoever took it was dealing with something
    else, so it is unanswered again, and flashes and sounds on every console until a person
    takes charge of the duress. Who had taken it stays in the timeline, not on the row (the
    columns say what holds now)."""
    taken_by = alert.acknowledged_by
    who = (taken_by or "someone").removeprefix("user:")
    transition(
        db,
        alert,
        AlertState.RAISED,
        actor=actor,
        text=f"Raised again: the duress PIN came after {who} took charge; take charge again",
        columns={"acknowledged_at": None, "acknowledged_by": None},
        taken_by=taken_by,
    )


def active_duress(db: Session, device_id: str) -> bool:
    """Whether this device has an open alert raised or cancelled under duress."""
    return (
        db.scalar(
            select(Alert.id).where(Alert.device_id == device_id, rules.open_under_duress_sql())
        )
        is not None
    )


def acknowledge(db: Session, alert_id: int, *, actor: str, via: str = "console") -> Alert:
    alert = get(db, alert_id, for_update=True)
    text = f"Taken charge of ({via})"
    transition(db, alert, AlertState.ACKNOWLEDGED, actor=actor, text=text, via=via)
    return alert


def add_note(db: Session, alert_id: int, *, actor: str, text: str) -> Alert:
    alert = get(db, alert_id, for_update=True)
    record(db, alert, "note", actor, text)
    announce(db, Kind.ALERT_NOTE, alert, text=text, actor=actor)
    return alert


class HeldByAnother(Exception):
    """Resolving an alert that another person has taken charge of, without saying that the
    resolver takes it over from them: they may be on the phone to the worker right now."""


def resolve(
    db: Session,
    alert_id: int,
    *,
    actor: str,
    outcome: Outcome,
    note: str | None = None,
    take_over: bool = False,
    before_close: Callable[[Alert], None] | None = None,
) -> Alert:
    """Close the alert with its outcome. One someone else holds only with `take_over`, which
    the timeline records first. `before_close` runs next, on the locked alert, before it is
    closed: what the caller's own rules check or record (the resolve route's procedure), in
    the timeline after the take-over and before the resolve, or refused by raising."""
    alert = get(db, alert_id, for_update=True)
    holder = rules.holder_other_than(alert, actor)
    if holder is not None:
        if not take_over:
            raise HeldByAnother(
                f"{holder} has taken charge of this alert: to resolve it, take it over"
                " from them (take_over)"
            )
        record(
            db, alert, "taken_over", actor, f"Taken over from {holder} to resolve", holder=holder
        )
    if before_close is not None:
        before_close(alert)
    text = f"Resolved: {OUTCOME_LABELS[outcome]}" + (f". {note}" if note else "")
    transition(
        db,
        alert,
        AlertState.RESOLVED,
        actor=actor,
        text=text,
        columns={"outcome": outcome.value},
        outcome=outcome.value,
    )
    return alert


@dataclass
class Alerting:
    """A device's active alerts, with what decides who may hear of them (the console's
    scopes): the organisation and the worker's team."""

    alert_ids: list[int]
    org_id: int | None
    team_id: int | None


def active_for_devices(db: Session, device_ids: list[str]) -> dict[str, Alerting]:
    """The active alerts of each of these devices that has any."""
    if not device_ids:
        return {}
    # A telemetry batch asks for hundreds of devices, and few alerts are open at a time: the
    # open alerts' devices first (the state is indexed), then only those of the batch.
    open_on = set(db.scalars(select(Alert.device_id).where(rules.is_open_sql()).distinct()))
    device_ids = [d for d in device_ids if d in open_on]
    if not device_ids:
        return {}
    found: dict[str, Alerting] = {}
    for device_id, alert_id, org_id, team_id in db.execute(
        select(Alert.device_id, Alert.id, Alert.org_id, Worker.team_id)
        .outerjoin(Worker, Worker.id == Alert.worker_id)
        .where(Alert.device_id.in_(device_ids), rules.is_open_sql())
    ):
        found.setdefault(device_id, Alerting([], org_id, team_id)).alert_ids.append(alert_id)
    return found


def scope_keys(db: Session, alert: Alert) -> dict[str, int | None]:
    """What the console needs to tell who may hear of an event about `alert` that does not
    carry the whole alert."""
    worker = db.get(Worker, alert.worker_id) if alert.worker_id is not None else None
    return {"org_id": alert.org_id, "team_id": worker.team_id if worker else None}


def record_authorities(
    db: Session, alert_id: int, *, actor: str, service: str, reference: str
) -> Alert:
    """The operator called the emergency services (which, and their reference number)."""
    alert = get(db, alert_id, for_update=True)
    text = f"Authorities called: {service}" + (f", reference {reference}" if reference else "")
    record(db, alert, "authorities_called", actor, text, service=service, reference=reference)
    announce(db, Kind.ALERT_AUTHORITIES, alert, service=service, reference=reference)
    return alert
