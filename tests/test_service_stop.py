"""A service whose start failed part way is stopped all the same (the demo's and the tests'
`finally`): what did start is stopped, the store is closed, and nothing raises in its place."""

from __future__ import annotations

from pathlib import Path

from monitor.config import Settings
from monitor.server import Service


def test_a_service_that_never_started_stops_without_error(tmp_path: Path) -> None:
    service = Service(Settings(data_dir=tmp_path))
    service.stop()  # raised "cannot join thread before it is started" from the scheduler
    assert not service.scheduler.is_alive()
