"""An alarm-receiving centre for the tests: pysiaalarm's SIA DC-09 receiver (written by
nobody on this project) on a loopback port, keeping every event it acknowledged."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pysiaalarm import CommunicationsProtocol, SIAAccount, SIAClient, SIAEvent
from pysiaalarm.utils import regexes

from tests.support import wait_until

ACCOUNT, PREFIX, RECEIVER = "C0FFEE", "2", "1A"
# Keys as pysiaalarm takes them: text whose characters are the key's bytes. Vigil is given
# the same bytes in hex (escalation/arc.py), as the standard writes keys.
KEYS = {
    128: "0123456789ABCDEF",
    192: "0123456789ABCDEF01234567",
    256: "0123456789ABCDEF0123456789ABCDEF",
}
KEY_ENV = "VIGIL_ARC_KEY_TEST"


def vigil_key(text: str) -> str:
    return text.encode("ascii").hex()


def allow_several_xdata(monkeypatch: pytest.MonkeyPatch) -> None:
    """pysiaalarm 3.2 reads one extended-data block in an ADM-CID message, where DC-09 allows
    several (its own SIA-DCS pattern takes several): widen only that group, as its SIA-DCS
    pattern has it, so that [X..][Y..][I..] are read rather than refused with a NAK."""
    for name in ("ADM_CONTENT_MATCHER", "ENCR_ADM_CONTENT_MATCHER"):
        old: re.Pattern[str] = getattr(regexes, name)
        one = r"(?:\[(?:(?<=\[)(?P<xdata>.[^\[\]]*)(?=\]))\])?"
        assert one in old.pattern, "pysiaalarm's ADM-CID pattern changed"
        widened = old.pattern.replace(one, r"(?:\[(?P<xdata>.*)\])?")
        monkeypatch.setattr(regexes, name, re.compile(widened, old.flags))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Centre:
    """The receiver and what it took (every event it ACKed, in order)."""

    def __init__(
        self, port: int, key: str | None, *, nak_first: bool = False, udp: bool = False
    ) -> None:
        self.key = key
        self.udp = udp
        self.account = SIAAccount(ACCOUNT, key)
        self.events: list[SIAEvent] = []
        self.refused = 0  # NAKs it sent
        self._lock = threading.Lock()
        protocol = CommunicationsProtocol.UDP if udp else CommunicationsProtocol.TCP
        self.client = SIAClient("127.0.0.1", port, [self.account], self._took, protocol)
        self.port = int(self.client.sia_server.server_address[1])
        if nak_first:
            self._nak_first()

    def _took(self, event: SIAEvent) -> None:
        with self._lock:
            self.events.append(event)

    def _nak_first(self) -> None:
        """Its clock check fails for the first message it reads (as if the clocks were an
        hour apart): pysiaalarm answers that with a NAK."""
        server = self.client.sia_server
        parse = server.parse_and_check_event

        def first_out_of_time(data: bytes) -> Any:
            event = parse(data)
            if isinstance(event, SIAEvent) and event.sia_account is not None and not self.refused:
                self.refused += 1
                event.sia_account = dataclasses.replace(
                    event.sia_account, allowed_timeband=(-3600, 7200)
                )
            return event

        server.parse_and_check_event = first_out_of_time  # type: ignore[method-assign]

    def address(self, **extra: str) -> str:
        query = f"account={ACCOUNT}&prefix={PREFIX}&receiver={RECEIVER}"
        if self.key is not None:
            query += f"&key=env:{KEY_ENV}"
        if self.udp:
            query += "&transport=udp"
        for name, value in extra.items():
            query += f"&{name}={value}"
        return f"sia-dc09://127.0.0.1:{self.port}?{query}"

    def took(self, n: int, timeout: float = 10.0) -> list[SIAEvent]:
        def enough() -> bool:
            with self._lock:
                return len(self.events) >= n

        wait_until(enough, timeout=timeout, what=f"{n} events at the centre")
        with self._lock:
            return list(self.events)


@contextlib.contextmanager
def centre(
    port: int = 0, key: str | None = None, *, nak_first: bool = False, udp: bool = False
) -> Iterator[Centre]:
    c = Centre(port, key, nak_first=nak_first, udp=udp)
    c.client.start()
    try:
        yield c
    finally:
        c.client.stop()


def xdata(event: SIAEvent) -> dict[str, str]:
    return {x.identifier: x.value or "" for x in event.extended_data or []}
