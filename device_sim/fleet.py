"""Fleet: many simulated workers and their devices on one shared network loop, driven by one
simulation thread."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from device_sim.credentials import DeviceCredentials
from device_sim.device import DEFAULT_POSITION, SimDevice
from device_sim.netloop import NetLoop
from device_sim.route import Walker
from device_sim.worker import Behaviour, SimWorker

log = logging.getLogger(__name__)

# Connections being opened at once: the broker's listen backlog drops more, and a dropped
# SYN would hold the shared loop for a second in paho's (blocking) connect.
CONNECT_WINDOW = 64


class Fleet:
    """Devices that walk, report, run visits and raise alerts at the configured rates.

    Every device's paho client runs on one shared NetLoop (one network thread for the
    fleet); all behaviour runs on one simulation thread that steps every worker a few times
    per reporting interval. `bind_addresses`, if given, are the local addresses devices
    connect from, in turn (127.0.0.x on loopback: a port range per address).
    """

    def __init__(
        self,
        devices: list[DeviceCredentials],
        host: str,
        port: int,
        place: tuple[float, float] = DEFAULT_POSITION,
        radius_m: float = 1500.0,
        location_every_s: float = 30.0,
        heartbeat_every_s: float = 60.0,
        alert_rate_per_hour: float = 0.5,
        visit_rate_per_hour: float = 1.0,
        seed: int | None = None,
        *,
        protocol: int = 5,
        alert_retry_s: float = 5.0,
        state_dir: Path | None = None,
        false_alarm_share: float = 0.8,
        cancel_after_s: tuple[float, float] = (15.0, 90.0),
        visit_duration_s: tuple[int, int] = (600, 2400),
        connect_timeout_s: float = 10.0,
        keepalive: int = 30,
        bind_addresses: tuple[str, ...] = (),
    ) -> None:
        if not devices:
            raise ValueError("a fleet needs at least one device")
        if location_every_s <= 0 or heartbeat_every_s <= 0:
            raise ValueError("reporting intervals must be > 0")
        if min(alert_rate_per_hour, visit_rate_per_hour) < 0:
            raise ValueError("rates must be >= 0")
        self.host, self.port, self.place = host, port, place
        self.behaviour = Behaviour(
            location_every_s=location_every_s,
            heartbeat_every_s=heartbeat_every_s,
            alert_rate_per_hour=alert_rate_per_hour,
            visit_rate_per_hour=visit_rate_per_hour,
            false_alarm_share=false_alarm_share,
            cancel_after_s=cancel_after_s,
            visit_duration_s=visit_duration_s,
        )
        self.connect_timeout_s = connect_timeout_s
        # Several steps per interval keep reports on time; never slower than 1 Hz for walking.
        self.tick_s = max(0.05, min(1.0, location_every_s / 5, heartbeat_every_s / 5))
        rng = random.Random(seed)
        self.loop = NetLoop("sim-fleet-net")
        self._workers: list[SimWorker] = []
        for n, cred in enumerate(devices):
            # One generator per worker, seeded from the fleet's, so a seed fixes each route.
            own = random.Random(rng.getrandbits(64))
            device = SimDevice(
                device_id=cred.device_id,
                secret=cred.secret,
                host=host,
                port=port,
                protocol=protocol,
                cancel_pin=cred.cancel_pin,
                duress_pin=cred.duress_pin,
                alert_retry_s=alert_retry_s,
                state_dir=state_dir,
                keepalive=keepalive,
                loop=self.loop,
                bind_address=bind_addresses[n % len(bind_addresses)] if bind_addresses else "",
            )
            walker = Walker(own, place, radius_m)
            self._workers.append(SimWorker(device, cred.kind, own, self.behaviour, walker))
        self._stop = threading.Event()  # ends the simulation thread
        self._requested = threading.Event()  # ends run_forever(); may come before it starts
        self._thread: threading.Thread | None = None

    @property
    def devices(self) -> list[SimDevice]:
        return [w.device for w in self._workers]

    def device(self, device_id: str) -> SimDevice:
        for worker in self._workers:
            if worker.device.device_id == device_id:
                return worker.device
        raise KeyError(device_id)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Connect every device (raising if the broker refuses one), then start simulating."""
        if self._thread is not None:
            raise RuntimeError("fleet already started")
        if not self.loop.running:
            self.loop.start()
        devices = self.devices
        started = time.monotonic()
        try:
            # A sliding window: device i+W starts connecting once device i is connected.
            for device in devices[:CONNECT_WINDOW]:
                device.connect(wait=False)
            for i, device in enumerate(devices):
                device.wait_connected(self.connect_timeout_s, fail_on_refusal=True)
                if i + CONNECT_WINDOW < len(devices):
                    devices[i + CONNECT_WINDOW].connect(wait=False)
                if (i + 1) % 1000 == 0:
                    log.info("%d of %d devices connected", i + 1, len(devices))
        except Exception:
            self._disconnect_all(timeout=0.5)
            self.loop.stop()
            raise
        log.info("%d devices connected in %.1f s", len(devices), time.monotonic() - started)
        self._stop.clear()
        now = time.monotonic()
        for worker in self._workers:
            worker.begin(now)
        self._thread = threading.Thread(target=self._run, name="sim-fleet", daemon=True)
        self._thread.start()
        log.info(
            "fleet of %d devices running against %s:%s around %.5f,%.5f",
            len(self._workers),
            self.host,
            self.port,
            *self.place,
        )

    def stop(self) -> None:
        """Stop simulating and disconnect every device cleanly (no last wills)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._disconnect_all(timeout=2.0)
        self.loop.stop()
        self._requested.clear()
        log.info("fleet stopped")

    def _disconnect_all(self, timeout: float) -> None:
        # In parallel: each clean disconnect may wait briefly for QoS 1 acknowledgements.
        with ThreadPoolExecutor(max_workers=min(16, len(self._workers))) as pool:
            list(pool.map(lambda d: d.disconnect(timeout), self.devices))

    def request_stop(self) -> None:
        """Ask run_forever() to return; safe from a signal handler or another thread."""
        self._requested.set()

    def run_forever(
        self, duration_s: float | None = None, on_started: Callable[[], None] | None = None
    ) -> None:
        """Start, run until request_stop() (or Ctrl-C, or `duration_s`), then stop cleanly;
        `on_started` is called once every device is connected."""
        self.start()
        if on_started is not None:
            on_started()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            # Short waits keep the main thread responsive to signals.
            while True:
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if left <= 0 or self._requested.wait(left):
                    break
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            now = time.monotonic()
            for worker in self._workers:
                if not worker.due(now):
                    continue
                try:
                    worker.step(now)
                except Exception:
                    # One misbehaving worker must not stop the rest of the fleet.
                    log.exception("%s: simulation step failed", worker.name)
