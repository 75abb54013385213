"""The SMS channel: a summary and a link, to a phone; a reply of 1 takes the alert."""

from __future__ import annotations

from escalation import summary
from escalation.channels.base import Addresses, Sending
from escalation.models import RecipientKind
from escalation.providers import Outgoing, Providers, Sent
from monitor.reads.alert_detail import AlertDetail


class Sms(Sending):
    name = "sms"
    word = "SMS"

    def address(self, to: Addresses) -> str:
        return to.phone

    def no_address(self, name: str) -> str:
        return f"contact {name!r} has no phone number for {self.name}"

    def body(self, alert: AlertDetail, kind: str, address: str, step: int, public_url: str) -> str:
        return summary.sms(alert, public_url, to_worker=kind == RecipientKind.WORKER.value)

    def send(self, n: Outgoing, providers: Providers) -> Sent:
        return providers.sms(n)
