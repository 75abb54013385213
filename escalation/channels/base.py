"""What every channel is (the `Channel` protocol), and what the channels that send share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

from escalation.models import RecipientKind
from escalation.providers import Outgoing, Providers, Sent
from monitor.reads.alert_detail import AlertDetail

# Recipients that are not contacts, named in a step's `to` by their kind.
RESERVED = (RecipientKind.WORKER.value, RecipientKind.BACKUP.value)


class Addresses(Protocol):
    """Where someone can be reached: a contact (policies.ContactIn) or a resolved recipient
    of a snapshot (models.Recipient) alike."""

    @property
    def phone(self) -> str: ...

    @property
    def webhook(self) -> str | None: ...

    @property
    def arc(self) -> str | None: ...


class Channel(Protocol):
    """One way an escalation step reaches people (Traccar's notificator). Each channel's
    class, in a module of its own, holds everything that differs from one channel to
    another; the engine, flows and policies ask it rather than its name."""

    name: str  # as policies name it and notifications store it
    word: str  # how the timeline names one of its notifications: "SMS to ..."
    sends: bool  # False: the step only writes in the timeline (the console)
    for_tests: bool  # True: it runs for a test alert too (it wakes nobody's phone)

    def refuse_step(self, to: Sequence[str]) -> str | None:
        """Why a policy's step on this channel cannot have these recipients, or None."""
        ...

    def refuse(self, name: str, contact: Addresses | None) -> str | None:
        """Why the recipient `name` (the contact of that name, if any) cannot be reached on
        this channel, or None."""
        ...

    def address(self, to: Addresses) -> str:
        """Where a notification to this recipient goes; "" if it has no address here."""
        ...

    def body(self, alert: AlertDetail, kind: str, address: str, step: int, public_url: str) -> str:
        """What it says to a recipient of this kind (RecipientKind) at this address, at the
        escalation's `step`th step (counted from 1 over every round)."""
        ...

    def send(self, n: Outgoing, providers: Providers) -> Sent:
        """Send it through its provider (Twilio or the outbox, the webhook client); raises
        providers.Retry or providers.Failed."""
        ...


class Sending(ABC):
    """What the channels that send share: a step needs recipients, each a contact with an
    address on the channel, or (`to_staff`) the worker or backup staff, who have a phone."""

    name: str
    word: str
    sends = True
    to_staff = True
    for_tests = False

    @abstractmethod
    def address(self, to: Addresses) -> str: ...

    @abstractmethod
    def no_address(self, name: str) -> str:
        """Why the contact `name` cannot be reached: it has no address on this channel."""

    @abstractmethod
    def body(
        self, alert: AlertDetail, kind: str, address: str, step: int, public_url: str
    ) -> str: ...

    @abstractmethod
    def send(self, n: Outgoing, providers: Providers) -> Sent: ...

    def refuse_step(self, to: Sequence[str]) -> str | None:
        return None if to else f"a {self.name} step needs recipients"

    def refuse(self, name: str, contact: Addresses | None) -> str | None:
        if name in RESERVED:
            if self.to_staff:
                return None
            return f"{self.name} goes to contacts with a webhook or dispatch number, not {name!r}"
        if contact is None:
            return f"no contact named {name!r}"
        if not self.address(contact):
            return self.no_address(name)
        return None
