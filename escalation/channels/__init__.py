"""The channels an escalation step may notify by, registered by name (as Traccar's
notificators are). A new channel is a module here with a class that meets
`base.Channel`, and its line in REGISTERED below."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from escalation.channels.arc import Arc
from escalation.channels.base import Channel
from escalation.channels.console import Console
from escalation.channels.dispatch import Dispatch
from escalation.channels.sms import Sms
from escalation.channels.voice import Voice
from escalation.channels.webhook import Webhook

REGISTERED: tuple[Channel, ...] = (Console(), Sms(), Voice(), Webhook(), Dispatch(), Arc())
CHANNELS: dict[str, Channel] = {c.name: c for c in REGISTERED}

if TYPE_CHECKING:
    ChannelName = str
else:
    # The names a policy's step may give: the registered ones, in their order, so that a
    # wrong one is answered "Input should be 'console', 'sms', ..." (mypy sees a str).
    ChannelName = Literal[tuple(CHANNELS)]


def get(name: str) -> Channel:
    """The channel of that name (policies are checked against CHANNELS when stored)."""
    return CHANNELS[name]


__all__ = ["CHANNELS", "Channel", "ChannelName", "get"]
