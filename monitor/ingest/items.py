"""What the MQTT thread hands to the workers: a parsed or refused message and how to ack it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from monitor.ingest.link import Incoming
from monitor.ingest.messages import Parsed, Refusal, ref_id_of
from monitor.ingest.refusals import Refused


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


# Sends a command straight to a device: (device id, command type, fields).
SendReply = Callable[..., None]


class ItemWorker(threading.Thread):
    """A thread that takes items from its own queue until stopped."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.send_reply: SendReply = lambda *args, **kwargs: None
        self._q: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._stop_flag = threading.Event()

    def put(self, item: Item) -> None:
        self._q.put(item)

    def stop(self) -> None:
        self._stop_flag.set()
