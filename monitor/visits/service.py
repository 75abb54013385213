"""Visit service functions: the amber timer's start, extend, check-in, end, due and overdue,
and the visit's timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.alerts import rules
from monitor.alerts import service as alerts
from monitor.alerts.labels import moment
from monitor.alerts.models import Alert
from monitor.alerts.states import AlertType
from monitor.db import utcnow
from monitor.devices import service as devices
from monitor.devices.commands import queue_command
from monitor.devices.models import Device
from monitor.orgs.models import Organisation
from monitor.places import matching
from monitor.places import reads as place_reads
from monitor.protocol import VisitMsg
from monitor.visits.models import Visit, VisitEvent, VisitEventOut, VisitState


def _base_time(msg: VisitMsg, received_at: datetime) -> datetime:
    # Timers count from when the worker acted, so a start kept on the device while it had no
    # signal still ends on time; a device clock running ahead cannot push a deadline away.
    return min(msg.at, received_at)


def started_fields(db: Session, visit: Visit) -> dict[str, Any]:
    """What `visit_started` says of an open visit, first and when sent again: its deadline,
    and for a visit at a known place, the place and the cautions the worker is shown."""
    return {
        "visit_id": visit.device_visit_id,
        "due_ts": int(visit.due_at.timestamp() * 1000),
        **place_reads.visit_words(db, visit.place_id, visit.worker_id),
    }


def _started(db: Session, visit: Visit) -> None:
    queue_command(db, visit.device_id, "visit_started", **started_fields(db, visit))


def record(
    db: Session,
    visit: Visit,
    kind: str,
    actor: str,
    text: str,
    *,
    key: str | None = None,
    at: datetime | None = None,
    **data: Any,
) -> VisitEvent | None:
    """Add an entry to the visit's timeline; None if one with this `key` is there already
    (a resent report). A copy added by another replica at the same moment is refused by the
    unique constraint when the transaction commits."""
    if key is not None and db.scalar(
        select(VisitEvent.id).where(VisitEvent.visit_id == visit.id, VisitEvent.key == key)
    ):
        return None
    entry = VisitEvent(
        visit_id=visit.id, at=at or utcnow(), kind=kind, actor=actor, text=text, data=data, key=key
    )
    db.add(entry)
    db.flush()
    return entry


def timeline_of(db: Session, visit_id: int) -> list[VisitEventOut]:
    """The visit's timeline, in the order things happened."""
    rows = db.scalars(
        select(VisitEvent)
        .where(VisitEvent.visit_id == visit_id)
        .order_by(VisitEvent.at, VisitEvent.id)
    )
    return [VisitEventOut.model_validate(r) for r in rows]


_OPEN = select(Visit).where(Visit.state == VisitState.OPEN.value).order_by(Visit.id.desc())


def own_open_visit(db: Session, device_id: str) -> Visit | None:
    """The newest visit this device has open."""
    return db.scalar(_OPEN.where(Visit.device_id == device_id).limit(1))


def open_visit_of(db: Session, device: Device) -> Visit | None:
    """The visit the device's worker is on now: the device's own open visit, or else one
    their other device (the badge or app that runs the timer) has open; the newest."""
    own = own_open_visit(db, device.id)
    if own is not None or device.worker_id is None:
        return own
    return db.scalar(_OPEN.where(Visit.worker_id == device.worker_id).limit(1))


class VisitRefused(Exception):
    """The visit message cannot apply (unknown or ended visit); nothing was changed."""


class VisitUnknown(VisitRefused):
    """No such visit (yet): its start may still be on its way."""


