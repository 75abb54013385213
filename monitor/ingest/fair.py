"""A queue that takes turns between devices, so one device's backlog delays only itself.

Each device has its own first-in first-out line, at most `per_key` long. The worker takes
one message from each device with something waiting in turn, and a device is out of the
rotation while its message is being handled (`done` puts it back): its messages stay in
order even when one of them leaves the worker for a while (a PIN check).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self._lines: dict[str, deque[T]] = {}
        self._turns: deque[str] = deque()  # keys with something waiting and not busy
        self._busy: set[str] = set()
        self._size = 0
        self._cond = threading.Condition()

    def put(self, key: str, item: T) -> bool:
        """Queue `item` behind `key`'s others; False, and nothing queued, when its line is
        full."""
        with self._cond:
            line = self._lines.get(key)
            if line is None:
                line = self._lines[key] = deque()
            elif len(line) >= self.per_key:
                return False
            line.append(item)
            self._size += 1
            if len(line) == 1 and key not in self._busy:
                self._turns.append(key)
                self._cond.notify()
            return True

    def put_first(self, key: str, item: T) -> None:
        """Give back a busy key's item, to be taken before its others, and end its turn."""
        with self._cond:
            self._lines.setdefault(key, deque()).appendleft(item)
            self._size += 1
            self._end_turn(key)

    def get(self, timeout: float) -> tuple[str, T] | None:
        """The next key's first item; the key is busy until `done(key)`."""
        with self._cond:
            if not self._turns and not self._cond.wait_for(lambda: self._turns, timeout):
                return None
            key = self._turns.popleft()
            item = self._lines[key].popleft()
            self._size -= 1
            self._busy.add(key)
            return key, item

    def done(self, key: str) -> None:
        with self._cond:
            self._end_turn(key)

    def _end_turn(self, key: str) -> None:
        self._busy.discard(key)
        line = self._lines.get(key)
        if line:
            self._turns.append(key)
            self._cond.notify()
        elif line is not None:
            del self._lines[key]  # no memory kept for devices gone quiet

    def __len__(self) -> int:
        """Items waiting, not counting those being handled."""
        return self._size
