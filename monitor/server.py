"""`vigil serve`: the store, MQTT ingest, scheduler and HTTP API in one process."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import uvicorn

from monitor.api import create_app
from monitor.config import Settings
from monitor.db import Store
from monitor.fanout import Fanout
from monitor.ingest.runner import Ingest
from monitor.migrate import upgrade

log = logging.getLogger(__name__)


def with_secret_key(settings: Settings) -> Settings:
    """Settings with a token-signing key: the configured one, or one kept in data_dir."""
    if settings.secret_key:
        return settings
    path = Path(settings.data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return settings.model_copy(update={"secret_key": path.read_text().strip()})


class Service:
    """Everything `vigil serve` runs; tests and the demo start it the same way."""

    def __init__(self, settings: Settings, *, migrate: bool = True) -> None:
        self.settings = with_secret_key(settings)
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.sqlalchemy_url)
        if migrate:
            upgrade(self.store)
        self.ingest = Ingest(self.store, self.settings)
        # Replicas share one PostgreSQL; each one's consoles must see the others' changes.
        self.fanout = (
            Fanout(self.store, self.settings.mqtt_node) if self.store.is_postgres else None
        )
        self.app = create_app(self.settings, self.store)

    def start(self, wait_s: float = 0.0) -> None:
        if self.fanout is not None:
            self.fanout.start()
        self.ingest.start(wait_s)

    def stop(self, *, end_session: bool = False) -> None:
        self.ingest.stop(end_session=end_session)
        if self.fanout is not None:
            self.fanout.stop()
        self.store.dispose()

    def serve(self) -> None:
        """Serve HTTP until SIGINT/SIGTERM, then stop everything cleanly (call start first)."""
        config = uvicorn.Config(
            self.app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_level="info",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        try:
            server.run()
        finally:
            self.stop()
