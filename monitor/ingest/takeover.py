"""Replicas of a shared group watch one another: the MQTT sessions of a replica that has
stopped beating are taken over by a live one, so the broker stops handing them a share.

Mosquitto goes on giving a shared subscription's messages, in turn, to every session that
has it, connected or not: a dead replica's persistent sessions would hold every other
message until it came back. Each replica beats in the store; a live one that finds a peer
silent for `VIGIL_REPLICA_SILENT_S` claims it (a row lock, so one replica does it),
connects under the peer's client ids, drops the shared subscriptions so nothing more is
routed there, stores what was queued for them as it stores its own traffic, and ends each
session once nothing has come for a while and everything it took in is acknowledged.
Ingest is idempotent, so a copy handled twice is harmless. A broker that hands a
disconnected member's messages to the others itself (EMQX, HiveMQ) leaves little or nothing
queued: the takeover then just ends the sessions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from monitor.config import Settings
from monitor.db import Store
from monitor.ingest.link import Incoming, MqttLink, subscription
from monitor.ingest.processes import QUIET_S
from monitor.protocol import TELEMETRY, URGENT
from monitor.replicas import service as replicas

log = logging.getLogger(__name__)

# Beats per silence that counts as death: a beat or two late is not a death.
BEATS = 5
# A taken session that does not connect within this long is left for a later try.
CONNECT_S = 10.0


class Abandoned(Exception):
    """A takeover given up: the claim is released and the sessions are kept."""

    def __init__(self, node: str, why: str) -> None:
        super().__init__(f"replica {node}: {why}")
        self.node = node


class Takeover(threading.Thread):
    """Beats for this replica; takes over the sessions of silent peers, one at a time."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        client_ids: list[str],
        on_message: Callable[[Incoming], None],
    ) -> None:
        super().__init__(name="vigil-takeover", daemon=True)
        self.store = store
        self.settings = settings
        self.client_ids = client_ids
        self._on_message = on_message
        self._silent_s = settings.replica_silent_s
        self._every = self._silent_s / BEATS
        self._next_beat = 0.0
        # Since when this replica's own beats have all succeeded: only a replica that has
        # been beating for a whole silence can tell that another has not (after a database
        # outage every replica's beat is old).
        self._beating_since: float | None = None
        # Peers whose takeover was given up, and until when they are left alone.
        self._later: dict[str, float] = {}
        self._stop_flag = threading.Event()
        # Shared subscriptions of every topic: the peer's urgent, telemetry and telemetry
        # processes' sessions each have some of them.
        self._drop = [subscription(settings, s)[0] for s in sorted(URGENT | TELEMETRY)]

    @staticmethod
    def needed(settings: Settings) -> bool:
        return bool(settings.mqtt_shared_group) and settings.uses_postgresql

    def stop(self, *, forget: bool = False) -> None:
        """Stop watching. `forget` is for a replica leaving for good (its sessions are being
        ended): its heartbeat goes, so no one takes over sessions that no longer exist."""
        self._stop_flag.set()
        if self.is_alive():
            self.join(30)
        if forget:
            try:
                with self.store.begin() as db:
                    replicas.forget(db, self.settings.mqtt_node)
            except Exception:
                log.exception("could not remove this replica's heartbeat")

    def run(self) -> None:
        while not self._stop_flag.is_set():
            self._beat()
            since = self._beating_since
            if since is not None and time.monotonic() - since >= self._silent_s:
                try:
                    self._take_over_one()
                except Exception:
                    log.exception("taking over a silent replica's sessions failed")
            self._stop_flag.wait(max(0.0, self._next_beat - time.monotonic()))

    def _beat(self) -> None:
        now = time.monotonic()
        if now < self._next_beat:
            return
        self._next_beat = now + self._every
        try:
            with self.store.begin() as db:
                replicas.beat(db, self.settings.mqtt_node, self.client_ids)
        except Exception as exc:
            if self._beating_since is not None:
                log.warning("replica heartbeat failed: %s", exc)
            self._beating_since = None
            return
        if self._beating_since is None:
            self._beating_since = now

    def _take_over_one(self) -> None:
        now = time.monotonic()
        self._later = {node: t for node, t in self._later.items() if t > now}
        try:
            with self.store.begin() as db:
                peer = replicas.claim_silent(
                    db, self.settings.mqtt_node, self._silent_s, skip=frozenset(self._later)
                )
                if peer is None:
                    return
                # The claim is held (the row locked) until the sessions are ended.
                self._take_over(peer.node, list(peer.client_ids))
                replicas.forget(db, peer.node)
        except Abandoned as left:
            log.warning("left a silent replica's sessions for now: %s", left)
            self._later[left.node] = time.monotonic() + self._silent_s

    def _take_over(self, node: str, client_ids: list[str]) -> None:
        log.warning(
            "replica %s has not beaten for %.0f s: taking over its MQTT sessions %s",
            node,
            self._silent_s,
            client_ids,
        )
        taken = [0]
        last = [time.monotonic()]

        def on_message(incoming: Incoming) -> None:
            taken[0] += 1
            last[0] = time.monotonic()
            self._on_message(incoming)

        links = [
            MqttLink(
                self.settings, "", [], on_message, drop=self._drop, client_id=cid, reconnect=False
            )
            for cid in client_ids
        ]
        started = time.monotonic()
        for link in links:
            link.start()
        drained = False
        try:
            while True:
                if self._stop_flag.wait(0.1):
                    raise Abandoned(node, "this replica is stopping")
                self._beat()
                if any(link.ended.is_set() for link in links):
                    # The replica is back (its connect took the session from us), or the
                    # broker is gone: either way the session is not ours to end.
                    raise Abandoned(node, "a session was taken back or lost")
                if not all(link.dropped.is_set() for link in links):
                    if time.monotonic() - started > CONNECT_S:
                        raise Abandoned(node, "its sessions did not connect")
                    continue
                if (
                    all(link.unacked == 0 for link in links)
                    and time.monotonic() - last[0] > QUIET_S
                ):
                    drained = True
                    break
        finally:
            for link in links:
                link.stop(end_session=drained)
        log.warning(
            "took over the MQTT sessions of replica %s: %d messages were queued for it; "
            "its sessions are ended",
            node,
            taken[0],
        )
