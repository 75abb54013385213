"""An alarm-receiving centre as Vigil reaches it: its address (a `sia-dc09://` URI in a
contact's `arc` field), the Contact ID event an alert is told as, and one event sent in SIA
DC-09 over TCP (or UDP) with the receiver's answer (escalation.dc09 frames it)."""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

from escalation import dc09
from monitor.alerts.states import AlertType
from monitor.reads.alert_detail import AlertDetail

SCHEME = "sia-dc09"
# The key is never written in a policy: the address names the environment variable that
# holds it, and only variables of this prefix may be named (not the service's other secrets).
KEY_ENV = re.compile(r"VIGIL_ARC_KEY_[A-Z0-9_]{1,64}")
DEFAULT_TIMEOUT_S = 10.0
TRANSPORTS = ("tcp", "udp")
_HEX = {"account": (3, 16), "prefix": (1, 6), "receiver": (1, 6)}

# Contact ID event codes (SIA DC-05, carried in DC-09's ADM-CID) for each kind of alert.
PANIC, DURESS, MEDICAL, FAILURE_TO_REPORT, SUPERVISION, TEST = 120, 121, 100, 102, 381, 602
CODES = {
    AlertType.RED: PANIC,
    AlertType.DURESS: DURESS,
    AlertType.MAN_DOWN: MEDICAL,
    AlertType.NO_MOTION: MEDICAL,
    AlertType.VISIT_OVERDUE: FAILURE_TO_REPORT,
    AlertType.DEVICE_OFFLINE: SUPERVISION,  # a device that stopped reporting
    AlertType.TEST: TEST,
}
# The event part of a notification's body: "Qeee gg zzz"; extended data follows it.
_EVENT = re.compile(r"(?P<q>[136])(?P<code>\d{3}) (?P<group>\d{2}) (?P<zone>\d{3})")


class Unreachable(Exception):
    """No answer that settles it (no connection, a timeout, a NAK twice): try again later."""


class Refused(Exception):
    """The receiver will not take it (DUH), or Vigil cannot send it (no key): not retried."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    line: dc09.Line
    key_env: str = ""  # the environment variable holding the AES key in hex, "" for none
    timeout_s: float = DEFAULT_TIMEOUT_S
    transport: str = "tcp"


def parse(uri: str) -> Address:
    """`sia-dc09://host:port?account=1234&prefix=1&receiver=2&key=env:VIGIL_ARC_KEY_X&timeout=10`
    (receiver, key, timeout and transport=tcp|udp optional); ValueError saying what is wrong."""
    parts = urlsplit(uri)
    if parts.scheme != SCHEME:
        raise ValueError(f"an ARC address starts {SCHEME}://")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("the port must be a number from 1 to 65535") from exc
    if not parts.hostname or port is None or port == 0:
        raise ValueError(f"an ARC address needs a host and a port: {SCHEME}://host:port?...")
    if parts.username or parts.password or parts.path not in ("", "/") or parts.fragment:
        raise ValueError("an ARC address has only a host, a port and its query")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(query) - {*_HEX, "key", "timeout", "transport"}
    if unknown:
        raise ValueError(f"unknown ARC setting {sorted(unknown)[0]!r}")
    for name, (low, high) in _HEX.items():
        value = query.get(name, "")
        if (value or name != "receiver") and not (
            low <= len(value) <= high and dc09.HEX.fullmatch(value)
        ):
            raise ValueError(f"{name} must be {low} to {high} hexadecimal digits")
    key = query.get("key", "")
    if key and not (key.startswith("env:") and KEY_ENV.fullmatch(key[4:])):
        raise ValueError(
            "key must name the environment variable that holds it, key=env:VIGIL_ARC_KEY_..., "
            "never the key itself"
        )
    try:
        timeout = float(query.get("timeout", DEFAULT_TIMEOUT_S))
    except ValueError as exc:
        raise ValueError("timeout must be a number of seconds") from exc
    if not 0.5 <= timeout <= 60:
        raise ValueError("timeout must be from 0.5 to 60 seconds")
    transport = query.get("transport", "tcp")
    if transport not in TRANSPORTS:
        raise ValueError("transport must be tcp or udp")
    line = dc09.Line(
        query["account"].upper(), query["prefix"].upper(), query.get("receiver", "").upper()
    )
    return Address(parts.hostname, port, line, key[4:], timeout, transport)


def key_of(address: Address) -> bytes | None:
    """The AES key from its environment variable (hex: 32, 48 or 64 digits), or None."""
    if not address.key_env:
        return None
    value = os.environ.get(address.key_env, "").strip()
    if not value:
        raise Refused(f"{address.key_env} is not set on this replica")
    try:
        key = bytes.fromhex(value)
    except ValueError as exc:
        raise Refused(f"{address.key_env} is not hexadecimal") from exc
    if len(key) not in dc09.KEY_SIZES:
        raise Refused(f"{address.key_env} is not a 128-, 192- or 256-bit key (32, 48, 64 digits)")
    return key


def key_problems(uris: Iterable[str]) -> list[str]:
    """What is wrong with the keys these addresses name, on this replica (to warn at start)."""
    problems = []
    for uri in uris:
        try:
            key_of(parse(uri))
        except (ValueError, Refused) as exc:
            problems.append(f"{uri}: {exc}")
    return problems


# -- what an alert is told as ----------------------------------------------------------------


def _text(value: str) -> str:
    """Text safe inside extended data: printable ASCII without the brackets and bar that
    delimit DC-09's blocks."""
    return "".join(c if " " <= c <= "~" and c not in "[]|" else "?" for c in value)[:200]


