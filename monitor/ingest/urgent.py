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

from monitor import failures, metrics
from monitor.config import Settings
from monitor.db import Store, Turn, utcnow
from monitor.evidence import storage
from monitor.ingest import refusals
from monitor.ingest.fair import FairQueue
from monitor.ingest.items import Item, ItemWorker, Refuse, Stopping, count
from monitor.ingest.pins import PinCheck, PinChecker, needs_check
from monitor.ingest.urgent_handlers import Context, Direct, apply, bare_alert
from monitor.protocol import AlertMsg

log = logging.getLogger(__name__)

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
    """One urgent message's way through, in order:

    1. `put`, on the MQTT thread: into its device's line (a copy of an alert already waiting
       there is acknowledged and counted instead; a full line is refused, `overloaded`);
    2. `run`: the devices' turns; between them, the refusals noted are recorded;
    3. `handle`: a message with a PIN goes to the PIN thread first, and comes back first in
       its device's line (`_checked`);
    4. `_handle`: applied and committed (`_commit`, with `urgent_handlers`), then the
       replies, then the acknowledgement to the broker.
    """

    path = "urgent"
    turn = Turn.URGENT

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__("vigil-urgent", store, settings)
        self.evidence_store = storage.from_settings(settings)
        self.lines: FairQueue[Queued] = FairQueue(settings.urgent_per_device)
        self.refusals = refusals.RefusalLog()
        self.ctx = Context(settings, self.evidence_store)
        self.pins = PinChecker(store, settings, self._checked)
        self._handling = 0
        self._recorded_at = time.monotonic()
        # (device, alert id) of each alert waiting in a line -> copies that came meanwhile.
        self._copies: dict[tuple[str, str], int] = {}
        self._copies_lock = threading.Lock()

    def put(self, item: Item, *, coalesce: bool = True) -> None:
        """Called on the MQTT thread: queue the message in its device's line. A copy of an
        alert already waiting there is acknowledged at once and only counted, to be answered
        with it: a device resending one alert fast takes no place in the line and none of
        the broker's in-flight window (the alert itself stays unacknowledged until stored).
        Not so with `coalesce` False (a gateway's message, `Ingest.submit`): its
        acknowledgement is the gateway's answer to a client that keeps nothing once
        answered, so a copy queues and is acknowledged only once handled itself."""
        alert = alert_key(item) if coalesce else None
        if alert is not None:
            with self._copies_lock:
                if alert in self._copies:
                    self._copies[alert] += 1
                    count([item])
                    item.ack()
                    return
                self._copies[alert] = 0
        if not self.lines.put(device_key(item), (item, None)):
            if alert is not None:
                self._take_copies(item)  # acknowledged already; the device resends them
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
        """One message in its turn, to its acknowledgement:

        1. refused when it was parsed: noted (recorded with the next batch), acknowledged;
        2. applied in one transaction (`_commit`): the device checked, then the handler its
           type names (`urgent_handlers.HANDLERS`), tried again while the store fails;
        3. its replies sent, once committed, and as often again as copies waited with it;
        4. acknowledged to the broker, only now: until then the broker keeps it for us.
        """
        if item.refused is not None:
            self._refuse(item, item.refused)
            item.ack()
            return
        try:
            direct = self._commit(item, pin)
        except Stopping:
            self._take_copies(item)
            return  # not acknowledged: the broker delivers it again
        copies = self._take_copies(item)
        for device_id, type_, fields in direct * (1 + copies):
            self.send_reply(device_id, type_, **fields)
        item.ack()
        if item.parsed is not None and item.parsed.suffix == "alert":
            metrics.ALERT_INGEST.observe((utcnow() - item.received_at).total_seconds())

    def _commit(self, item: Item, pin: PinCheck | None) -> list[Direct]:
        """The message applied and committed; the replies to send. Refused, it is noted and
        changes nothing; if it can never be stored as it is, it is refused, or, for an alert,
        stored bare. `Stopping` (the worker stops while the store is unavailable) leaves it
        unacknowledged."""
        noted: list[refusals.Refused] = []
        try:
            replies = self.retrying(partial(apply, item=item, pin=pin, ctx=self.ctx, noted=noted))
        except Stopping:
            raise
        except Refuse as refuse:
            self._refuse(item, refuse.refused)
            return []
        except Exception as err:
            return self._permanent_failure(item, err)
        for refused in noted:
            self._note(refused)
        return replies

    def _refuse(self, item: Item, refused: refusals.Refused) -> None:
        """`item` is refused, not stored: its sender is told (a gateway answers by it), and
        the refusal noted."""
        item.incoming.refused(refused.refusal)
        self._note(refused)

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
        self._refuse(item, item.refused or item.refuse("overloaded", reason))
        item.ack()

    def _permanent_failure(self, item: Item, err: BaseException) -> list[Direct]:
        """A message that can never be stored as it is must not block the ones behind it."""
        log.error("message on %s cannot be stored", item.incoming.topic, exc_info=err)
        if item.parsed is not None and isinstance(item.parsed.msg, AlertMsg):
            try:
                return self.retrying(partial(bare_alert, item=item, err=err, ctx=self.ctx))
            except Stopping:
                raise
            except Exception:
                log.exception("even the bare alert on %s failed", item.incoming.topic)
        self._refuse(item, item.refused or item.refuse("store_failed", failures.describe(err)))
        return []
