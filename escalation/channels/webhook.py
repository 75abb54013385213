"""The webhook channel: the alert as signed JSON, POSTed to a contact's URL."""

from __future__ import annotations

from escalation import summary
from escalation.channels.base import Addresses, Sending
from escalation.providers import Outgoing, Providers, Sent
from monitor.reads.alert_detail import AlertDetail


class Webhook(Sending):
    name = "webhook"
    word = "Webhook"
    to_staff = False  # workers and backup staff have a phone, not a URL

    def address(self, to: Addresses) -> str:
        return to.webhook or ""

    def no_address(self, name: str) -> str:
        return f"contact {name!r} has no webhook URL"

    def body(self, alert: AlertDetail, kind: str, address: str, step: int, public_url: str) -> str:
        return summary.webhook(alert, public_url, step=step, type_="vigil.alert.escalation")

    def send(self, n: Outgoing, providers: Providers) -> Sent:
        return providers.webhook(n)
