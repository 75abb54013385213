"""Trackers whose identifier is their only credential (Traccar Client and other OsmAnd-protocol
trackers, over HTTP): how such an identifier is made and read.

The OsmAnd protocol has no password; a tracker sends only its identifier. Vigil's is
`<device id>.<secret>`: the device id names the registry row, the secret is checked against
that row's `secret_hash` (as an MQTT device's secret is), so the registry never holds what
a tracker sends and a reader of the database cannot speak for one.
"""

from __future__ import annotations

import base64
import re
import secrets

# Device kinds that speak only HTTP: they get no account at the broker.
OSMAND = "osmand"
# A worker's texts and calls to the Vigil number, through Twilio's signed webhooks
# (gateways/line_workers.py): a device with no credential anyone holds.
LINE = "line"
HTTP_ONLY_KINDS = frozenset({OSMAND, LINE})

# Not a character of a device id (A-Z a-z 0-9 _ -), so an identifier splits one way only;
# and safe unescaped in a URL (Traccar Client for iOS writes the identifier as it is).
SEPARATOR = "."
# 130 random bits in lowercase base32: no case or look-alike symbols to get wrong when it is
# typed into a phone's settings by hand.
_SECRET = re.compile(r"[a-z2-7]{26}")
_IDENTIFIER = re.compile(r"([A-Za-z0-9_-]{1,64})\.([a-z2-7]{26})")


def new_tracker_secret() -> str:
    return base64.b32encode(secrets.token_bytes(17)).decode().lower()[:26]


def identifier_of(device_id: str, secret: str) -> str:
    """What the tracker is configured with (its "device identifier")."""
    assert _SECRET.fullmatch(secret)
    return f"{device_id}{SEPARATOR}{secret}"


def split_identifier(identifier: str) -> tuple[str, str] | None:
    """(device id, secret) of an identifier in Vigil's form, or None."""
    m = _IDENTIFIER.fullmatch(identifier)
    return None if m is None else (m.group(1), m.group(2))
