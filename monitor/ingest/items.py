"""What the MQTT thread hands to the workers: a parsed or refused message and how to ack it."""

from __future__ import annotations

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
