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
