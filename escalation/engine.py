"""The step runner: starts escalations, runs due steps once, and sends notifications.

One thread decides (short transactions, rows claimed with FOR UPDATE SKIP LOCKED, so two
replicas never run the same step); a pool of threads sends, so a slow Twilio or webhook
holds up only its own notification. Alert events wake the thread at once; a tick catches
whatever an event did not bring (a crash, another replica, a step falling due).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from escalation import flows, policies
from escalation.models import Contact, Escalation, Notification, Policy
from escalation.providers import Channels, Failed, Outgoing, Retry
from monitor.alerts import service as alerts
from monitor.config import Settings
from monitor.db import Store
from monitor.events import Event

log = logging.getLogger(__name__)

# The alert events that may change what the escalation must do.
WAKING = frozenset(
    {"alert.raised", "alert.acknowledged", "alert.resolved", "alert.cancelled", "alert.duress"}
)


class Engine:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.node = settings.mqtt_node
        self.channels = Channels(settings)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._unsubscribe: list[object] = []

    # -- lifecycle (monitor.api.Runner) ---------------------------------------------------

    def start(self) -> None:
        if self.settings.escalation_default_policy:
            self.load_default_policy()
        with self.store.begin() as db:
            if again := flows.reclaim(db, self.node):
                log.warning("%d notifications were being sent when this node stopped", again)
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(
            self.settings.escalation_senders, thread_name_prefix="vigil-notify"
        )
        # Local events only: the replica that made a change wakes; the others' ticks
        # would find nothing left to do anyway.
        self._unsubscribe = [self.store.bus.subscribe(self._on_event, "alert.")]
        self._thread = threading.Thread(target=self._run, name="vigil-escalation", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()  # type: ignore[operator]
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._pool is not None:
            # Sends under way finish (each is bounded by its timeout) and record what they got;
            # ones not started stay claimed and are sent again when their lease runs out.
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.channels.close()

    def wake(self) -> None:
        self._wake.set()

    def _on_event(self, event: Event) -> None:
        if event.kind in WAKING:
            self._wake.set()

    def load_default_policy(self) -> None:
        """Load the shipped policy into an empty store (never over anything stored)."""
        parsed = policies.parse_file(Path(policies.DEFAULT_POLICY_FILE).read_text())
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
            try:
                self.tick()
            except Exception:
                # A fault here must not end escalation for good; the next tick tries again.
                log.exception("escalation tick failed")
            self._wake.wait(self.settings.escalation_tick_s)
            self._wake.clear()

    def tick(self) -> None:
        # Look first with a reader: on SQLite a write transaction takes the one write lock,
        # and most ticks find nothing to do.
        with self.store.session() as db:
            starting = flows.alerts_without_escalation(db)
            changing = flows.escalations_to_change(db)
            steps_due, sends_due = flows.due(db)
        for alert_id in starting:
            self._start(alert_id)
        for esc_id in changing:
            with self.store.begin() as db:
                flows.settle(db, esc_id)
        if steps_due or starting or changing:
            while not self._stopping.is_set() and self._run_one_step():
                pass
        if sends_due:
            with self.store.begin() as db:
                claimed = flows.claim_notifications(db, self.node, limit=50)
            self._send_all(claimed)

    def _start(self, alert_id: int) -> None:
        to_send: list[Outgoing] = []
        try:
            with self.store.begin() as db:
                alert = alerts.get(db, alert_id, for_update=True)
                if db.scalar(select(Escalation.id).where(Escalation.alert_id == alert_id)):
                    return  # another replica started it meanwhile
                esc = flows.start(db, alert)
                # Steps due at once (the console, the first SMS) run in the same transaction:
                # the first contact's phone is what this path is measured by.
                while (step := flows.next_due_step(db, esc.id)) is not None:
                    to_send += flows.run_step(db, step, alert, self.node, self.settings)
        except IntegrityError:
            log.info("alert %s: escalation started by another replica", alert_id)
            return
        self._send_all(to_send)

    def _run_one_step(self) -> bool:
        """Claim and run one due step in its own transaction; False when none is due."""
        with self.store.begin() as db:
            step = flows.claim_due_step(db)
            if step is None:
                return False
            alert = alerts.get(db, step.alert_id, for_update=True)
            to_send = flows.run_step(db, step, alert, self.node, self.settings)
        self._send_all(to_send)
        return True

    # -- sending --------------------------------------------------------------------------

    def _send_all(self, outgoing: list[Outgoing]) -> None:
        """Hand notifications, claimed and committed, to the sending threads."""
        assert self._pool is not None
        for item in outgoing:
            self._pool.submit(self._send, item)

    def _send(self, item: Outgoing) -> None:
        try:
            sent = self.channels.send(item)
        except (Retry, Failed) as exc:
            self._record(item, error=str(exc), retry=isinstance(exc, Retry))
            return
        except Exception as exc:
            log.exception("notification %s: unexpected error", item.id)
            self._record(item, error=f"{type(exc).__name__}: {exc}", retry=True)
            return
        with self.store.begin() as db:
            n = db.get(Notification, item.id, with_for_update=True)
            assert n is not None
            flows.record_sent(db, n, alerts.get(db, n.alert_id), sent.status, sent.sid)

    def _record(self, item: Outgoing, *, error: str, retry: bool) -> None:
        with self.store.begin() as db:
            n = db.get(Notification, item.id, with_for_update=True)
            assert n is not None
            flows.record_failure(
                db, n, alerts.get(db, n.alert_id), error, retry=retry, settings=self.settings
            )
        self._wake.set()  # a retry falls due, or the next step was brought forward
