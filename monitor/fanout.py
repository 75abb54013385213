"""Relaying events between replicas through PostgreSQL LISTEN/NOTIFY.

With several `vigil serve` replicas, an operator's console is connected to one of them but
must see every replica's changes. Events this process commits are sent on a channel
(NOTIFY, from a thread of its own, off the alert path); other replicas' events are published
on the local bus marked remote, which only subscribers that show things (the console hub)
receive. Nothing is acted on twice.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
from datetime import datetime

import psycopg

from monitor.db import Store
from monitor.events import Event, decode

log = logging.getLogger(__name__)

CHANNEL = "vigil_events"
SHARED = "alert."
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD = 7900


def libpq_url(store: Store) -> str:
    url = store.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Fanout:
    def __init__(self, store: Store, node: str, *, listen: bool = True) -> None:
        self.store = store
        self.origin = f"{node}-{secrets.token_hex(4)}"  # unique per process
        self._url = libpq_url(store)
        self._outgoing: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, name="vigil-fanout-send", daemon=True)
        ]
        # A process that only stores (a telemetry child) sends; it shows nothing to anyone.
        if listen:
            self._threads.append(
                threading.Thread(target=self._listen_loop, name="vigil-fanout-listen", daemon=True)
            )
        self.listening = threading.Event()
        self._unsubscribe = store.bus.subscribe(self._queue, "")

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._unsubscribe()
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def _queue(self, event: Event) -> None:
        if not event.kind.startswith(SHARED):
            return
        payload = json.dumps(
            {"o": self.origin, "k": event.kind, "at": event.at.isoformat(), "d": event.data()},
            default=str,
        )
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("event %s too large to relay (%d bytes)", event.kind, len(payload))
            return
        self._outgoing.put(payload)

    def _send_loop(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        while not self._stop.is_set():
            try:
                payload = self._outgoing.get(timeout=0.5)
            except queue.Empty:
                continue
            while not self._stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(self._url, autocommit=True)
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    break
                except psycopg.Error:
                    log.exception("could not relay an event; retrying")
                    conn = None
                    self._stop.wait(1.0)
        if conn is not None:
            conn.close()

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._relay(note.payload)
            except psycopg.Error:
                self.listening.clear()
                log.exception("lost the event channel; listening again")
                self._stop.wait(1.0)

    def _relay(self, payload: str) -> None:
        try:
            msg = json.loads(payload)
            if msg.get("o") == self.origin:
                return
            event = decode(msg["k"], msg["d"], datetime.fromisoformat(msg["at"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            # Not one of ours as this version writes them: dropped, and the listening thread
            # (the only way this replica's consoles hear of the others' alerts) goes on.
            log.warning("ignored an event on %s that could not be read", CHANNEL)
            return
        if event is not None:
            self.store.bus.publish(event)
