"""The console channel: a timeline entry only, as the alert is in every operator's queue."""

from __future__ import annotations

from collections.abc import Sequence

from escalation.channels.base import Addresses
from escalation.providers import Outgoing, Providers, Sent
from monitor.reads.alert_detail import AlertDetail


class Console:
    name = "console"
    word = "Console"
    sends = False
    for_tests = True

    def refuse_step(self, to: Sequence[str]) -> str | None:
        return "the console step notifies operators; no recipients" if to else None

    def refuse(self, name: str, contact: Addresses | None) -> str | None:
        return None  # any recipient at all is refused by refuse_step

    def address(self, to: Addresses) -> str:
        return ""

    # A console step queues no notification, so nothing ever asks it for these.

    def body(self, alert: AlertDetail, kind: str, address: str, step: int, public_url: str) -> str:
        raise TypeError("the console channel sends nothing")

    def send(self, n: Outgoing, providers: Providers) -> Sent:
        raise TypeError("the console channel sends nothing")
