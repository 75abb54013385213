"""The fast tier: here `svc` is the service without its MQTT sessions, and a device's
messages are fired straight into its ingest workers (tests/fast/handlers.py). For what needs
the broker, the tests outside this folder start the whole service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fast.handlers import Handlers, fast_settings


@pytest.fixture
def svc(db_url: str, tmp_path: Path) -> Iterator[Handlers]:
    hub = Handlers(fast_settings(tmp_path / "data", db_url))
    try:
        hub.start()
        yield hub
    finally:
        hub.close()
