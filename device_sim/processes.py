"""A fleet spread over several processes from one command: each child runs its share of the
devices on its own network loop; the parent starts them, relays a stop, and reports."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import time
from types import FrameType
from typing import Any

from device_sim.cli import StopEvent, run_fleet
from device_sim.credentials import DeviceCredentials

log = logging.getLogger(__name__)


def shares(credentials: list[DeviceCredentials], processes: int) -> list[list[DeviceCredentials]]:
    """Contiguous, nearly equal shares, none empty."""
    processes = max(1, min(processes, len(credentials)))
    size, extra = divmod(len(credentials), processes)
    out, first = [], 0
    for i in range(processes):
        last = first + size + (1 if i < extra else 0)
        out.append(credentials[first:last])
        first = last
    return out


def _child(
    index: int,
    credentials: list[DeviceCredentials],
    host: str,
    port: int,
    stop: Any,
    ready: Any,
    verbose: bool,
    options: dict[str, Any],
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s %(name)s[{index}]: %(message)s",
    )
    if not verbose:
        logging.getLogger("paho").setLevel(logging.WARNING)
    raise SystemExit(
        run_fleet(credentials, host, port, stop_event=stop, ready_event=ready, **options)
    )


def run_fleet_processes(
    credentials: list[DeviceCredentials],
    host: str,
    port: int,
    processes: int,
    *,
    verbose: bool = False,
    duration_s: float | None = None,
    stop_event: StopEvent | None = None,
    seed: int | None = None,
    **options: Any,
) -> int:
    """Run the fleet in `processes` child processes until Ctrl-C, SIGTERM, `stop_event` or
    `duration_s`; 0 when every child stopped cleanly, else 1 (one failing stops them all)."""
    # Spawn, not fork: a fresh interpreter per child, whatever threads this one has.
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    parts = shares(credentials, processes)
    children = []
    for i, part in enumerate(parts):
        ready = ctx.Event()
        # Each child its own seed, so routes differ between shares but repeat between runs.
        own = {**options, "seed": None if seed is None else seed + i}
        proc = ctx.Process(
            target=_child,
            args=(i, part, host, port, stop, ready, verbose, own),
            name=f"device-sim-{i}",
        )
        proc.start()
        children.append((proc, ready))
    log.info("started %d processes for %d devices", len(children), len(credentials))

    requested = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def handle(signum: int, frame: FrameType | None) -> None:
            log.info("%s: stopping the fleet", signal.Signals(signum).name)
            requested.set()

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if duration_s is None else time.monotonic() + duration_s
    announced = False
    failed = False
    try:
        while not requested.is_set():
            if stop_event is not None and stop_event.wait(0):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if any(p.exitcode is not None for p, _ in children):
                failed = any(p.exitcode for p, _ in children)
                break
            if not announced and all(r.is_set() for _, r in children):
                announced = True
                log.info(
                    "fleet of %d devices running in %d processes against %s:%s",
                    len(credentials),
                    len(children),
                    host,
                    port,
                )
            requested.wait(0.2)
    finally:
        stop.set()
        for proc, _ in children:
            proc.join(60)
            if proc.exitcode is None:
                log.error("%s did not stop; terminating it", proc.name)
                proc.terminate()
                proc.join(10)
        for sig, old in previous.items():
            signal.signal(sig, old)
    codes = [p.exitcode for p, _ in children]
    if failed or any(codes):
        log.error("device simulator processes ended with %s", codes)
        return 1
    log.info("fleet stopped (%d processes)", len(children))
    return 0
