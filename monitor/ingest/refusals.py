"""Recording refused device messages: the row operators see, the metric, the `rejected` reply.

The urgent path records its refusals a batch at a time (`RefusalLog`): a device sending
refused messages in a loop costs one transaction a second, not one a message, and its
copies of one refusal become one row with a count.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from monitor.events import MessagesRefused, emit
from monitor.ingest.models import RefusedMessage
from monitor.protocol import Refusal

EXCERPT_CHARS = 300


@dataclass(frozen=True)
class Refused:
    refusal: Refusal
    topic: str
    payload: bytes
    at: datetime


def excerpt(payload: bytes) -> str:
    text = payload[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL


def row(r: Refused, repeats: int = 1) -> dict[str, Any]:
    return {
        "repeats": repeats,
        "at": r.at,
        "topic": r.topic[:300],
        "device_id": r.refusal.device_id,
        "reason": r.refusal.reason,
        "excerpt": excerpt(r.payload),
        "size_bytes": len(r.payload),
    }


def record(db: Session, r: Refused) -> None:
    db.add(RefusedMessage(**row(r)))


def reply(r: Refused) -> tuple[str, dict[str, Any]] | None:
    """The `rejected` command for the device, where the device can be told."""
    if r.refusal.device_id is None or r.refusal.suffix is None:
        return None
    fields = {"ref": r.refusal.suffix, "reason": r.refusal.reason}
    if r.refusal.ref_id is not None:
        fields["id"] = r.refusal.ref_id
    return r.refusal.device_id, fields


def refuse(db: Session, r: Refused) -> list[tuple[str, dict[str, Any]]]:
    """Record a refusal (counted once committed); returns the `rejected` reply, if any."""
    record(db, r)
    emit(db, MessagesRefused(code=r.refusal.code, device_id=r.refusal.device_id))
    answer = reply(r)
    return [] if answer is None else [answer]


# A device is told of at most this many refusals a second; the rest are only recorded and
# counted, so a device refused in a loop cannot make the service publish in a loop.
REPLIES_PER_S = 5


@dataclass
class _Group:
    first: Refused
    repeats: int = 0


@dataclass
class _Budget:
    second: int = 0
    used: int = 0


@dataclass
class RefusalLog:
    """Refusals waiting to be recorded: copies of one (device, topic, reason) in the same
    batch become one row with their count."""

    _groups: dict[tuple[str | None, str, str], _Group] = field(default_factory=dict)
    _budgets: dict[str, _Budget] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, r: Refused) -> tuple[str, dict[str, Any]] | None:
        """Note a refusal; the `rejected` reply to send now, unless the device has had its
        share of replies this second."""
        key = (r.refusal.device_id, r.topic, r.refusal.reason)
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(r)
            group.repeats += 1
            answer = reply(r)
            if answer is None:
                return None
            now = int(time.monotonic())
            budget = self._budgets.setdefault(answer[0], _Budget(now))
            if budget.second != now:
                budget.second, budget.used = now, 0
            if budget.used >= REPLIES_PER_S:
                return None
            budget.used += 1
            return answer

    def __bool__(self) -> bool:
        return bool(self._groups)

    def take(self) -> list[tuple[Refused, int]]:
        """Everything noted since the last call, as (first refusal, copies)."""
        with self._lock:
            groups, self._groups = self._groups, {}
            now = int(time.monotonic())  # budgets of past seconds are done with
            self._budgets = {k: b for k, b in self._budgets.items() if b.second == now}
        return [(g.first, g.repeats) for g in groups.values()]


def record_many(db: Session, taken: list[tuple[Refused, int]]) -> None:
    """Record what a `RefusalLog` gave, in the caller's transaction."""
    if not taken:
        return
    db.execute(insert(RefusedMessage), [row(r, n) for r, n in taken])
    for r, n in taken:
        emit(db, MessagesRefused(code=r.refusal.code, device_id=r.refusal.device_id, count=n))
