"""Telemetry in processes of its own: `VIGIL_INGEST_PROCESSES` children that store location
and heartbeat traffic, sharing it through an MQTT shared subscription.

One process with the telemetry session's reader and the writer is bound by one interpreter
lock; more processes use more cores, and leave the service's own process to alerts. Each
child has a persistent session named for its index, so a restarted child gets what the
broker queued for it. A session the configuration no longer uses (fewer processes than
before) is retired, or the broker would go on handing it its share of the traffic.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

from paho.mqtt.subscribeoptions import SubscribeOptions

from monitor import heap, metrics
from monitor.config import Settings
from monitor.db import Store
from monitor.devices.commands import mark_sent
from monitor.events import Kind
from monitor.fanout import Fanout
from monitor.ingest.bulklink import BulkLink
from monitor.ingest.items import item_of
from monitor.ingest.link import Incoming, MqttLink, subscription
from monitor.ingest.replies import Replies
from monitor.ingest.telemetry import TelemetryWriter
from monitor.protocol import TELEMETRY

log = logging.getLogger(__name__)

# Records in data_dir how many children have sessions at the broker, so that a start with
# fewer knows which ones to retire.
MARKER = "ingest-processes"
# A retired session is drained once nothing has arrived for this long.
QUIET_S = 2.0
RESTART_DELAY_S = 1.0
# How often a child reports what it counted (`metrics.RELAYED`) and its queue's depth.
REPORT_S = 1.0
# (child index, what it counted since its last report, messages waiting in it)
Report = tuple[int, metrics.Counts, int]


# `status` stays with the service's own telemetry session: a shared subscription is sent no
# retained message, so a device's retained `status` would go unread at first start, and an
# alert raised from a last will (offline during a visit) is escalated at once only in the
# service's process. Status messages are few: a device's connects and disconnects.
SHARED = sorted(TELEMETRY - {"status"})


def shared_subscriptions(
    settings: Settings, suffixes: list[str] = SHARED
) -> list[tuple[str, SubscribeOptions]]:
    # Replicas' children join the replicas' group; alone, a service's children have one of
    # their own (never one shared with another service on the same broker).
    group = settings.mqtt_shared_group or f"vigil-{settings.mqtt_node}-telemetry"
    return [subscription(settings, s, group=group) for s in suffixes]


def topics_of(subscriptions: list[tuple[str, SubscribeOptions]]) -> list[str]:
    return [topic for topic, _ in subscriptions]


def child_name(index: int) -> str:
    return f"telemetry-{index}"


def child_sessions(settings: Settings) -> list[str]:
    """Names of the children's sessions at the broker: those configured, and those of an
    earlier, larger configuration that may not be retired yet."""
    return [child_name(i) for i in range(max(settings.telemetry_processes, _read_marker(settings)))]


class TelemetryChild:
    """What runs in one child: a link on the shared topics, the writer, the event relay."""

    def __init__(
        self,
        settings: Settings,
        index: int,
        *,
        subscribed: EventType | None = None,
        end_session: EventType | None = None,
        reports: Queue[Report] | None = None,
    ) -> None:
        self.settings = settings
        self.subscribed = subscribed
        self.end_session = end_session
        self.index = index
        self.reports = reports
        self._reported: metrics.Counts = {}
        self.store = Store(settings.sqlalchemy_url)
        # Position and low-battery events reach the consoles through the service's process.
        self.fanout = Fanout(self.store, f"{settings.mqtt_node}-{child_name(index)}", listen=False)
        self.writer = TelemetryWriter(self.store, settings)
        self.link = BulkLink(
            settings,
            child_name(index),
            shared_subscriptions(settings),
            self._on_message,
            # Children of earlier versions took `status` too, and a session keeps its
            # subscriptions.
            drop=topics_of(shared_subscriptions(settings, ["status"])),
        )
        self.replies = Replies(self.link)
        self.writer.send_reply = self.replies.send
        # Commands this process queues (the state sent to a device coming online) go out from
        # here at once; the service's scheduler publishes again any it does not mark sent.
        self.store.bus.subscribe(self.replies.on_event, Kind.DEVICE_COMMAND)
        self.stopping = threading.Event()

    def _on_message(self, incoming: Incoming) -> None:
        # Only telemetry topics are subscribed here; a refusal is stored by the same writer.
        self.writer.put(item_of(incoming, self.settings)[0])

    def run(self) -> None:
        self.fanout.start()
        self.writer.start()
        self.link.start()
        try:
            parent = os.getppid()
            next_report = 0.0
            while not self.stopping.wait(0.1):
                self._mark_sent()
                if time.monotonic() >= next_report:
                    next_report = time.monotonic() + REPORT_S
                    self._report()
                if self.subscribed is not None and self.link.subscribed.is_set():
                    self.subscribed.set()
                if os.getppid() != parent:
                    log.error("%s: the service's process is gone; stopping", self.link.client_id)
                    break
        finally:
            # The writer first: the batch it is storing is acknowledged while the link is
            # still up, instead of being delivered again (and stored twice) after a restart.
            self.writer.stop()
            self.writer.join(10)
            ended = self.end_session is not None and self.end_session.is_set()
            self.link.stop(end_session=ended)
            self._report()
            self.fanout.stop()
            self.store.dispose()

    def _report(self) -> None:
        """Tell the service's process what this one counted since the last report, and how
        many messages wait to be stored here."""
        if self.reports is None:
            return
        now = metrics.relayed_counts()
        self.reports.put(
            (self.index, metrics.counted_since(self._reported, now), self.writer.depth())
        )
        self._reported = now

    def _mark_sent(self) -> None:
        done = self.replies.take_published()
        if not done:
            return
        try:
            with self.store.begin() as db:
                mark_sent(db, done)
        except Exception:
            log.exception("could not mark %d commands sent; they are published again", len(done))


def child_main(
    settings_json: str,
    index: int,
    subscribed: EventType,
    end_session: EventType,
    reports: Queue[Report],
) -> None:
    """The entry point of a child process (started with `spawn`)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    child = TelemetryChild(
        Settings.model_validate_json(settings_json),
        index,
        subscribed=subscribed,
        end_session=end_session,
        reports=reports,
    )
    signal.signal(signal.SIGTERM, lambda *_: child.stopping.set())
    # Ctrl-C reaches the whole process group; the service stops its children itself, after
    # its supervisor has stopped restarting them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    heap.settle()
    child.run()


