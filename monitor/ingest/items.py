"""What the MQTT thread hands to the workers: a parsed or refused message and how to ack it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.ingest.link import Incoming
from monitor.ingest.messages import Parsed
from monitor.ingest.refusals import Refused


@dataclass(frozen=True)
class Item:
    incoming: Incoming
    received_at: datetime
    parsed: Parsed | None = None
    refused: Refused | None = None

    def ack(self) -> None:
        self.incoming.ack()
