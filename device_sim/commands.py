"""Commands the service sends on vigil/v1/DEVICE/cmd, and the device's log of them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from device_sim.protocol import JsonObject

# The `type` of a Command that could not be understood: it is kept, not acted on.
UNPARSEABLE = ""


@dataclass(frozen=True)
class Command:
    """One command as received; `type` is "" (UNPARSEABLE) when the payload was not a JSON
    object with a string `type`, and `raw` always holds the bytes as they came."""

    type: str
    payload: JsonObject
    received_at: float  # time.time(), seconds since the epoch
    raw: bytes = field(default=b"", repr=False)

    @classmethod
    def parse(cls, raw: bytes, received_at: float | None = None) -> Command:
        at = time.time() if received_at is None else received_at
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return cls(UNPARSEABLE, {}, at, raw)
        if not isinstance(payload, dict):
            return cls(UNPARSEABLE, {}, at, raw)
        kind = payload.get("type")
        return cls(kind if isinstance(kind, str) else UNPARSEABLE, payload, at, raw)

    def matches(self, type: str, match: dict[str, Any]) -> bool:
        return self.type == type and all(self.payload.get(k) == v for k, v in match.items())


class CommandLog:
    """Every command in arrival order, with a blocking wait for one that matches."""

    def __init__(self, device_id: str) -> None:
        self._device_id = device_id
        self._items: list[Command] = []
        self._changed = threading.Condition()

    def append(self, command: Command) -> None:
        with self._changed:
            self._items.append(command)
            self._changed.notify_all()

    def snapshot(self) -> list[Command]:
        with self._changed:
            return list(self._items)

    def wait_for(self, type: str, timeout: float, match: dict[str, Any]) -> Command:
        def found() -> Command | None:
            return next((c for c in self._items if c.matches(type, match)), None)

        deadline = time.monotonic() + timeout
        with self._changed:
            while (hit := found()) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(self._explain(type, timeout, match))
                self._changed.wait(left)
            return hit

    def _explain(self, type: str, timeout: float, match: dict[str, Any]) -> str:
        wanted = type + "".join(f" {k}={v!r}" for k, v in match.items())
        seen = [_describe(c) for c in self._items]
        listing = "\n  ".join(seen) if seen else "(none)"
        return (
            f"{self._device_id}: no {wanted} command within {timeout:g} s; "
            f"received {len(seen)}:\n  {listing}"
        )


def _describe(command: Command) -> str:
    if command.type == UNPARSEABLE:
        return f"<unparseable> {command.raw[:80]!r}"
    return json.dumps(command.payload, sort_keys=True)[:200]


CommandListener = Callable[[Command], None]