def handle(
    db: Session,
    *,
    device: Device,
    org_id: int | None,
    msg: VisitMsg,
    received_at: datetime,
    pin_kind: str | None = None,
    place_match_m: float,
) -> None:
    """Apply a visit message. `pin_kind` is what `msg.pin` checked out as ("cancel", "duress"
    or None), worked out by the caller before the transaction: argon2 is slow on purpose.
    A visit starting is matched to a place (the one chosen, or the nearest within
    `place_match_m` metres), here on the visit's path, never on an alert's."""
    visit = db.scalar(
        select(Visit)
        .where(Visit.device_id == device.id, Visit.device_visit_id == msg.id)
        .with_for_update()
    )
    base = _base_time(msg, received_at)
    if msg.action == "start":
        if visit is not None:
            # A repeated start (a resent copy) answers as the first did.
            if visit.state == VisitState.OPEN.value:
                _started(db, visit)
            else:
                raise VisitRefused("this visit has already ended")
            return
        assert msg.duration_s is not None
        visit = Visit(
            device_id=device.id,
            device_visit_id=msg.id,
            worker_id=device.worker_id,
            org_id=org_id,
            note=msg.note,
            memo=msg.memo,
            started_at=base,
            duration_s=msg.duration_s,
            due_at=base + timedelta(seconds=msg.duration_s),
        )
        if msg.loc is not None:
            visit.lat, visit.lon, visit.acc = msg.loc.lat, msg.loc.lon, msg.loc.acc
        match = matching.for_visit(db, org_id, msg.place, visit.lat, visit.lon, place_match_m)
        if match is not None:
            visit.place_id, visit.place_match = match.place.id, match.by
        db.add(visit)
        db.flush()
        record(db, visit, "started", _actor(device), _minutes("Started", msg.duration_s), at=base)
        _started(db, visit)
        return

    if visit is None:
        raise VisitUnknown(f"unknown visit {msg.id}")
    if visit.state != VisitState.OPEN.value:
        if msg.action == "end":
            queue_command(db, device.id, "visit_ended", visit_id=visit.device_visit_id)
        else:
            raise VisitRefused("this visit has already ended")
        return
    if msg.loc is not None:
        visit.lat, visit.lon, visit.acc = msg.loc.lat, msg.loc.lon, msg.loc.acc
    if msg.note:
        visit.note = msg.note
    if msg.memo:
        visit.memo = msg.memo

    if msg.action in ("extend", "checkin"):
        if msg.action == "extend":
            assert msg.duration_s is not None
            visit.duration_s = msg.duration_s
        visit.due_at = base + timedelta(seconds=visit.duration_s)
        actor = _actor(device)
        if msg.action == "extend":
            record(db, visit, "extended", actor, _minutes("Extended", visit.duration_s), at=base)
        else:
            record(db, visit, "checked_in", actor, "Checked in: the timer starts again", at=base)
        # A new deadline earns a new `visit_due` and, if missed, a new overdue alert.
        visit.due_notified_at = None
        visit.overdue_alert_id = None
        _started(db, visit)
        return

    _end(db, device, visit, msg, pin_kind)


def _actor(device: Device) -> str:
    return f"device:{device.id}"


def _minutes(what: str, duration_s: int | None) -> str:
    return f"{what} for {round((duration_s or 0) / 60)} min"


def _end(db: Session, device: Device, visit: Visit, msg: VisitMsg, pin_kind: str | None) -> None:
    org = db.get(Organisation, visit.org_id) if visit.org_id is not None else None
    if msg.pin and pin_kind is None:
        # A wrong PIN is never taken as an end: it may be a mistyped duress PIN.
        queue_command(
            db, device.id, "visit_end_rejected", visit_id=visit.device_visit_id, reason="wrong PIN"
        )
        return
    if pin_kind is None and org is not None and org.require_visit_end_pin:
        queue_command(
            db,
            device.id,
            "visit_end_rejected",
            visit_id=visit.device_visit_id,
            reason="a PIN is required to end a visit",
        )
        return
    visit.state = VisitState.ENDED.value
    visit.ended_at = utcnow()
    visit.end_reason = "duress" if pin_kind == "duress" else "ended"
    # Operators only read this (the device is never told): the end reason says duress too.
    text = "Ended with the DURESS PIN" if pin_kind == "duress" else "Ended"
    record(db, visit, "ended", _actor(device), text)
    # The device is answered the same way in both cases: a duress end must look ordinary.
    queue_command(db, device.id, "visit_ended", visit_id=visit.device_visit_id)
    if pin_kind == "duress":
        alerts.raise_by_service(
            db,
            device=device,
            org_id=visit.org_id,
            kind=AlertType.DURESS,
            duress=True,
            text="Visit ended with the DURESS PIN: worker under threat",
            visit_id=visit.id,
            note=visit.note,
            lat=visit.lat,
            lon=visit.lon,
            acc=visit.acc,
            memo=visit.memo,
        )


