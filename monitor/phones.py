"""Phone numbers as Vigil dials them through Twilio: E.164 ("+447700900123")."""

from __future__ import annotations

import re

# A plus, a country code that does not start with 0, and at most 15 digits in all.
E164 = r"\+[1-9][0-9]{6,14}"
_E164 = re.compile(f"^{E164}$")
# What may be written between the digits of a registered number: "+44 7700 900-001"
# (SPACING for SQL, which takes out these; the pattern takes out any white space too).
SPACING = (" ", "(", ")", ".", "-")
_SPACING = re.compile(r"[\s().-]")


def is_e164(number: str) -> bool:
    return bool(_E164.match(number))


def normalise(number: str) -> str:
    """A phone number as Twilio writes and dials it (E.164), from one written with spacing."""
    return _SPACING.sub("", number)


def dialable(number: str) -> str | None:
    """The number in E.164, if it is one once its spacing is taken out; else None."""
    plain = normalise(number)
    return plain if is_e164(plain) else None
