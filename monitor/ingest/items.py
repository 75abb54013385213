"""What the MQTT thread hands to the workers (a parsed or refused message and how to ack
it), and the base of the two workers."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor import failures, metrics
from monitor.config import Settings
from monitor.db import Store, Turn, utcnow
from monitor.ingest.refusals import Refused
from monitor.protocol import SCHEMAS, URGENT, Parsed, Refusal, parse, ref_id_of

log = logging.getLogger(__name__)


class Message(Protocol):
    """A device message as the workers take it, however it came: from the broker
    (`link.Incoming`) or handed over by a gateway (`runner.Handed`). `ack` is called once it
    is stored or refused, never before; `refused` first if it was refused."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...

    def ack(self) -> None: ...

    def refused(self, refusal: Refusal) -> None:
        """Told, before `ack`, when the message is refused rather than stored."""


@dataclass(frozen=True)
class Item:
    incoming: Message
    received_at: datetime
    parsed: Parsed | None = None
    refused: Refused | None = None

    def ack(self) -> None:
        self.incoming.ack()

    @property
    def suffix(self) -> str:
        if self.parsed is not None:
            return self.parsed.suffix
        assert self.refused is not None
        return self.refused.refusal.suffix or ""

    def refuse(self, code: str, reason: str) -> Refused:
        """A refusal of this (well-formed) message for a reason found while applying it."""
        assert self.parsed is not None
        p = self.parsed
        return Refused(
            Refusal(code, reason, p.device_id, p.suffix, ref_id_of(p.msg)),
            self.incoming.topic,
            self.incoming.payload,
            self.received_at,
        )


# A label per known message type only: topics are device input. The children are looked up
# once: `labels()` per message cost as much as parsing it.
_COUNTED = {suffix: metrics.MESSAGES.labels(suffix) for suffix in SCHEMAS}
_OTHER = metrics.MESSAGES.labels("other")


def count(items: list[Item]) -> None:
    """Count messages received, a batch at a time: an increment takes a lock, and per message
    on paho's thread it was a tenth of the service's CPU under location load."""
    tally: dict[str, int] = {}
    for item in items:
        suffix = item.suffix
        tally[suffix] = tally.get(suffix, 0) + 1
    for suffix, n in tally.items():
        _COUNTED.get(suffix, _OTHER).inc(n)


def item_of(incoming: Message, settings: Settings) -> tuple[Item, bool]:
    """Parse a message once, on paho's network thread: the item, and whether it goes on the
    urgent path. A refusal goes to the worker of the path it came on, so that path's
    acknowledgement covers it."""
    now = utcnow()
    result = parse(incoming.topic, incoming.payload, settings.max_payload_bytes)
    if isinstance(result, Parsed):
        item = Item(incoming, now, parsed=result)
    else:
        item = Item(incoming, now, refused=Refused(result, incoming.topic, incoming.payload, now))
    return item, result.suffix in URGENT


def device_refusal(item: Item, enabled: bool | None) -> Refused | None:
    """Refuse a well-formed message from a device that is unknown (`enabled` is None) or
    disabled."""
    assert item.parsed is not None
    if enabled:
        return None
    code, why = (
        ("unknown_device", "unknown device")
        if enabled is None
        else ("disabled_device", "device is disabled")
    )
    return item.refuse(code, why)


# Sends a command straight to a device: (device id, command type, fields).
SendReply = Callable[..., None]
T = TypeVar("T")


class Refuse(Exception):
    """Refuse the message being applied: its transaction is rolled back, so it changes
    nothing, and the refusal is recorded with the next batch."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.refusal.reason)
        self.refused = refused


class Stopping(Exception):
    """The worker is stopping while the store is unavailable: leave the message
    unacknowledged, and the broker delivers it again."""


class ItemWorker(threading.Thread):
    """A thread that takes items handed to it (`put`, on the MQTT thread) and stores their
    effects. Each worker keeps its own queue: the telemetry writer a plain one it batches
    from, the urgent worker a line per device, the PIN checker a plain one."""

    path = "ingest"
    turn = Turn.NORMAL  # who its writes go before on SQLite (Store.begin)

    def __init__(self, name: str, store: Store, settings: Settings) -> None:
        super().__init__(name=name, daemon=True)
        self.store = store
        self.settings = settings
        self.send_reply: SendReply = lambda *args, **kwargs: None
        self._stop_flag = threading.Event()

    def put(self, item: Item) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop_flag.set()

    def retrying(self, work: Callable[[Session], T], *, read_only: bool = False) -> T:
        """Run `work` in a transaction, waiting out passing store failures; a lasting one is
        raised. A unique-key clash is tried again at once, twice: another replica stored the
        same thing a moment ago, and the next run finds it."""
        delay = 0.1
        races = 0
        while True:
            try:
                if read_only:
                    with self.store.session() as db:
                        result = work(db)
                    self.store.health.store_ok()  # no commit to clear this thread's failure
                    return result
                with self.store.begin(turn=self.turn) as db:
                    return work(db)
            except Refuse:
                raise  # a refusal, not a store failure
            except IntegrityError:
                races += 1
                if races > 2:
                    raise
            except Exception as err:
                metrics.STORE_ERRORS.labels(self.path).inc()
                self.store.health.store_failed(err)  # readiness (/readyz) until this thread commits
                if not failures.is_transient(err):
                    raise
                log.warning("store unavailable (%s); retrying", err)
                if self._stop_flag.wait(delay):
                    raise Stopping from err
                delay = min(delay * 2, 5.0)
