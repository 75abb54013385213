"""`vigil serve` with the tracker port (VIGIL_OSMAND_PORT): it opens with the service, takes
Traccar Client's requests there and on the main port, keeps the identifier out of the log,
and closes when the service is stopped."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
from sqlalchemy import select

from monitor.alerts.models import Alert
from monitor.broker import free_port, wait_for_port
from monitor.db import Store
from tests.fast.test_osmand import add_tracker, send
from tests.osmand_requests import Fix, android, sdk_form
from tests.support import Broker, serve_env, serve_process, service_settings, wait_until


def test_vigil_serve_opens_and_closes_the_tracker_port(mqtt_broker: Broker, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    settings = service_settings(tmp_path / "data", url, mqtt_broker)
    port, tracker_port = free_port(), free_port()
    env = {**serve_env(settings, port), "VIGIL_OSMAND_PORT": str(tracker_port)}
    log = tmp_path / "serve.log"
    proc = serve_process(env, log)
    store = None
    try:
        assert wait_for_port("127.0.0.1", port, 30), log.read_text()
        assert wait_for_port("127.0.0.1", tracker_port, 5), log.read_text()
        store = Store(url)
        device_id, identifier = add_tracker(store)
        with httpx.Client(base_url=f"http://127.0.0.1:{tracker_port}", timeout=10) as http:
            assert send(http, android("/", identifier, Fix(), alarm="sos")).status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            later = Fix(at_s=Fix().at_s + 60)
            assert send(http, android("/osmand", identifier, later)).status_code == 200
            assert send(http, sdk_form("/osmand", identifier, later)).status_code == 200

        def raised() -> list[str]:
            assert store is not None
            with store.session() as db:
                return list(db.scalars(select(Alert.type).where(Alert.device_id == device_id)))

        assert wait_until(raised, what="the tracker's alert") == ["red"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if store is not None:
            store.dispose()
    assert not wait_for_port("127.0.0.1", tracker_port, 0.5)
    text = log.read_text()
    # The access log has the request lines, without the identifier's secret.
    assert "/osmand?id=[redacted]" in text, text
    assert identifier.split(".")[1] not in text
