"""The ARC channel: the alert as a Contact ID event in SIA DC-09, to an alarm-receiving
centre's receiver (escalation.arc); its restore follows when the alert is closed
(escalation.restores)."""

from __future__ import annotations

from escalation import arc
from escalation.channels.base import RESERVED, Addresses, Sending
from escalation.providers import Outgoing, Providers, Sent
from monitor.reads.alert_detail import AlertDetail


class Arc(Sending):
    name = "arc"
    word = "ARC"
    to_staff = False  # a centre is a contact with an arc address
    # A test alert goes to the centre as a test report (602): that is how a centre knows
    # the path to it works, and it wakes nobody's phone.
    for_tests = True

    def address(self, to: Addresses) -> str:
        return to.arc or ""

    def no_address(self, name: str) -> str:
        return f"contact {name!r} has no arc address ({arc.SCHEME}://...)"

    def refuse(self, name: str, contact: Addresses | None) -> str | None:
        if name in RESERVED:
            return f"{self.name} goes to contacts with an arc address, not {name!r}"
        return super().refuse(name, contact)

    def body(self, alert: AlertDetail, kind: str, address: str, step: int, public_url: str) -> str:
        return arc.event(alert)

    def send(self, n: Outgoing, providers: Providers) -> Sent:
        return providers.arc(n)
