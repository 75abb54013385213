"""Prometheus metrics for the service, served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from monitor.events import AlertChanged, Event, EventBus, Kind, MessagesRefused

MESSAGES = Counter(
    "vigil_device_messages_total", "Device messages received (valid or not)", ["suffix"]
)
REFUSED = Counter("vigil_device_messages_refused_total", "Device messages refused", ["code"])
ALERTS_RAISED = Counter("vigil_alerts_raised_total", "Alerts raised", ["type"])
ALERT_INGEST = Histogram(
    "vigil_alert_ingest_seconds",
    "From receipt of an alert message to its acknowledgement (stored and answered)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
TELEMETRY_BATCH = Histogram(
    "vigil_telemetry_batch_size",
    "Rows per telemetry transaction",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500),
)
QUEUE_DEPTH = Gauge("vigil_ingest_queue_depth", "Messages waiting to be processed", ["path"])
COMMANDS_SENT = Counter("vigil_device_commands_total", "Commands published to devices", ["type"])
STORE_ERRORS = Counter(
    "vigil_store_errors_total", "Transactions that failed and were retried", ["path"]
)
CAUTIONS_EXPIRED = Counter(
    "vigil_cautions_expired_total",
    "Cautions about places deleted VIGIL_CAUTION_KEEP_DAYS after their expiry date",
)
SCHEDULER_FAILURES = Counter(
    "vigil_scheduler_failures_total",
    "Scheduler jobs that failed in a tick, or for one of the things due (tried next tick)",
    ["job"],
)


# Counters that telemetry processes add to (monitor/ingest/processes.py): each child sends
# what it counted since its last report, and the service's process adds it to its own, so
# /metrics counts every process.
RELAYED = (MESSAGES, REFUSED, COMMANDS_SENT, STORE_ERRORS)
# (which of RELAYED, its labels) -> a count.
Counts = dict[tuple[int, tuple[tuple[str, str], ...]], float]


def relayed_counts() -> Counts:
    """The relayed counters' totals in this process."""
    totals: Counts = {}
    for index, counter in enumerate(RELAYED):
        for metric in counter.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    totals[(index, tuple(sorted(sample.labels.items())))] = sample.value
    return totals


def counted_since(before: Counts, now: Counts) -> Counts:
    return {key: n - before.get(key, 0.0) for key, n in now.items() if n > before.get(key, 0.0)}


def add_counts(counts: Counts) -> None:
    """Add what another process counted to this one's counters."""
    for (index, labels), n in counts.items():
        RELAYED[index].labels(**dict(labels)).inc(n)


def watch(bus: EventBus) -> None:
    """Count what was committed, once: work retried after a failure is not counted twice."""

    def raised(event: Event) -> None:
        assert isinstance(event, AlertChanged)
        ALERTS_RAISED.labels(event.alert["type"]).inc()

    def refused(event: Event) -> None:
        assert isinstance(event, MessagesRefused)
        REFUSED.labels(event.code).inc(event.count)

    bus.subscribe(raised, Kind.ALERT_RAISED)
    bus.subscribe(refused, Kind.DEVICE_REFUSED)
