"""`vigil serve`: the store, MQTT ingest, scheduler and HTTP API in one process."""

from __future__ import annotations

import logging
import secrets
import signal
from pathlib import Path

import uvicorn

from monitor import heap
from monitor.api import create_app
from monitor.broker import PACKET_LIMIT
from monitor.config import Settings
from monitor.db import Store
from monitor.fanout import Fanout
from monitor.ingest.runner import Ingest
from monitor.logsafe import keep_secrets_out
from monitor.migrate import upgrade
from monitor.scheduler import Scheduler

log = logging.getLogger(__name__)


def kept_secret(data_dir: Path, name: str) -> str:
    """A random key made once and kept in data_dir, for a secret nobody configured."""
    path = Path(data_dir) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def with_secrets(settings: Settings) -> Settings:
    """Settings with the token-signing and webhook keys: configured, or kept in data_dir."""
    update = {
        name: kept_secret(settings.data_dir, name)
        for name in ("secret_key", "webhook_secret")
        if not getattr(settings, name)
    }
    return settings.model_copy(update=update) if update else settings


class Service:
    """Everything `vigil serve` runs; tests and the demo start it the same way."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = with_secrets(settings)
        keep_secrets_out()
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.sqlalchemy_url)
        if migrate:
            upgrade(self.store)
        self.ingest = Ingest(self.store, self.settings)
        replies = self.ingest.replies
        self.scheduler = Scheduler(
            self.store,
            self.settings,
            resend=replies.send_outbox,
            take_published=replies.take_published,
            can_send=self.ingest.urgent_link.connected.is_set,
        )
        # Replicas share one PostgreSQL; each one's consoles must see the others' changes.
        self.fanout = (
            Fanout(self.store, self.settings.mqtt_node) if self.store.is_postgres else None
        )
        self.app = create_app(self.settings, self.store)
        # What changes device credentials in a request brings the broker up to date before
        # answering (worker_app's enrolment), rather than at the scheduler's next tick.
        self.app.state.broker_sync = self.scheduler.broker_sync
        # Gateways (Traccar, OwnTracks, SMS and calls) hand in what they translate here.
        self.app.state.ingest = self.ingest

    def start(self, wait_s: float = 0.0) -> None:
        if self.fanout is not None:
            self.fanout.start()
        # The scheduler first: its timers must not wait while ingest waits for its links.
        self.scheduler.start()
        self.ingest.start(wait_s)
        for runner in self.app.state.runners:
            runner.start()

    def stop(self, *, end_session: bool = False) -> None:
        # Extensions first: they act on what ingest stores, and stop acting before it stops.
        for runner in reversed(self.app.state.runners):
            runner.stop()
        self.scheduler.stop()
        self.ingest.stop(end_session=end_session)
        if self.scheduler.is_alive():  # not if start failed before it: the rest still stops
            self.scheduler.join(timeout=10)
        if self.fanout is not None:
            self.fanout.stop()
        self.store.dispose()

    def http_config(
        self, host: str | None = None, port: int | None = None, log_level: str = "info"
    ) -> uvicorn.Config:
        """How uvicorn serves the app. X-Forwarded-For and -Proto are believed only from
        VIGIL_TRUSTED_PROXIES: uvicorn's own default, 127.0.0.1, would let anything on this
        machine (a proxy passing on what the client sent) choose the address that sign-in
        throttling and the audit log see."""
        trusted = self.settings.trusted_proxy_list
        return uvicorn.Config(
            self.app,
            host=self.settings.http_host if host is None else host,
            port=self.settings.http_port if port is None else port,
            log_level=log_level,
            timeout_graceful_shutdown=5,
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
            # No websocket message the service takes (a console's sign-in, an MQTT packet
            # relayed to the broker) may be larger than the broker would take: uvicorn's
            # default, 16 MiB, is what each open socket could make the service hold.
            ws_max_size=PACKET_LIMIT,
        )

    def serve(self) -> None:
        """Serve HTTP until SIGINT/SIGTERM, then stop everything cleanly (call start first)."""
        server = uvicorn.Server(self.http_config())
        # Once it has shut down, uvicorn raises the signal that stopped it again. With
        # SIGTERM's default action that ended the process there, before anything below ran:
        # the MQTT sessions were never closed and the telemetry processes were orphaned.
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
        heap.settle()
        try:
            server.run()
        finally:
            self.stop()
            signal.signal(signal.SIGTERM, previous)