def notify_due(db: Session, visit_id: int, now: datetime) -> bool:
    """Send `visit_due` once for a visit whose time is up (claimed by a conditional update)."""
    claimed = db.execute(
        update(Visit)
        .where(
            Visit.id == visit_id,
            Visit.state == VisitState.OPEN.value,
            Visit.due_notified_at.is_(None),
            Visit.due_at <= now,
        )
        .values(due_notified_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    visit = db.get(Visit, visit_id)
    assert visit is not None
    db.refresh(visit)
    record(db, visit, "due", "system", "Time is up: the device was told")
    queue_command(
        db,
        visit.device_id,
        "visit_due",
        visit_id=visit.device_visit_id,
        due_ts=int(visit.due_at.timestamp() * 1000),
    )
    return True


def raise_overdue(db: Session, visit_id: int, now: datetime, grace_s: int) -> bool:
    """Raise the `visit_overdue` alert once the grace period has passed too."""
    visit = db.get(Visit, visit_id, with_for_update=True)
    if (
        visit is None
        or visit.state != VisitState.OPEN.value
        or visit.overdue_alert_id is not None
        or visit.due_at + timedelta(seconds=grace_s) > now
    ):
        return False
    device = db.get(Device, visit.device_id)
    assert device is not None
    # The visit's last known position, or failing that the device's.
    lat, lon, acc = visit.lat, visit.lon, visit.acc
    if device.last_fix_at is not None and (lat is None or device.last_fix_at > visit.started_at):
        lat, lon, acc = device.last_lat, device.last_lon, device.last_acc
    alert = alerts.raise_by_service(
        db,
        device=device,
        org_id=visit.org_id,
        kind=AlertType.VISIT_OVERDUE,
        text=f"Visit overdue: due at {moment(visit.due_at)}, not ended or extended",
        visit_id=visit.id,
        note=visit.note,
        lat=lat,
        lon=lon,
        acc=acc,
        memo=visit.memo,
        due_at=visit.due_at.isoformat(),
    )
    visit.overdue_alert_id = alert.id
    record(db, visit, "overdue", "system", "Overdue: alert raised", alert_id=alert.id)
    return True


def device_offline(db: Session, device_id: str, reason: str, *, only_if_due: bool) -> bool:
    """Mark a device offline (devices.go_offline) and, if its worker is on an open visit,
    raise a `device_offline` alert: silence matters when nobody knows the worker is safe.
    True if this call marked it."""
    device = devices.go_offline(db, device_id, only_if_due=only_if_due)
    if device is None:
        return False
    visit = own_open_visit(db, device_id)
    if visit is None:
        return True
    already = db.scalar(
        select(Alert.id).where(
            Alert.device_id == device_id,
            Alert.type == AlertType.DEVICE_OFFLINE.value,
            rules.is_open_sql(),
        )
    )
    if already is None:
        alerts.raise_by_service(
            db,
            device=device,
            org_id=visit.org_id,
            kind=AlertType.DEVICE_OFFLINE,
            text=f"Device went offline during a visit ({reason})",
            visit_id=visit.id,
            note=visit.note,
            lat=device.last_lat,
            lon=device.last_lon,
            acc=device.last_acc,
            last_seen_at=device.last_seen_at.isoformat() if device.last_seen_at else None,
        )
    return True
