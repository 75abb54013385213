"""Sign-in throttling: too many wrong passwords for a name, or from one address, wait."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

# One address may try several names (a shared office), so it gets more room than one name.
PER_ADDRESS = 4


class SignInThrottle:
    """Counts failed sign-ins in a sliding window, in this process's memory: each replica
    counts its own, which bounds an attacker to replicas times the limit."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]  # keeps the table from growing with every name tried
            return deque()
        return times

    def wait_s(self, username: str, address: str) -> float:
        """Seconds before this name may try again from this address (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in (
                (f"user:{username.lower()}", self.max_failures),
                (f"addr:{address}", self.max_failures * PER_ADDRESS),
            ):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[len(times) - limit] + self.window_s - now)
            return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures[f"user:{username.lower()}"].append(now)
            self._failures[f"addr:{address}"].append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username.lower()}", None)
