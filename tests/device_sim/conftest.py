"""Fixtures for the device simulator's tests: a private Mosquitto and a plain paho "service"."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sim_support import Mosquitto, Seen, Service, protocol_problems

from device_sim.device import SimDevice


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One anonymous broker for the session; tests use distinct device ids."""
    server = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that stop and restart it."""
    server = Mosquitto(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def service(broker: Mosquitto) -> Iterator[Service]:
    svc = Service(broker.port)
    yield svc
    svc.close()


@pytest.fixture
def make_device(broker: Mosquitto) -> Iterator[Callable[..., SimDevice]]:
    """Build SimDevices on the session broker; all are disconnected cleanly afterwards."""
    made: list[SimDevice] = []

    def make(device_id: str, **kwargs: Any) -> SimDevice:
        kwargs.setdefault("port", broker.port)
        device = SimDevice(device_id=device_id, secret="s3cret", **kwargs)
        made.append(device)
        return device

    yield make
    for device in made:
        device.disconnect(timeout=0.5)


@pytest.fixture
def assert_valid() -> Callable[[Seen], dict[str, Any]]:
    """Assert a seen message is valid PROTOCOL.md v1 (size, JSON, fields) and return its body."""

    def check(seen: Seen) -> dict[str, Any]:
        assert len(seen.payload) <= 16 * 1024, f"{seen.topic}: over 16 KiB"
        body = json.loads(seen.payload.decode("utf-8"))
        problems = protocol_problems(seen.suffix, body)
        assert not problems, f"{seen.topic} {body}: {problems}"
        assert isinstance(body, dict)
        return body

    return check
