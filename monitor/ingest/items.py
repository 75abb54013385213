"""What the MQTT thread hands to the workers (a parsed or refused message and how to ack
it), and the base of the two workers."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor import metrics
from monitor.config import Settings
from monitor.db import Store
from monitor.ingest import failures
from monitor.ingest.link import Incoming
from monitor.ingest.messages import Parsed, Refusal, ref_id_of
from monitor.ingest.refusals import Refused

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    incoming: Incoming
    received_at: datetime
    parsed: Parsed | None = None
    refused: Refused | None = None

    def ack(self) -> None:
        self.incoming.ack()

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


class Stopping(Exception):
    """The worker is stopping while the store is unavailable: leave the message
    unacknowledged, and the broker delivers it again."""


class ItemWorker(threading.Thread):
    """A thread that takes items from its own queue and stores their effects."""

    path = "ingest"

    def __init__(self, name: str, store: Store, settings: Settings) -> None:
        super().__init__(name=name, daemon=True)
        self.store = store
        self.settings = settings
        self.send_reply: SendReply = lambda *args, **kwargs: None
        self._q: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._stop_flag = threading.Event()

    def put(self, item: Item) -> None:
        self._q.put(item)

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
                        return work(db)
                with self.store.begin() as db:
                    return work(db)
            except IntegrityError:
                races += 1
                if races > 2:
                    raise
            except Exception as err:
                metrics.STORE_ERRORS.labels(self.path).inc()
                if not failures.is_transient(err):
                    raise
                log.warning("store unavailable (%s); retrying", err)
                if self._stop_flag.wait(delay):
                    raise Stopping from err
                delay = min(delay * 2, 5.0)
