"""The dispatch channel, for an emergency dispatcher: a call that reports an emergency, to
the contact's phone if it has one, else the webhook body to its URL."""

from __future__ import annotations

from escalation import summary
from escalation.channels.base import Addresses, Sending
from escalation.providers import Outgoing, Providers, Sent
from monitor.reads.alert_detail import AlertDetail


def _by_webhook(address: str) -> bool:
    return address.startswith("http")


class Dispatch(Sending):
    name = "dispatch"
    word = "Dispatch"
    to_staff = False  # it is for a dispatcher, a contact

    def address(self, to: Addresses) -> str:
        return to.phone or to.webhook or ""

    def no_address(self, name: str) -> str:
        return f"contact {name!r} has neither a phone number nor a webhook URL"

    def body(self, alert: AlertDetail, kind: str, address: str, step: int, public_url: str) -> str:
        if _by_webhook(address):
            return summary.webhook(alert, public_url, step=step, type_="vigil.alert.dispatch")
        return summary.voice(alert, dispatch=True)

    def send(self, n: Outgoing, providers: Providers) -> Sent:
        return providers.webhook(n) if _by_webhook(n.address) else providers.call(n)
