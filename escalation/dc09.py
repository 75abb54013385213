"""SIA DC-09 (ANSI/SIA DC-09-2017) as a transmitter speaks it: a message framed, counted,
checked and optionally AES-encrypted, and the receiver's answer read back. Written from the
standard; the tests hold it against an independent receiver (pysiaalarm)."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime

from Crypto.Cipher import AES

LF, CR = b"\n", b"\r"
ADM_CID = "ADM-CID"
# Event qualifiers of Contact ID: a new event, and the end of one (a restore).
NEW, RESTORE = "1", "3"
KEY_SIZES = (16, 24, 32)  # AES-128, AES-192, AES-256
MAX_LENGTH = 0xFFF  # the length field is "0LLL": three hex digits
IV = bytes(16)  # the standard's CBC initialisation vector: all zeros
# The pad before an encrypted block is random, and may hold none of "|", "[" or "]".
_PAD = string.ascii_letters + string.digits
HEX = re.compile(r"[0-9A-Fa-f]+")


def crc16(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005, reflected, initial value 0), as DC-09 checks a message."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def timestamp(now: datetime) -> str:
    """The message's time, in UTC: `_HH:MM:SS,MM-DD-YYYY`."""
    return now.astimezone(UTC).strftime("_%H:%M:%S,%m-%d-%Y")


@dataclass(frozen=True)
class Line:
    """Who a message is from as the receiver knows it: the account at the centre, the line
    prefix, and the receiver number (all hexadecimal; the receiver may be left out)."""

    account: str  # 3 to 16 hex digits
    prefix: str  # 1 to 6 hex digits
    receiver: str = ""  # 1 to 6 hex digits, or "" for none

    def header(self) -> str:
        return (f"R{self.receiver}" if self.receiver else "") + f"L{self.prefix}#{self.account}"


def adm_cid(account: str, qualifier: str, code: int, group: int = 0, zone: int = 0) -> str:
    """The data block of an ADM-CID event (Contact ID): `#acct|Qeee gg zzz`."""
    return f"#{account}|{qualifier}{code:03d} {group:02d} {zone:03d}"


def _pad(length: int) -> str:
    """Random characters that bring `length` (the text after them, from its `|`) to a
    multiple of 16: never none, so that the block always starts with a pad."""
    n = -length % 16 or 16
    return "".join(secrets.choice(_PAD) for _ in range(n))


def encrypt(key: bytes, text: str) -> str:
    """AES-CBC with the zero IV, the text a multiple of 16 bytes, as uppercase hex."""
    return AES.new(key, AES.MODE_CBC, IV).encrypt(text.encode("ascii")).hex().upper()


def decrypt(key: bytes, hex_text: str) -> str:
    data = bytes.fromhex(hex_text)
    if not data or len(data) % 16:
        raise ValueError("the encrypted block is not a whole number of AES blocks")
    return AES.new(key, AES.MODE_CBC, IV).decrypt(data).decode("ascii", "replace")


def frame(
    token: str,
    seq: int,
    line: Line,
    data: str,
    xdata: str = "",
    *,
    now: datetime,
    key: bytes | None = None,
) -> bytes:
    """One message: `LF crc 0LLL "id" seq R.. L.. #acct [data][xdata..] timestamp CR`. With a
    key, the id is starred and everything from the data block to the timestamp is encrypted
    (after a random pad and a `|`), so the timestamp is the receiver's defence against a
    replayed message."""
    stamp = timestamp(now)
    if key is None:
        quoted, tail = f'"{token}"', f"[{data}]{xdata}{stamp}"
    else:
        plain = f"|{data}]{xdata}{stamp}"
        quoted, tail = f'"*{token}"', "[" + encrypt(key, _pad(len(plain)) + plain)
    body = f"{quoted}{seq:04d}{line.header()}{tail}".encode("ascii")
    if len(body) > MAX_LENGTH:
        raise ValueError(f"a DC-09 message is at most {MAX_LENGTH} bytes, not {len(body)}")
    return LF + f"{crc16(body):04X}0{len(body):03X}".encode("ascii") + body + CR


@dataclass(frozen=True)
class Answer:
    """What the receiver answered: ACK (taken), NAK (refused, e.g. its clock disagrees: send
    again with a new timestamp), DUH (not understood: sending it again will not help), RSP."""

    kind: str
    seq: int
    account: str
    stamp: str  # the receiver's timestamp, "" if it gave none


_ANSWER = re.compile(
    r"""(?P<crc>[0-9A-Fa-f]{4})(?P<length>[0-9A-Fa-f]{4})
    (?P<body>"(?P<star>\*)?(?P<kind>ACK|NAK|DUH|RSP)"(?P<seq>\d{4})
    [^\#\[]*?  # receiver and prefix, not checked: receivers differ (L before R, "None")
    (?:\#(?P<account>[0-9A-Fa-f]{3,16})|A0)?
    \[(?P<rest>.*))""",
    re.X | re.S,
)
_STAMP = re.compile(r"_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4}")
_ENCRYPTED_END = re.compile(r"\](?:\[[^\[\]]*\])*" + _STAMP.pattern + "$")


def read_answer(raw: bytes, key: bytes | None) -> Answer:
    """The receiver's answer (between its LF and CR), its CRC and length checked and its
    encrypted part decrypted; ValueError if it is not a valid one."""
    text = raw.strip(b"\r\n").decode("ascii", "replace")
    m = _ANSWER.fullmatch(text)
    if m is None:
        raise ValueError(f"not a DC-09 answer: {text[:80]!r}")
    body = m["body"].encode("ascii", "replace")
    if int(m["crc"], 16) != crc16(body):
        raise ValueError("the answer's CRC does not match")
    if int(m["length"], 16) != len(body):
        raise ValueError("the answer's length does not match")
    rest = m["rest"]
    if key is not None and not m["star"] and m["kind"] == "ACK":
        # A receiver acknowledges an encrypted message encrypted: an ACK in clear could be
        # anyone's on the path, and would mark delivered an event the centre never took.
        raise ValueError("an ACK in clear to an encrypted message")
    if m["star"]:
        if key is None:
            raise ValueError("an encrypted answer to a message sent in clear")
        hex_part = rest.split("]", 1)[0]
        if HEX.fullmatch(hex_part) is None:
            raise ValueError("the answer's encrypted block is not hexadecimal")
        rest = decrypt(key, hex_part)
        # What the receiver encrypted ends "](x-data)timestamp": with another key, noise.
        if _ENCRYPTED_END.search(rest) is None:
            raise ValueError("the answer does not decrypt with this key")
    found = _STAMP.search(rest)
    return Answer(m["kind"], int(m["seq"]), (m["account"] or "").upper(), found[0] if found else "")
