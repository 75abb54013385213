"""The fast tier's service: Vigil's own service without its MQTT sessions, device messages
fired straight into the urgent and telemetry workers (Home Assistant's
`async_fire_mqtt_message` is the model).

Everything from the parsed message to the committed rows and the reply is the real code: the
message is parsed by `item_of` and handed to the worker of its path as the MQTT thread hands
it (`Ingest._on_message`); the workers run on their own threads against a real store; replies
go through the service's own `Replies`, whose link here records what it would publish instead
of publishing it. What only the broker does (acknowledgement after commit, redelivery,
retained messages, ACLs, sessions) is the end-to-end tier's.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from device_sim.commands import Command, CommandLog
from device_sim.device import DeviceMessages
from device_sim.protocol import ALERT, HEARTBEAT, LOCATE, LOCATION, topic
from monitor.config import Settings
from monitor.ingest.items import item_of
from monitor.ingest.link import Incoming
from monitor.server import Service
from tests.support import TEST_TIMERS, WAIT_S, Badge, SignsIn, add_badge

# How long a fired message may take to be stored (or refused) and acknowledged.
HANDLED_WITHIN_S = 10.0


@dataclass(frozen=True)
class Published:
    """What the link returns for a publish: the recorder has it at once."""

    def is_published(self) -> bool:
        return True


class Airwaves:
    """Stands where the service's MQTT link would: what the service publishes is recorded
    (commands to each device in its `CommandLog`), and what the workers acknowledge is noted,
    so that firing a message can wait until it is handled."""

    def __init__(self) -> None:
        self.logs: defaultdict[str, CommandLog] = defaultdict(lambda: CommandLog("?"))
        self.published: list[tuple[str, bytes, bool]] = []
        self._acked: set[int] = set()
        self._changed = threading.Condition()
        self._mids = itertools.count(1)
        self.devices: dict[str, FastDevice] = {}

    def log(self, device_id: str) -> CommandLog:
        with self._changed:
            if device_id not in self.logs:
                self.logs[device_id] = CommandLog(device_id)
            return self.logs[device_id]

    # The side of MqttLink that Replies and Incoming use.
    def publish(
        self, topic: str, payload: bytes, qos: int = 1, *, retain: bool = False
    ) -> Published:
        with self._changed:
            self.published.append((topic, payload, retain))
        parts = topic.split("/")
        if len(parts) == 4 and parts[:2] == ["vigil", "v1"] and parts[3] == "cmd":
            command = Command.parse(payload)
            device = self.devices.get(parts[2])
            if device is not None and command.type == LOCATE:
                # As `SimDevice` does: it answers with a fix (not waited for, on this thread).
                device.send_location(qos=1)
            self.log(parts[2]).append(command)
        return Published()

    def ack(self, mid: int, qos: int, generation: int) -> None:
        with self._changed:
            self._acked.add(mid)
            self._changed.notify_all()

    def next_mid(self) -> int:
        return next(self._mids)

    def wait_acked(self, mid: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: mid in self._acked, timeout)


class Handlers(SignsIn):
    """The service with its ingest workers running and no MQTT: `fire` hands a device message
    to them as the MQTT thread does, and returns once it is stored (or refused), answered and
    acknowledged. Shaped like `tests.support.Running` (store, http, user, badge), so a test of
    handling reads the same in both tiers."""

    def __init__(self, settings: Settings) -> None:
        self.air = Airwaves()
        self.devices: list[FastDevice] = []
        self._build(settings)

    def _build(self, settings: Settings) -> None:
        self.settings = settings
        self.service = Service(settings)
        self.store = self.service.store
        self.ingest = self.service.ingest
        # The service's own replies, published into the recorder instead of the broker.
        self.ingest.replies.link = self.air  # type: ignore[assignment]
        self.scheduler = self.service.scheduler
        self.http = TestClient(self.service.app)

    def start(self) -> None:
        # The scheduler too: it expires held messages, raises overdue visits and marks
        # commands sent; with no link connected it resends nothing. And the extensions'
        # runners (escalation, push), which act on what ingest stores.
        self.ingest.telemetry.start()
        self.ingest.urgent.start()
        self.scheduler.start()
        for runner in self.service.app.state.runners:
            runner.start()
        self._started = True

    def stop(self) -> None:
        """Stop handling, as `Service.stop` does less the MQTT sessions."""
        if not getattr(self, "_started", False):
            return
        self._started = False
        for runner in reversed(self.service.app.state.runners):
            runner.stop()
        ingest = self.ingest
        ingest._unsubscribe()
        self.scheduler.stop()
        ingest.urgent.stop()
        ingest.telemetry.stop()
        for t in (self.scheduler, ingest.urgent, ingest.urgent.pins, ingest.telemetry):
            if t.is_alive():
                t.join(timeout=10)
        self.store.dispose()

    def restart(self, **changes: Any) -> None:
        """Stop, and start a new service on the same store (the devices keep what they were
        sent), as `Running.restart` does."""
        self.stop()
        self.http.close()
        self._build(self.settings.model_copy(update=changes))
        self.start()

    def close(self) -> None:
        self.stop()
        self.http.close()
        self.store.dispose()

    def fire(self, topic: str, payload: bytes | str, *, qos: int = 1, wait: bool = True) -> None:
        """Hand a device message to the worker of its path, as the MQTT thread does; with
        `wait`, return once the worker has acknowledged it (stored or refused, answered)."""
        data = payload.encode() if isinstance(payload, str) else payload
        mid = self.air.next_mid()
        incoming = Incoming(topic, data, qos, mid, False, self.air, 0)  # type: ignore[arg-type]
        item, urgent = item_of(incoming, self.settings)
        (self.ingest.urgent if urgent else self.ingest.telemetry).put(item)
        if wait:
            assert self.air.wait_acked(mid, HANDLED_WITHIN_S), f"{topic} was not handled"

    def badge(self, prefix: str, **kw: Any) -> tuple[FastDevice, Badge]:
        """A registered device; its id is `prefix` plus a random suffix, as in `Running`."""
        b = add_badge(self.store, f"{prefix}-{uuid.uuid4().hex[:6]}", **kw)
        d = FastDevice(self, b.device_id, b.cancel_pin, b.duress_pin)
        self.devices.append(d)
        self.air.devices[d.device_id] = d
        return d, b

    def device(self, device_id: str) -> FastDevice:
        """A device by id, registered or not."""
        return FastDevice(self, device_id)


class FastDevice(DeviceMessages):
    """A device of the fast tier: its messages are `device_sim`'s own (`DeviceMessages`), fired
    into the workers instead of published, and it reads the commands the service sent it.
    Each call but a fix or a heartbeat returns once the message is handled, so a device never
    needs to resend an unanswered alert."""

    def __init__(
        self, hub: Handlers, device_id: str, cancel_pin: str = "1234", duress_pin: str = "9876"
    ) -> None:
        super().__init__(device_id, cancel_pin, duress_pin)
        self.hub = hub
        self._seq = itertools.count(1)

    def _next_seq(self) -> int:
        return next(self._seq)

    def _send(self, suffix: str, body: dict[str, Any], qos: int) -> None:
        # Telemetry is not waited for (a batch takes what comes together, as from a device),
        # so a test waits for its effect; nor is the fix that answers a locate, which is sent
        # on the thread that publishes the command.
        wait = suffix not in (LOCATION, HEARTBEAT)
        self.hub.fire(topic(self.device_id, suffix), self._encode(body), qos=qos, wait=wait)

    def _send_alert(self, alert_id: str, body: dict[str, Any]) -> None:
        self._send(ALERT, body, 1)

    def publish_raw(
        self, suffix: str, payload: bytes | str, qos: int = 1, topic: str | None = None
    ) -> None:
        self.hub.fire(topic or f"vigil/v1/{self.device_id}/{suffix}", payload, qos=qos)

    @property
    def commands(self) -> list[Command]:
        return self.hub.air.log(self.device_id).snapshot()

    def wait_for(self, type: str, timeout: float = WAIT_S, **match: Any) -> Command:
        return self.hub.air.log(self.device_id).wait_for(type, timeout, match)


def fast_settings(data_dir: Path, db_url: str, **extra: Any) -> Settings:
    """`service_settings` less the broker: nothing here connects to one."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": db_url,
        "mqtt_node": "f" + uuid.uuid4().hex[:10],
        "secret_key": "test-secret-" + secrets.token_hex(16),
        **TEST_TIMERS,
    }
    values.update(extra)
    return Settings(**values)
