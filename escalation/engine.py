"""The step runner: starts escalations, runs due steps once, and sends notifications.

Two threads decide (short transactions, rows claimed with FOR UPDATE SKIP LOCKED, so two
replicas never run the same step), and a pool of threads sends, so a slow Twilio or webhook
holds up only its own notification. An alert raised here is started straight from its
event by a thread of its own, so its first contact waits for no other alert's steps; the
other thread ticks, woken at once by alert events, and catches whatever an event did not
bring (a crash, another replica, a step falling due).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from escalation import arc, calls, channels, delivery, flows, policies, restores
from escalation.channels.arc import Arc
from escalation.models import Contact, Policy
from escalation.providers import Failed, Outgoing, Providers, Retry
from monitor.alerts import service as alerts
from monitor.config import Settings
from monitor.db import Store
from monitor.events import AlertChanged, Event, Kind

log = logging.getLogger(__name__)

# The alert events that may change what the escalation must do.
WAKING = frozenset(
    {
        Kind.ALERT_RAISED,
        Kind.ALERT_ACKNOWLEDGED,
        Kind.ALERT_RESOLVED,
        Kind.ALERT_CANCELLED,
        Kind.ALERT_DURESS,
    }
)
CLOSING = frozenset({Kind.ALERT_RESOLVED, Kind.ALERT_CANCELLED})
# How often every restore owed to an alarm-receiving centre is looked for, beyond those of
# the alerts closed here (escalation.restores): another replica's, lost to a crash.
RESTORE_SWEEP_S = 60.0


class Engine:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.node = settings.mqtt_node
        self.providers = Providers(settings)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._starter: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._count = threading.Lock()
        self._in_flight = 0  # handed to the pool and not finished: claims wait for room
        self._fresh: deque[int] = deque()  # alerts raised here, not yet started
        # The alerts the starting thread has queued or the tick is starting: never both at
        # once. On PostgreSQL the second would wait for the first's lock, then (its look
        # read before the wait) insert a second escalation, refused by the unique key.
        self._claimed: set[int] = set()
        self._claims = threading.Lock()
        self._fresh_ready = threading.Event()
        self._closed: deque[int] = deque()  # alerts that may owe a centre its restore
        self._next_sweep = 0.0

    # -- lifecycle (monitor.api.Runner) ---------------------------------------------------

    def start(self) -> None:
        self._warn_about_settings()
        if self.settings.escalation_default_policy:
            self.load_default_policy()
        with self.store.begin() as db:
            if again := delivery.reclaim(db, self.node):
                log.warning("%d notifications were being sent when this node stopped", again)
            centres = db.scalars(select(Contact.arc).where(Contact.arc != "")).all()
        for problem in arc.key_problems(centres):
            log.warning("alarm-receiving centre %s: its events will fail until it is", problem)
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(
            self.settings.escalation_senders,
            thread_name_prefix="vigil-notify",
            initializer=self.providers.warm,
        )
        for _ in range(self.settings.escalation_senders):
            self._pool.submit(lambda: None)  # the threads start (and warm up) now
        # Local events only: the replica that made a change wakes; the others' ticks
        # would find nothing left to do anyway.
        self._unsubscribe = [self.store.bus.subscribe(self._on_event, "alert.")]
        self._thread = threading.Thread(target=self._run, name="vigil-escalation", daemon=True)
        self._thread.start()
        self._starter = threading.Thread(
            target=self._run_starts, name="vigil-escalation-start", daemon=True
        )
        self._starter.start()

    def _warn_about_settings(self) -> None:
        s = self.settings
        host = urlsplit(s.public_url).hostname or ""
        if self.providers.twilio_configured and (
            host in ("localhost", "") or host.startswith("127.")
        ):
            log.warning(
                "VIGIL_PUBLIC_URL is %s: Twilio cannot reach it, so key presses, SMS replies "
                "and delivery statuses will not arrive",
                s.public_url,
            )
        if self.store.is_postgres and (Path(s.data_dir) / "webhook_secret").exists():
            log.warning(
                "the webhook key was generated in this replica's data_dir; set "
                "VIGIL_WEBHOOK_SECRET to one value on every replica, or receivers will refuse "
                "some replicas' webhooks"
            )

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._stopping.set()
        self._wake.set()
        self._fresh_ready.set()
        for thread in (self._thread, self._starter):
            if thread is not None:
                thread.join(timeout=30)
        if self._pool is not None:
            # Sends under way finish (each is bounded by its timeout) and record what they got;
            # ones not started stay claimed, and go at this node's next start (reclaim).
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.providers.close()

    def wake(self) -> None:
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, AlertChanged) and (
            event.kind is Kind.ALERT_DURESS
            or (event.kind is Kind.ALERT_RAISED and event.alert.get("duress") is True)
        ):
            # The worker's phone, if a call from the console rings it, stops now: through
            # Twilio, so on a sending thread, not this committing one.
            with contextlib.suppress(RuntimeError):  # the pool is shutting down
                if self._pool is not None:
                    self._pool.submit(self._isolated, self._stop_calls, event.alert_id)
        if isinstance(event, AlertChanged) and event.kind is Kind.ALERT_RAISED:
            # Started from here, with its steps due at once: no tick needed for it.
            if self._claim(event.alert_id):  # else the tick found it first and is starting it
                self._fresh.append(event.alert_id)
                self._fresh_ready.set()
        elif event.kind in WAKING:
            if isinstance(event, AlertChanged) and event.kind in CLOSING:
                self._closed.append(event.alert_id)
            self.wake()

    def load_default_policy(self) -> None:
        """Load the shipped policy into an empty store (never over anything stored)."""
        parsed = policies.parse_file(policies.DEFAULT_POLICY_FILE.read_text())
        try:
            with self.store.begin() as db:
                if db.scalar(select(exists().where(Policy.id.isnot(None)))) or db.scalar(
                    select(exists().where(Contact.id.isnot(None)))
                ):
                    return
                policies.replace_all(db, parsed)
        except IntegrityError:
            return  # another replica starting at the same moment loaded it
        log.info("no escalation policy was stored: loaded the default policy")

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            # Cleared first: a wake during the tick makes the next pass look again.
            self._wake.clear()
            next_tick = time.monotonic() + self.settings.escalation_tick_s
            try:
                self.tick()
            except Exception:
                # A fault here must not end escalation for good; the next tick tries again.
                log.exception("escalation tick failed")
            self._wake.wait(max(0.0, next_tick - time.monotonic()))

    def _run_starts(self) -> None:
        """Start the alerts raised here as their events come, without the tick's look for
        them first: the first contact's phone waits for every query on this path, and for
        none of the tick's (another alert's due steps, a sweep, a row lock it waits for).
        An alert the tick finds meanwhile is started once: both take its lock first."""
        while not self._stopping.is_set():
            self._fresh_ready.wait()
            self._fresh_ready.clear()
            while self._fresh and not self._stopping.is_set():
                self._start_claimed(self._fresh.popleft())

    def tick(self) -> None:
        # Look first with a reader: on SQLite a write transaction takes the one write lock,
        # and most ticks find nothing to do.
        with self.store.session() as db:
            starting = flows.alerts_without_escalation(db)
            changing = flows.escalations_to_change(db)
            steps_due = flows.any_step_due(db)
            sends_due = delivery.any_sendable(db)
        # Each item in a transaction of its own, and a fault in one is logged and skipped:
        # one bad row must not stop every other alert's escalation.
        for alert_id in starting:
            if self._claim(alert_id):
                self._start_claimed(alert_id)
        for esc_id in changing:
            self._isolated(self._settle, esc_id)
        if steps_due or starting or changing:
            while not self._stopping.is_set() and self._run_one_step():
                pass
        self._restore_owed()
        if sends_due and not self._stopping.is_set():
            free = self.settings.escalation_senders - self._in_flight
            if free > 0:
                with self.store.begin() as db:
                    claimed = delivery.claim(
                        db, self.node, free, self.settings.escalation_attempts + 2
                    )
                self._send_all(claimed)

    def _claim(self, alert_id: int) -> bool:
        with self._claims:
            if alert_id in self._claimed:
                return False
            self._claimed.add(alert_id)
            return True

    def _start_claimed(self, alert_id: int) -> None:
        try:
            self._isolated(self._start, alert_id)
        finally:
            with self._claims:
                self._claimed.discard(alert_id)

    def _isolated(self, action: Callable[[int], None], key: int) -> None:
        try:
            action(key)
        except Exception:
            log.exception("escalation: %s(%s) failed; trying again next tick", action.__name__, key)

    def _restore_owed(self) -> None:
        """Queue the restores that alarm-receiving centres are owed (escalation.restores)."""
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + RESTORE_SWEEP_S
            with self.store.session() as db:
                self._closed.extend(restores.owed(db))
        while self._closed and not self._stopping.is_set():
            self._isolated(self._restore, self._closed.popleft())

    def _restore(self, alert_id: int) -> None:
        with self.store.begin() as db:
            to_send = restores.queue(db, alert_id, self.node)
        self._send_all(to_send)

    def _stop_calls(self, alert_id: int) -> None:
        calls.stop_ringing_worker(self.store, self.providers, alert_id)

    def _settle(self, esc_id: int) -> None:
        with self.store.begin() as db:
            flows.settle(db, esc_id)

    def _start(self, alert_id: int) -> None:
        try:
            with self.store.begin() as db:
                found = flows.lock_to_start(db, alert_id)
                if found is None:
                    return  # started meanwhile (here or by another replica), or taken
                to_send = flows.start_now(db, found, self.node, self.settings)
        except IntegrityError:
            log.info("alert %s: escalation started by another replica", alert_id)
            return
        self._send_all(to_send)

    def _run_one_step(self) -> bool:
        """Claim and run one due step in its own transaction; False when none is due."""
        with self.store.session() as db:
            candidate = flows.due_step_candidate(db)
        if candidate is None:
            return False
        step_id, alert_id = candidate
        try:
            with self.store.begin() as db:
                alert = alerts.get(db, alert_id, for_update=True)
                step = flows.claim_step(db, step_id)
                if step is None:
                    # Another replica holds it or ran it meanwhile: look again, in a moment.
                    self._stopping.wait(0.01)
                    return True
                to_send = flows.run_step(db, step, alert, self.node, self.settings).sent
        except Exception as exc:
            log.exception("escalation step %s failed", step_id)
            with self.store.begin() as db:
                flows.fail_step(db, step_id, f"{type(exc).__name__}: {exc}")
            return True
        self._send_all(to_send)
        return True

    # -- sending --------------------------------------------------------------------------

    def _send_all(self, outgoing: list[Outgoing]) -> None:
        """Hand notifications, claimed and committed, to the sending threads."""
        assert self._pool is not None
        for item in outgoing:
            with self._count:
                self._in_flight += 1
            self._pool.submit(self._send_logged, item)

    def _send_logged(self, item: Outgoing) -> None:
        try:
            self._send(item)
        except Exception:
            # Left claimed: this node's restart or the lease's end sends it again.
            log.exception("notification %s: could not send or record", item.id)
        finally:
            with self._count:
                self._in_flight -= 1

    def _send(self, item: Outgoing) -> None:
        # A last look: it may have waited for a thread long enough to be claimed again, or
        # the worker it was for may have keyed the duress PIN meanwhile.
        if delivery.needs_last_look(item):
            with self.store.session() as db:
                why_not = delivery.still_to_send(db, item)
            if why_not is not None:
                with self.store.begin() as db:
                    delivery.record_skip(db, item, why_not)
                return
        try:
            sent = channels.get(item.channel).send(item, self.providers)
        except (Retry, Failed) as exc:
            with self.store.begin() as db:
                delivery.record_failure(
                    db, item, str(exc), retry=isinstance(exc, Retry), settings=self.settings
                )
            self.wake()  # a retry falls due, or the next step was brought forward
            return
        with self.store.begin() as db:
            delivery.record_sent(db, item, sent.status, sent.sid)
        if item.channel == Arc.name:
            # Taken after its alert closed? Then the centre is owed the restore now.
            self._closed.append(item.alert_id)
            self.wake()
