"""A gateway's message (`Ingest.submit`) tells its gateway whether it was stored or refused,
and whether a refusal means "send it again": the gateway's answer to its client rests on it."""

from __future__ import annotations

import json
from pathlib import Path

from device_sim.protocol import now_ms
from monitor.db import Store
from monitor.ingest.runner import Ingest
from monitor.migrate import upgrade
from tests.fast.handlers import Handlers, fast_settings


def _alert(alert_id: str) -> bytes:
    return json.dumps({"v": 1, "ts": now_ms(), "id": alert_id, "type": "red"}).encode()


def test_stored_and_refused_are_told_apart(svc: Handlers) -> None:
    badge, _ = svc.badge("badge-handed")
    ingest = svc.ingest
    stored = ingest.submit(f"vigil/v1/{badge.device_id}/alert", _alert("alert-0001"))
    assert stored.wait(10) and stored.refusal is None and not stored.retry_later
    unknown = ingest.submit("vigil/v1/nobody-here/alert", _alert("alert-0002"))
    assert unknown.wait(10) and unknown.refusal is not None
    assert unknown.refusal.code == "unknown_device" and not unknown.retry_later


def test_a_full_line_is_refused_for_now(db_url: str, tmp_path: Path) -> None:
    """A device whose line is full: its next message is refused at once, as one to send
    again (the gateway answers 503), not taken as stored."""
    settings = fast_settings(tmp_path / "data", db_url, urgent_per_device=1)
    store = Store(settings.sqlalchemy_url)
    upgrade(store)
    ingest = Ingest(store, settings)  # never started: nothing leaves the device's line
    try:
        waiting = ingest.submit("vigil/v1/badge-full/alert", _alert("alert-0001"))
        again = ingest.submit("vigil/v1/badge-full/alert", _alert("alert-0002"))
        assert again.wait(1) and again.refusal is not None
        assert again.refusal.code == "overloaded" and again.retry_later
        assert not waiting.done.is_set()
    finally:
        store.dispose()