@dataclass
class Child:
    proc: BaseProcess
    # Kept as long as the process: the child opens the semaphore behind it when it starts.
    subscribed: EventType


class TelemetryProcesses:
    """Starts, restarts and stops the children, and retires sessions no longer configured.

    A change of configuration never leaves a moment in which nobody subscribes to telemetry
    (the broker would drop what comes meanwhile): the new subscribers are confirmed first,
    then the old ones drop theirs; a message in between may be stored twice. A retired
    session is drained by the service's own writer: connected under its name, it drops its
    subscriptions, stores what the broker queued for it, and is ended.
    """

    def __init__(
        self,
        settings: Settings,
        service_link: BulkLink,
        on_message: Callable[[Incoming], None],
        idle: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.count = settings.telemetry_processes
        self.service_link = service_link
        self._on_message = on_message
        self._idle = idle
        self._marker = Path(settings.data_dir) / MARKER
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[int, Child] = {}
        self._stop = threading.Event()
        # Set before stopping for good: the children end their sessions at the broker.
        self._end_session = self._ctx.Event()
        # What the children counted, added to this process's metrics (/metrics), and how
        # many messages wait in each.
        self._reports: Queue[Report] = self._ctx.Queue()
        self._depths: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name="vigil-ingest-procs", daemon=True)
        self.started = threading.Event()

    @staticmethod
    def needed(settings: Settings) -> bool:
        """Whether there are children to run or earlier sessions to retire."""
        return settings.telemetry_processes > 0 or _read_marker(settings) > 0

    def start(self) -> None:
        self._thread.start()

    @property
    def pids(self) -> list[int | None]:
        """The children's process ids, by index (for operators' tools and tests)."""
        return [self._procs[i].proc.pid for i in sorted(self._procs)]

    def stop(self, *, end_session: bool = False) -> None:
        self._stop.set()
        if end_session:
            self._end_session.set()
        self._thread.join(30)
        procs = [c.proc for c in self._procs.values()]
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(15)
            if proc.is_alive():
                log.error("ingest process %s did not stop; killing it", proc.pid)
                proc.kill()
                proc.join(5)
        self._add_counts()
        if end_session and all(p.exitcode == 0 for p in procs):
            self._write_marker(0)

    def _spawn(self, index: int) -> Child:
        subscribed = self._ctx.Event()
        proc = self._ctx.Process(
            target=child_main,
            args=(
                self.settings.model_dump_json(),
                index,
                subscribed,
                self._end_session,
                self._reports,
            ),
            name=f"vigil-{child_name(index)}",
        )
        proc.start()
        return Child(proc, subscribed)

    def _wait(self, event: threading.Event | EventType) -> bool:
        while not event.wait(0.2):
            if self._stop.is_set():
                return False
        return True

    def _run(self) -> None:
        before = _read_marker(self.settings)
        if self.count > before:
            self._write_marker(self.count)
        self._procs = {i: self._spawn(i) for i in range(self.count)}
        if not all(self._wait(c.subscribed) for c in self._procs.values()):
            return
        # Without children this session takes telemetry again; with them it drops it.
        self.service_link.start()
        link_ready = self.service_link.dropped if self.count else self.service_link.subscribed
        if not self._wait(link_ready):
            return
        if self.count < before and self._retire(range(self.count, before)):
            self._write_marker(self.count)
        self.started.set()
        while not self._stop.wait(RESTART_DELAY_S):
            self._add_counts()
            for index, child in list(self._procs.items()):
                if not child.proc.is_alive():
                    log.error(
                        "ingest process %s (pid %s) ended with %s; starting it again",
                        index,
                        child.proc.pid,
                        child.proc.exitcode,
                    )
                    self._procs[index] = self._spawn(index)

    def _add_counts(self) -> None:
        while True:
            try:
                index, counted, depth = self._reports.get_nowait()
            except (queue.Empty, OSError, ValueError):
                return
            metrics.add_counts(counted)
            self._depths[index] = depth

    def depth(self) -> int:
        """Messages the children have taken and not yet stored, as last reported."""
        return sum(self._depths.values())

    def _retire(self, indexes: range) -> bool:
        last = [time.monotonic()]

        def on_message(incoming: Incoming) -> None:
            last[0] = time.monotonic()
            self._on_message(incoming)

        drop = topics_of(shared_subscriptions(self.settings, sorted(TELEMETRY)))
        links = [MqttLink(self.settings, child_name(i), [], on_message, drop=drop) for i in indexes]
        for link in links:
            link.start()
        drained = False
        try:
            while not self._stop.wait(0.1):
                if (
                    all(link.dropped.is_set() for link in links)
                    and time.monotonic() - last[0] > QUIET_S
                    and self._idle()
                ):
                    drained = True
                    break
        finally:
            for link in links:
                link.stop(end_session=drained)
        if drained:
            log.info("retired the sessions of ingest processes %s", list(indexes))
        return drained

    def _write_marker(self, count: int) -> None:
        self._marker.parent.mkdir(parents=True, exist_ok=True)
        self._marker.write_text(f"{count}\n")


def _read_marker(settings: Settings) -> int:
    path = Path(settings.data_dir) / MARKER
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0
