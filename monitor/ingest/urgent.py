"""The urgent path: alerts, cancels, visits and evidence, one transaction per message.

It has a thread and an MQTT connection of its own, so an alert is committed, answered and
acknowledged without waiting for any location batch. Devices take turns (`FairQueue`), so a
device sending in a loop delays only its own messages; refusals are recorded a batch at a
time (`RefusalLog`) and PINs are checked on a thread of their own (`PinChecker`).
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from monitor import failures, metrics
from monitor.alerts import service as alerts
from monitor.config import Settings
from monitor.db import Store, utcnow
from monitor.devices import service as devices
from monitor.devices.commands import queue_command
from monitor.devices.models import Device, LocationFix
from monitor.evidence import service as evidence
from monitor.evidence import storage
from monitor.ingest import refusals, waiting
from monitor.ingest.fair import FairQueue
from monitor.ingest.items import Item, ItemWorker, Refuse, Stopping, count, device_refusal
from monitor.ingest.pins import (
    WRONG_PIN_LIMIT,
    WRONG_PIN_WINDOW,
    PinCheck,
    PinChecker,
    needs_check,
    wrong_pins,
)
from monitor.ingest.pins import check as check_pins
from monitor.orgs.models import Worker
from monitor.orgs.service import check_pin
from monitor.protocol import AlertMsg, CancelMsg, EvidenceMsg, VisitMsg
from monitor.visits import service as visits

log = logging.getLogger(__name__)

# (device id, command type, fields) sent straight after commit.
Direct = tuple[str, str, dict[str, Any]]
# A message waiting its turn, with its PIN's check once that is done.
Queued = tuple[Item, PinCheck | None]

# Refusals noted on the urgent path are recorded once no message has come for a moment, and
# each second while messages keep coming.
REFUSALS_QUIET_S = 0.05
# Copies of one waiting alert answered when it is stored, at most: the device needs one.
MAX_COPIES_ANSWERED = 1000
REFUSALS_EVERY_S = 1.0


def device_key(item: Item) -> str:
    """Whose turn a message waits for: its device, or one shared line for topics that name
    no device."""
    if item.parsed is not None:
        return item.parsed.device_id
    assert item.refused is not None
    return item.refused.refusal.device_id or ""


def alert_key(item: Item) -> tuple[str, str] | None:
    if item.parsed is not None and isinstance(item.parsed.msg, AlertMsg):
        return item.parsed.device_id, item.parsed.msg.id
    return None


class UrgentWorker(ItemWorker):
    path = "urgent"

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__("vigil-urgent", store, settings)
        self.evidence_store = storage.from_settings(settings)
        self.lines: FairQueue[Queued] = FairQueue(settings.urgent_per_device)
        self.refusals = refusals.RefusalLog()
        self.pins = PinChecker(store, settings, self._checked)
        self._handling = 0
        self._recorded_at = time.monotonic()
        # (device, alert id) of each alert waiting in a line -> copies that came meanwhile.
        self._copies: dict[tuple[str, str], int] = {}
        self._copies_lock = threading.Lock()

    def put(self, item: Item) -> None:
        """Called on the MQTT thread: queue the message in its device's line. A copy of an
        alert already waiting there is acknowledged at once and only counted, to be answered
        with it: a device resending one alert fast takes no place in the line and none of
        the broker's in-flight window (the alert itself stays unacknowledged until stored)."""
        alert = alert_key(item)
        if alert is not None:
            with self._copies_lock:
                if alert in self._copies:
                    self._copies[alert] += 1
                    count([item])
                    item.ack()
                    return
                self._copies[alert] = 0
        if not self.lines.put(device_key(item), (item, None)):
            self._take_copies(item)  # acknowledged already; the device resends unanswered ones
            self._overloaded(item)

    def _take_copies(self, item: Item) -> int:
        """How many copies came while this alert waited; later ones queue as usual."""
        alert = alert_key(item)
        if alert is None:
            return 0
        with self._copies_lock:
            return min(self._copies.pop(alert, 0), MAX_COPIES_ANSWERED)

    def depth(self) -> int:
        """Messages taken from the broker and not yet stored or refused."""
        return len(self.lines) + self._handling

    def start(self) -> None:
        self.pins.start()
        super().start()

    def stop(self) -> None:
        self.pins.stop()
        super().stop()

    def run(self) -> None:
        while not self._stop_flag.is_set():
            # Refusals noted are recorded after a short quiet spell, or each second.
            got = self.lines.get(timeout=REFUSALS_QUIET_S if self.refusals else 0.2)
            if got is not None:
                key, (item, pin) = got
                if pin is None:
                    count([item])
                self._handling = 1
                try:
                    self.handle(key, item, pin)
                finally:
                    self._handling = 0
            due = time.monotonic() - self._recorded_at >= REFUSALS_EVERY_S
            if self.refusals and (got is None or due):
                self._record_refusals()

    def handle(self, key: str, item: Item, pin: PinCheck | None) -> None:
        if pin is None and needs_check(item):
            self.pins.put(item)  # the device's turn ends when its check is back (`_checked`)
            return
        try:
            self._handle(item, pin)
        finally:
            self.lines.done(key)

    def _checked(self, item: Item, pin: PinCheck) -> None:
        """Called on the PIN thread: the message goes first in its device's line."""
        self.lines.put_first(device_key(item), (item, pin))

    def _handle(self, item: Item, pin: PinCheck | None) -> None:
        if item.refused is not None:
            self._note(item.refused)
            item.ack()
            return
        try:
            try:
                direct = self.retrying(partial(self._apply, item=item, pin=pin))
            except (Stopping, Refuse):
                raise
            except Exception as err:
                direct = self._permanent_failure(item, err)
        except Stopping:
            self._take_copies(item)
            return  # not acknowledged: the broker delivers it again
        except Refuse as refuse:
            direct = []
            self._note(refuse.refused)
        copies = self._take_copies(item)
        for device_id, type_, fields in direct * (1 + copies):
            self.send_reply(device_id, type_, **fields)
        item.ack()
        if item.parsed is not None and item.parsed.suffix == "alert":
            metrics.ALERT_INGEST.observe((utcnow() - item.received_at).total_seconds())

    def _note(self, refused: refusals.Refused) -> None:
        answer = self.refusals.add(refused)
        if answer is not None:
            self.send_reply(answer[0], "rejected", **answer[1])

    def _record_refusals(self) -> None:
        taken = self.refusals.take()
        self._recorded_at = time.monotonic()
        try:
            self.retrying(partial(refusals.record_many, taken=taken))
        except Stopping:
            pass  # the refused messages are acknowledged; only their record is lost
        except Exception:
            log.exception("could not record %d refusals", len(taken))

    def _overloaded(self, item: Item) -> None:
        """A device with a full line: refused on the MQTT thread without touching the store,
        so a device sending in a loop costs others nothing."""
        most = self.settings.urgent_per_device
        reason = f"more than {most} messages from this device waiting; send it again later"
        self._note(item.refused or item.refuse("overloaded", reason))
        item.ack()

    def _apply(self, db: Session, item: Item, pin: PinCheck | None) -> list[Direct]:
        assert item.parsed is not None
        msg = item.parsed.msg
        pin_kind = pin.kind if pin is not None else None
        device = db.get(Device, item.parsed.device_id)
        refused = device_refusal(item, None if device is None else device.enabled)
        if refused is not None:
            raise Refuse(refused)
        assert device is not None
        devices.mark_seen(db, device, item.received_at)
        if isinstance(msg, AlertMsg):
            return self._alert(db, device, msg, item)
        if isinstance(msg, CancelMsg):
            return self._cancel(db, device, msg, pin, item)
        if isinstance(msg, VisitMsg):
            return self._visit(db, device, msg, item, pin_kind)
        if isinstance(msg, EvidenceMsg):
            return self._evidence(db, device, msg, item)
        raise AssertionError(f"not an urgent message: {item.parsed.suffix}")

    def _permanent_failure(self, item: Item, err: BaseException) -> list[Direct]:
        """A message that can never be stored as it is must not block the ones behind it."""
        log.error("message on %s cannot be stored", item.incoming.topic, exc_info=err)
        if item.parsed is not None and isinstance(item.parsed.msg, AlertMsg):
            try:
                return self.retrying(partial(self._bare_alert, item=item, err=err))
            except Stopping:
                raise
            except Exception:
                log.exception("even the bare alert on %s failed", item.incoming.topic)
        self._note(item.refused or item.refuse("store_failed", failures.describe(err)))
        return []

    def _bare_alert(self, db: Session, item: Item, err: BaseException) -> list[Direct]:
        """An alert is never dropped for a detail: keep what identifies it, and say so."""
        assert item.parsed is not None and isinstance(item.parsed.msg, AlertMsg)
        msg = item.parsed.msg
        device = db.get(Device, item.parsed.device_id)
        if device is None:
            raise LookupError(f"device {item.parsed.device_id} is gone")
        fresh = alerts.find_device_alert(db, device.id, msg.id) is None
        bare = msg.model_copy(update={"note": None, "loc": None, "trigger": None, "batt": None})
        direct = self._alert(db, device, bare, item)
        alert = alerts.find_device_alert(db, device.id, msg.id)
        if fresh and alert is not None:
            alerts.record(
                db,
                alert,
                "details_dropped",
                "system",
                f"Some details of this alert {failures.describe(err)}",
            )
        return direct

    def _refuse(self, db: Session, refused: refusals.Refused) -> list[Direct]:
        return [
            (device_id, "rejected", fields) for device_id, fields in refusals.refuse(db, refused)
        ]

    def _alert(self, db: Session, device: Device, msg: AlertMsg, item: Item) -> list[Direct]:
        alert, created = alerts.raise_from_device(
            db, device=device, msg=msg, received_at=item.received_at
        )
        if created:
            evidence.link_to_alert(db, alert)
            self._replay_cancels(db, device, msg.id)
            if msg.loc is not None:
                fix = devices.fix_row(
                    device.id, device.worker_id, msg.at, msg.loc, msg.batt, item.received_at
                )
                db.execute(insert(LocationFix), [fix])
                devices.note_fix(device, msg.at, msg.loc)
            if msg.batt is not None:
                device.battery = msg.batt
        # Every copy is answered: the device stops resending only when it hears this.
        return [(device.id, "alert_received", {"alert_id": msg.id})]

    def _cancel(
        self, db: Session, device: Device, msg: CancelMsg, pin: PinCheck | None, item: Item
    ) -> list[Direct]:
        # Locked, so an operator resolving it at this moment is seen, not overwritten.
        alert = alerts.find_device_alert(db, device.id, msg.alert_id, for_update=True)
        if alert is None:
            self._hold(db, item, msg.alert_id)
            return []
        if pin is None or not pin.checked:
            # Another replica stored the alert after the PIN thread looked for it.
            pin = check_pins(db, item)
        actor = f"device:{device.id}"
        if pin.locked:
            # Every PIN gets the same answer while the device is locked out, so a guesser
            # learns nothing; the duress PIN still raises the silent alarm.
            if pin.kind == "duress":
                alerts.cancel_from_device(db, alert, device, "duress", actor)
            answer = "cancel_rejected"
            minutes = int(WRONG_PIN_WINDOW.total_seconds() // 60)
            self._note(
                item.refuse(
                    "pin_locked",
                    f"{WRONG_PIN_LIMIT} wrong PINs within {minutes} minutes: cancels from "
                    "this device are refused for now",
                )
            )
        else:
            answer = alerts.cancel_from_device(db, alert, device, pin.kind, actor)
        queue_command(db, device.id, answer, alert_id=msg.alert_id)
        return []

    def _hold(self, db: Session, item: Item, ref_id: str) -> None:
        assert item.parsed is not None
        most = self.settings.waiting_per_device
        if waiting.count(db, item.parsed.device_id) >= most:
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
            db,
            device_id=item.parsed.device_id,
            suffix=item.parsed.suffix,
            ref_id=ref_id,
            topic=item.incoming.topic,
            payload=item.incoming.payload,
            received_at=item.received_at,
        )

    def _replay_cancels(self, db: Session, device: Device, alert_id: str) -> None:
        """Apply cancels that overtook this alert, now that it is stored."""
        held = waiting.take(db, device.id, "alert/cancel", alert_id)
        if not held:
            return
        alert = alerts.find_device_alert(db, device.id, alert_id, for_update=True)
        worker = db.get(Worker, device.worker_id) if device.worker_id is not None else None
        assert alert is not None
        # Checked here, in the alert's transaction, since a held cancel is rare; no more
        # than the device's wrong PINs left, so held cancels cannot hold up the path long.
        checks = WRONG_PIN_LIMIT - wrong_pins(db, device.id)
        for h in held:
            assert isinstance(h.parsed.msg, CancelMsg)
            pin_kind = None
            if worker is not None and checks > 0:
                checks -= 1
                pin_kind = check_pin(worker, h.parsed.msg.pin)
            answer = alerts.cancel_from_device(db, alert, device, pin_kind, f"device:{device.id}")
            queue_command(db, device.id, answer, alert_id=alert_id)

    def _replay_visit(self, db: Session, device: Device, visit_id: str, org_id: int | None) -> None:
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
                )
            except visits.VisitRefused as why:
                # Answered from the outbox: this transaction is the visit start's.
                refused = h.refused("visit_refused", str(why))
                for device_id, fields in refusals.refuse(db, refused):
                    queue_command(db, device_id, "rejected", **fields)

    def _visit(
        self, db: Session, device: Device, msg: VisitMsg, item: Item, pin_kind: str | None
    ) -> list[Direct]:
        org_id = devices.org_of(db, device)
        try:
            visits.handle(
                db,
                device=device,
                org_id=org_id,
                msg=msg,
                received_at=item.received_at,
                pin_kind=pin_kind,
            )
        except visits.VisitUnknown:
            self._hold(db, item, msg.id)
            return []
        except visits.VisitRefused as why:
            return self._refuse(db, item.refuse("visit_refused", str(why)))
        if msg.action == "start":
            evidence.link_to_visit(db, device.id, msg.id)
            self._replay_visit(db, device, msg.id, org_id)
        return []

    def _evidence(self, db: Session, device: Device, msg: EvidenceMsg, item: Item) -> list[Direct]:
        try:
            evidence.reference(db, device=device, msg=msg, received_at=item.received_at)
        except evidence.EvidenceRefused as why:
            if why.discard_upload:
                evidence.discard_upload(db, device.id, msg.id, self.evidence_store)
            refused = item.refuse("evidence_mismatch", str(why))
            return self._refuse(db, refused)
        return []
