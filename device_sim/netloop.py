"""NetLoop: one thread driving many paho clients through paho's external-loop API (socket
callbacks, loop_read/loop_write/loop_misc on a `selectors` selector), with timers.

Every call into a paho client happens on the loop's thread; other threads hand work over with
call_soon() or call_later(). That keeps paho's unlocked bookkeeping (its write-registration
flag, its packet queue) free of races, and costs one thread per process instead of one per
device.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

# Keep-alive and other timekeeping (loop_misc) for each client about once a second, spread
# over slices so ten thousand clients never stall the loop in one burst.
MISC_EVERY_S = 1.0
MISC_SLICES = 10


class Timer:
    """A callback scheduled on a NetLoop; cancel() is safe from any thread."""

    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class NetLoop:
    """A selector loop on a thread of its own, for any number of paho clients."""

    def __init__(self, name: str = "sim-net") -> None:
        self.name = name
        self._selector = selectors.DefaultSelector()
        # A socket pair wakes the selector when another thread hands over work.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._calls: deque[Callable[[], None]] = deque()
        self._timers: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._woken = False
        self._clients: list[mqtt.Client] = []
        self._misc_index = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread (clients still attached are left as they are: stop them first)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake()
        if thread is not threading.current_thread():
            thread.join()
        self._thread = None

    def close(self) -> None:
        self.stop()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def in_loop(self) -> bool:
        return self._thread is threading.current_thread()

    # --- handing work to the loop -----------------------------------------------------------

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the loop's thread: at once if called there, else soon."""
        if self.in_loop():
            fn()
            return
        with self._lock:
            self._calls.append(fn)
        self._wake()

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + max(0.0, delay), fn)
        with self._lock:
            heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        if not self.in_loop():
            self._wake()
        return timer

    def _wake(self) -> None:
        with self._lock:
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    # --- paho clients -----------------------------------------------------------------------

    def attach(self, client: mqtt.Client) -> None:
        """Drive this client's socket from the loop; call before connecting it."""
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        # An exception escaping a callback must end neither the loop nor other devices.
        client.suppress_exceptions = True
        self.call_soon(lambda: self._clients.append(client))

    def detach(self, client: mqtt.Client) -> None:
        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._clients.remove(client)

        self.call_soon(remove)

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._selector.register(sock, selectors.EVENT_READ, client)

    def _on_socket_close(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)

    def _on_register_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _on_unregister_write(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.modify(sock, selectors.EVENT_READ, client)

    # --- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        next_misc = time.monotonic()
        misc_step = MISC_EVERY_S / MISC_SLICES
        while not self._stopping:
            now = time.monotonic()
            with self._lock:
                first = self._timers[0][0] if self._timers else None
                busy = bool(self._calls)
            timeout = 0.0 if busy else max(0.0, min(next_misc, first or next_misc) - now)
            for key, mask in self._selector.select(timeout):
                client = key.data
                if client is None:
                    self._drain_wake()
                    continue
                self._serve(client, key.fileobj, mask)
            self._run_calls()
            self._run_timers()
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + misc_step
                self._misc_slice()

    def _serve(self, client: mqtt.Client, sock: Any, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                client.loop_read()
            # The read may have closed the socket (and a new one may have its number).
            if mask & selectors.EVENT_WRITE and client.socket() is sock:
                client.loop_write()
        except Exception:
            log.exception("error in the network loop")

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            self._woken = False

    def _run_calls(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, deque()
        for fn in calls:
            self._call(fn)

    def _run_timers(self) -> None:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > now:
                    return
                _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._call(timer.fn)

    def _misc_slice(self) -> None:
        clients = self._clients
        if not clients:
            return
        size = max(1, -(-len(clients) // MISC_SLICES))
        if self._misc_index >= len(clients):
            self._misc_index = 0
        for client in clients[self._misc_index : self._misc_index + size]:
            if client.socket() is not None:
                self._call(client.loop_misc)
        self._misc_index += size

    @staticmethod
    def _call(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception:
            log.exception("error in a network loop callback")
