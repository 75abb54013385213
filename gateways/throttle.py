"""Per-sender limits for gateways: a token bucket per key, and a cap on a key's requests in
flight, so that one sender's flood is turned away before it takes a thread or a query."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Buckets:
    """A token bucket per key: `rate` tokens a second up to `burst`. Thread-safe (the main
    port and a tracker port each run their own event loop)."""

    # Buckets that are full again are forgotten when there are more than this many keys.
    PRUNE_AT = 10_000

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._tokens.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def take(self, key: str) -> bool:
        """Take a token if there is one."""
        with self._lock:
            now = self._clock()
            level = self._level(key, now)
            if level < 1:
                self._tokens[key] = (level, now)
                return False
            self._tokens[key] = (level - 1, now)
            if len(self._tokens) > self.PRUNE_AT:
                self._prune(now)
            return True

    def has(self, key: str) -> bool:
        with self._lock:
            return self._level(key, self._clock()) >= 1

    def retry_after_s(self, key: str) -> int:
        with self._lock:
            level = self._level(key, self._clock())
        return max(1, int((1 - level) / self.rate + 0.999))

    def _prune(self, now: float) -> None:
        full = [k for k in self._tokens if self._level(k, now) >= self.burst]
        for k in full:
            del self._tokens[k]


class InFlight:
    """At most `limit` requests of one key at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}

    @contextmanager
    def slot(self, key: str) -> Iterator[bool]:
        """Yields whether the request may go on; its slot is given back on leaving."""
        with self._lock:
            n = self._count.get(key, 0)
            full = n >= self.limit
            if not full:
                self._count[key] = n + 1
        if full:
            yield False
            return
        try:
            yield True
        finally:
            with self._lock:
                left = self._count[key] - 1
                if left:
                    self._count[key] = left
                else:
                    del self._count[key]
