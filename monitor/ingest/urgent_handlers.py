"""What each urgent message does in its transaction: one handler per message type, in one
table (`HANDLERS`), behind the checks every message passes (`apply`).

A handler returns the replies to send straight after commit. What it refuses is refused
one of two ways, for a reason:

- `Refuse`, raised: the message changes nothing. Its transaction is rolled back and the
  refusal goes to the worker's `RefusalLog`, recorded a batch at a time, so a device refused
  in a loop costs one transaction a second (unknown or disabled device, too many held).
- `refused_here`, returned: the refusal is recorded in the message's own transaction,
  because what came with it stands (the device was seen, a disowned upload is discarded),
  and the device hears `rejected` once both are committed (visit and evidence refusals).

A cancel under a PIN lockout is both applied and refused: it is answered `cancel_rejected`
(and the duress PIN still counts), and its `pin_locked` refusal goes to the `RefusalLog`
once the cancel is committed (`Applying.noted`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from monitor import failures
from monitor.alerts import service as alerts
from monitor.config import Settings
from monitor.devices import service as devices
from monitor.devices.commands import queue_command
from monitor.devices.models import Device, LocationFix
from monitor.evidence import service as evidence
from monitor.evidence.storage import EvidenceStore
from monitor.ingest import refusals, waiting
from monitor.ingest.items import Item, Refuse, device_refusal
from monitor.ingest.pins import WRONG_PIN_LIMIT, WRONG_PIN_WINDOW, PinCheck, wrong_pins
from monitor.ingest.pins import check as check_pins
from monitor.orgs.models import Worker
from monitor.orgs.service import check_pin
from monitor.protocol import (
    SCHEMAS,
    URGENT,
    AlertMsg,
    CancelMsg,
    DeviceMessage,
    EvidenceMsg,
    VisitMsg,
)
from monitor.visits import service as visits

log = logging.getLogger(__name__)

# (device id, command type, fields) sent straight after commit.
Direct = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class Context:
    """What the handlers use besides the message: the same for every message of a worker."""

    settings: Settings
    evidence_store: EvidenceStore


@dataclass(frozen=True)
class Applying:
    """An urgent message in its transaction: what its handler works with."""

    db: Session
    device: Device
    item: Item
    pin: PinCheck | None  # its PIN's check, done on the PIN thread, if it carries a PIN
    ctx: Context
    # Refusals of a message whose effects still commit (a cancel under a PIN lockout), for
    # the caller to note in its `RefusalLog` once they have: noted here, a failed commit
    # retried would count it twice, and its `rejected` would reach the device first.
    noted: list[refusals.Refused]


def apply(
    db: Session, item: Item, pin: PinCheck | None, ctx: Context, noted: list[refusals.Refused]
) -> list[Direct]:
    """The message's effects, in the caller's transaction: from a known, enabled device, by
    its type's handler; the device is marked seen. `noted` is cleared, then given the
    refusals to note after commit (`Applying.noted`)."""
    noted.clear()  # what an earlier try of this transaction noted was rolled back with it
    assert item.parsed is not None
    device = db.get(Device, item.parsed.device_id)
    refused = device_refusal(item, None if device is None else device.enabled)
    if refused is not None:
        raise Refuse(refused)
    assert device is not None
    msg = item.parsed.msg
    replies = HANDLERS[type(msg)](Applying(db, device, item, pin, ctx, noted), msg)
    # After the handler: the device's row is then written once at commit, with what the
    # handler changed on it (an alert's position and battery). Marked before, it was flushed
    # at the handler's first query and written again at commit.
    devices.mark_seen(db, device, item.received_at)
    return replies


def refused_here(a: Applying, code: str, reason: str) -> list[Direct]:
    """Refuse the message in its own transaction, which commits (see the module's
    docstring): the `rejected` reply, sent after commit."""
    refused = a.item.refuse(code, reason)
    return [(device_id, "rejected", fields) for device_id, fields in refusals.refuse(a.db, refused)]


def alert(a: Applying, msg: AlertMsg) -> list[Direct]:
    db, device = a.db, a.device
    stored, created = alerts.raise_from_device(
        db, device=device, msg=msg, received_at=a.item.received_at
    )
    if created:
        evidence.link_to_alert(db, stored)
        _replay_cancels(db, device, msg.id)
        if msg.loc is not None:
            fix = devices.fix_row(
                device.id, device.worker_id, msg.at, msg.loc, msg.batt, a.item.received_at
            )
            db.execute(insert(LocationFix), [dict(zip(devices.FIX_COLUMNS, fix, strict=True))])
            devices.note_fix(device, msg.at, msg.loc)
        if msg.batt is not None:
            device.battery = msg.batt
    # Every copy is answered: the device stops resending only when it hears this.
    return [(device.id, "alert_received", {"alert_id": msg.id})]


def bare_alert(db: Session, item: Item, err: BaseException, ctx: Context) -> list[Direct]:
    """An alert that cannot be stored as it came is never dropped for a detail: what
    identifies it is kept, and its timeline says so."""
    assert item.parsed is not None and isinstance(item.parsed.msg, AlertMsg)
    msg = item.parsed.msg
    device = db.get(Device, item.parsed.device_id)
    if device is None:
        raise LookupError(f"device {item.parsed.device_id} is gone")
    fresh = alerts.find_device_alert(db, device.id, msg.id) is None
    bare = msg.model_copy(update={"note": None, "loc": None, "trigger": None, "batt": None})
    direct = alert(Applying(db, device, item, None, ctx, []), bare)
    stored = alerts.find_device_alert(db, device.id, msg.id)
    if fresh and stored is not None:
        alerts.record(
            db,
            stored,
            "details_dropped",
            "system",
            f"Some details of this alert {failures.describe(err)}",
        )
    return direct


def cancel(a: Applying, msg: CancelMsg) -> list[Direct]:
    db, device, item = a.db, a.device, a.item
    # Locked, so an operator resolving it at this moment is seen, not overwritten.
    stored = alerts.find_device_alert(db, device.id, msg.alert_id, for_update=True)
    if stored is None:
        _hold(a, msg.alert_id)
        return []
    pin = a.pin
    if pin is None or not pin.checked:
        # Another replica stored the alert after the PIN thread looked for it.
        pin = check_pins(db, item)
    actor = f"device:{device.id}"
    if pin.locked:
        # Every PIN gets the same answer while the device is locked out, so a guesser
        # learns nothing; the duress PIN still raises the silent alarm.
        if pin.kind == "duress":
            alerts.cancel_from_device(db, stored, device, "duress", actor)
        answer = "cancel_rejected"
        minutes = int(WRONG_PIN_WINDOW.total_seconds() // 60)
        a.noted.append(
            item.refuse(
                "pin_locked",
                f"{WRONG_PIN_LIMIT} wrong PINs within {minutes} minutes: cancels from "
                "this device are refused for now",
            )
        )
    else:
        answer = alerts.cancel_from_device(db, stored, device, pin.kind, actor)
    queue_command(db, device.id, answer, alert_id=msg.alert_id)
    return []


def visit(a: Applying, msg: VisitMsg) -> list[Direct]:
    db, device = a.db, a.device
    org_id = devices.org_of(db, device)
    try:
        visits.handle(
            db,
            device=device,
            org_id=org_id,
            msg=msg,
            received_at=a.item.received_at,
            pin_kind=a.pin.kind if a.pin is not None else None,
            place_match_m=a.ctx.settings.place_match_m,
        )
    except visits.VisitUnknown:
        _hold(a, msg.id)
        return []
    except visits.VisitRefused as why:
        return refused_here(a, "visit_refused", str(why))
    if msg.action == "start":
        evidence.link_to_visit(db, device.id, msg.id)
        _replay_visit(db, device, msg.id, org_id, a.ctx.settings.place_match_m)
    return []


def evidence_ref(a: Applying, msg: EvidenceMsg) -> list[Direct]:
    try:
        evidence.reference(a.db, device=a.device, msg=msg, received_at=a.item.received_at)
    except evidence.EvidenceRefused as why:
        if why.discard_upload:
            evidence.discard_upload(a.db, a.device.id, msg.id, a.ctx.evidence_store)
        return refused_here(a, "evidence_mismatch", str(why))
    return []


# Each urgent message type and what it does; a handler gets the message as its type.
HANDLERS: dict[type[DeviceMessage], Callable[[Applying, Any], list[Direct]]] = {
    AlertMsg: alert,
    CancelMsg: cancel,
    VisitMsg: visit,
    EvidenceMsg: evidence_ref,
}
if set(HANDLERS) != {SCHEMAS[suffix] for suffix in URGENT}:
    raise RuntimeError("every urgent message type needs exactly one handler")


def _hold(a: Applying, ref_id: str) -> None:
    """Keep a message that came before the alert or visit it is about (`waiting`)."""
    item = a.item
    assert item.parsed is not None
    most = a.ctx.settings.waiting_per_device
    if waiting.count(a.db, item.parsed.device_id) >= most:
        raise Refuse(
            item.refuse(
                "too_many_waiting",
                f"{most} messages from this device already wait for alerts or visits "
                "it has not sent",
            )
        )
    log.info(
        "%s from %s came before %s; holding it",
        item.parsed.suffix,
        item.parsed.device_id,
        ref_id,
    )
    waiting.hold(
        a.db,
        device_id=item.parsed.device_id,
        suffix=item.parsed.suffix,
        ref_id=ref_id,
        topic=item.incoming.topic,
        payload=item.incoming.payload,
        received_at=item.received_at,
    )


def _replay_cancels(db: Session, device: Device, alert_id: str) -> None:
    """Apply cancels that overtook this alert, now that it is stored."""
    held = waiting.take(db, device.id, "alert/cancel", alert_id)
    if not held:
        return
    stored = alerts.find_device_alert(db, device.id, alert_id, for_update=True)
    worker = db.get(Worker, device.worker_id) if device.worker_id is not None else None
    assert stored is not None
    # Checked here, in the alert's transaction, since a held cancel is rare; no more
    # than the device's wrong PINs left, so held cancels cannot hold up the path long.
    checks = WRONG_PIN_LIMIT - wrong_pins(db, device.id)
    for h in held:
        assert isinstance(h.parsed.msg, CancelMsg)
        pin_kind = None
        if worker is not None and checks > 0:
            checks -= 1
            pin_kind = check_pin(worker, h.parsed.msg.pin)
        answer = alerts.cancel_from_device(db, stored, device, pin_kind, f"device:{device.id}")
        queue_command(db, device.id, answer, alert_id=alert_id)


def _replay_visit(
    db: Session, device: Device, visit_id: str, org_id: int | None, place_match_m: float
) -> None:
    """Apply check-ins, extensions and ends that overtook this visit's start."""
    worker = db.get(Worker, device.worker_id) if device.worker_id is not None else None
    for h in waiting.take(db, device.id, "visit", visit_id):
        assert isinstance(h.parsed.msg, VisitMsg)
        pin = h.parsed.msg.pin
        # Checked inside the transaction here: a held message is rare.
        pin_kind = check_pin(worker, pin) if (worker is not None and pin) else None
        try:
            visits.handle(
                db,
                device=device,
                org_id=org_id,
                msg=h.parsed.msg,
                received_at=h.received_at,
                pin_kind=pin_kind,
                place_match_m=place_match_m,
            )
        except visits.VisitRefused as why:
            # Answered from the outbox: this transaction is the visit start's.
            refused = h.refused("visit_refused", str(why))
            for device_id, fields in refusals.refuse(db, refused):
                queue_command(db, device_id, "rejected", **fields)