def event(alert: AlertDetail) -> str:
    """The body of an ARC notification: the Contact ID event (`1120 00 000`) and its extended
    data, the position as [X longitude][Y latitude] in signed decimal degrees (WGS 84) and
    who it is as [I alarm text]. The account and the timestamp are added as it is sent."""
    code = DURESS if alert.duress else CODES[alert.type]
    out = f"{dc09.NEW}{code:03d} 00 000"
    if (p := alert.position) is not None:
        out += f"[X{p.lon:.6f}][Y{p.lat:.6f}]"
    who = alert.worker_name or f"device {alert.device_id}"
    team = f" ({alert.team})" if alert.team else ""
    return out + f"[I{_text(f'Vigil alert #{alert.id}: {who}{team}')}]"


EVENT_LENGTH = len("1120 00 000")  # a body's event, before its extended data


def restore_of(body: str, why: str) -> str | None:
    """The restore (qualifier 3) that ends the event of an ARC notification's body, with
    `why` as its alarm text, or None for an event that has no end (a test report) or a body
    that is a restore already."""
    m = _EVENT.match(body)
    if m is None or m["q"] != dc09.NEW or int(m["code"]) == TEST:
        return None
    return f"{dc09.RESTORE}{m['code']} {m['group']} {m['zone']}[I{_text(why)}]"


# -- sending ---------------------------------------------------------------------------------


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    """Bytes up to the answer's CR, within the deadline."""
    data = b""
    while not data.lstrip(b"\n").count(dc09.CR):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer in time")
        sock.settimeout(left)
        chunk = sock.recv(4096)  # a whole datagram, over UDP
        if not chunk:
            raise ConnectionError("the receiver closed the connection without answering")
        data += chunk
    return data.lstrip(b"\n").split(dc09.CR, 1)[0]


def _connect(address: Address) -> socket.socket:
    """A TCP connection, or a UDP socket connected to the receiver (one datagram each way)."""
    if address.transport == "tcp":
        return socket.create_connection((address.host, address.port), timeout=address.timeout_s)
    family, kind, proto, _, where = socket.getaddrinfo(
        address.host, address.port, type=socket.SOCK_DGRAM
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.settimeout(address.timeout_s)
        sock.connect(where)  # its ICMP "port unreachable" then comes back as an error
    except OSError:
        sock.close()
        raise
    return sock


def send(uri: str, seq: int, body: str) -> str:
    """Send one event (an ARC notification's body) and return how it was taken, e.g.
    "seq 0042, ACK". A NAK is answered once at once with a new timestamp (the receiver's
    clock check, or a damaged message); a second NAK, a timeout or no connection raise
    Unreachable, a DUH Refused. `seq` is the same for every retry of one notification, so
    that the receiver can tell a repeat from a new event."""
    address = parse(uri)
    key = key_of(address)
    m = _EVENT.match(body)
    if m is None:
        raise Refused(f"not an ARC event: {body[:40]!r}")
    qualifier, code = m["q"], int(m["code"])
    data = dc09.adm_cid(address.line.account, qualifier, code, int(m["group"]), int(m["zone"]))
    xdata = body[m.end() :]
    deadline = time.monotonic() + address.timeout_s
    try:
        with _connect(address) as sock:
            for attempt in (1, 2):
                message = dc09.frame(
                    dc09.ADM_CID, seq, address.line, data, xdata, now=datetime.now(UTC), key=key
                )
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                sock.sendall(message)
                answer = dc09.read_answer(_read_line(sock, deadline), key)
                if answer.kind == "NAK" and attempt == 1:
                    continue
                return _settled(answer, seq, address, nak=attempt == 2, keyed=key is not None)
    except ValueError as exc:
        raise Unreachable(f"no valid answer: {exc}") from exc
    except OSError as exc:  # refused, reset, unreachable, timed out
        raise Unreachable(f"{type(exc).__name__}: {exc or 'no answer in time'}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _settled(answer: dc09.Answer, seq: int, address: Address, *, nak: bool, keyed: bool) -> str:
    if answer.kind == "DUH":
        if keyed:
            # A DUH is never encrypted, so on an encrypted link anyone on the path could send
            # one: tried again, until the attempts run out, rather than given up at once.
            raise Unreachable("the receiver answered DUH (not encrypted, so not trusted)")
        raise Refused("the receiver does not understand the event (DUH)")
    if answer.kind == "NAK":
        raise Unreachable("the receiver refused it twice (NAK): is this clock right?")
    if answer.seq != seq or (answer.account and answer.account != address.line.account):
        raise Unreachable(f"an answer to another message (seq {answer.seq:04d})")
    return f"seq {seq:04d}, {answer.kind}" + (" after a NAK" if nak else "")


def sequence(notification_id: int) -> int:
    """The message's sequence number (0001 to 9999) from its notification: the same for every
    retry of it, the next one for the next notification, whichever replica sends it."""
    return notification_id % 9999 + 1
