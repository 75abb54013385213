"""Command line for a simulated fleet: `python -m device_sim --host H --port P --credentials F`,
in one process or spread over several (`--processes N`)."""

from __future__ import annotations

import argparse
import logging
import resource
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from device_sim.credentials import DeviceCredentials, load_credentials
from device_sim.device import DEFAULT_POSITION
from device_sim.fleet import Fleet

log = logging.getLogger(__name__)


class StopEvent(Protocol):
    """A threading.Event or a multiprocessing one: all run_fleet needs of it."""

    def wait(self, timeout: float | None = None) -> bool: ...


class ReadyEvent(Protocol):
    def set(self) -> None: ...


def run_fleet(
    credentials: list[DeviceCredentials],
    host: str,
    port: int,
    place: tuple[float, float] = DEFAULT_POSITION,
    alert_rate_per_hour: float = 0.5,
    visit_rate_per_hour: float = 1.0,
    *,
    seed: int | None = None,
    radius_m: float = 1500.0,
    location_every_s: float = 30.0,
    heartbeat_every_s: float = 60.0,
    protocol: int = 5,
    state_dir: Path | None = None,
    duration_s: float | None = None,
    stop_event: StopEvent | None = None,
    ready_event: ReadyEvent | None = None,
    keepalive: int = 30,
    bind_addresses: tuple[str, ...] = (),
) -> int:
    """Run a fleet until Ctrl-C, SIGTERM, `stop_event` or `duration_s`; 0 on a clean stop,
    1 if the broker could not be reached or refused a device. `ready_event` is set once every
    device is connected."""
    fleet = Fleet(
        credentials,
        host,
        port,
        place=place,
        radius_m=radius_m,
        location_every_s=location_every_s,
        heartbeat_every_s=heartbeat_every_s,
        alert_rate_per_hour=alert_rate_per_hour,
        visit_rate_per_hour=visit_rate_per_hour,
        seed=seed,
        protocol=protocol,
        state_dir=state_dir,
        keepalive=keepalive,
        bind_addresses=bind_addresses,
    )
    done = threading.Event()
    if stop_event is not None:
        event = stop_event

        def relay() -> None:
            # Poll, so this thread ends with the fleet even if stop_event is never set.
            while not done.is_set():
                if event.wait(0.2):
                    fleet.request_stop()
                    return

        threading.Thread(target=relay, name="sim-fleet-stop", daemon=True).start()
    with _stop_on_signals(fleet):
        try:
            fleet.run_forever(duration_s, None if ready_event is None else ready_event.set)
        except (OSError, TimeoutError) as exc:  # BrokerRefusedError is an OSError
            log.error("device simulator: %s", exc)
            return 1
        finally:
            done.set()
    return 0


@contextmanager
def _stop_on_signals(fleet: Fleet) -> Iterator[None]:
    # Signal handlers can only be set from the main thread; elsewhere the caller stops us.
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("%s: stopping the fleet", signal.Signals(signum).name)
        fleet.request_stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def parse_place(text: str) -> tuple[float, float]:
    try:
        lat_text, lon_text = text.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAT,LON, got {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"{text!r} is not a position on Earth")
    return lat, lon


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m device_sim",
        description="Simulated ID badges and phone apps speaking the Vigil device protocol v1.",
    )
    p.add_argument("--host", default="127.0.0.1", help="MQTT broker host (default %(default)s)")
    p.add_argument("--port", type=int, default=1883, help="MQTT broker port (default %(default)s)")
    p.add_argument(
        "--credentials",
        type=Path,
        required=True,
        metavar="FILE.json",
        help="JSON list of {device_id, secret, cancel_pin, duress_pin, kind}",
    )
    p.add_argument(
        "--place",
        type=parse_place,
        default=DEFAULT_POSITION,
        metavar="LAT,LON",
        help="centre of the area the workers walk in (default central London)",
    )
    p.add_argument("--radius-m", type=float, default=1500.0, help="area radius in metres")
    p.add_argument("--alert-rate", type=float, default=0.5, help="alerts per device per hour")
    p.add_argument("--visit-rate", type=float, default=1.0, help="visits per device per hour")
    p.add_argument("--location-every", type=float, default=30.0, metavar="S", help="seconds")
    p.add_argument("--heartbeat-every", type=float, default=60.0, metavar="S", help="seconds")
    p.add_argument("--protocol", type=int, choices=(4, 5), default=5, help="MQTT 3.1.1 or 5")
    p.add_argument("--state-dir", type=Path, help="keep each device's alert outbox here")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--seed", type=int, help="random seed, for repeatable routes and events")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="spread the fleet over N processes, each with one network loop (default 1;"
        " one process drives about 10,000 devices at a location every 10 s)",
    )
    p.add_argument(
        "--source-addresses",
        type=parse_addresses,
        default=(),
        metavar="A,B,...",
        help="local addresses to connect from, in turn (127.0.0.x on loopback: each adds a"
        " range of source ports)",
    )
    p.add_argument("--keepalive", type=int, default=30, metavar="S", help="MQTT keep-alive")
    p.add_argument("-v", "--verbose", action="store_true", help="log every message sent")
    return p


def parse_addresses(text: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in text.split(",") if a.strip())


def raise_open_files_limit() -> int:
    """Raise this process's open-files limit to the hard limit (children inherit it): each
    device holds a socket. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d: %s", soft, exc)
    return int(soft)


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("paho").setLevel(logging.WARNING)
    try:
        credentials = load_credentials(args.credentials)
    except (OSError, ValueError) as exc:
        log.error("cannot use %s: %s", args.credentials, exc)
        return 2
    if not credentials:
        log.error("%s lists no devices", args.credentials)
        return 2
    if args.processes < 1:
        log.error("--processes must be at least 1")
        return 2
    limit = raise_open_files_limit()
    # A socket per device, plus a few for the process itself.
    if len(credentials) // args.processes + 64 > limit:
        log.warning(
            "%d devices over %d process(es) need more open files than the limit of %d:"
            " use more --processes",
            len(credentials),
            args.processes,
            limit,
        )
    options: dict[str, Any] = dict(
        place=args.place,
        alert_rate_per_hour=args.alert_rate,
        visit_rate_per_hour=args.visit_rate,
        seed=args.seed,
        radius_m=args.radius_m,
        location_every_s=args.location_every,
        heartbeat_every_s=args.heartbeat_every,
        protocol=args.protocol,
        state_dir=args.state_dir,
        duration_s=args.duration,
        keepalive=args.keepalive,
        bind_addresses=args.source_addresses,
    )
    if args.processes > 1:
        from device_sim.processes import run_fleet_processes

        return run_fleet_processes(
            credentials, args.host, args.port, args.processes, verbose=args.verbose, **options
        )
    return run_fleet(credentials, args.host, args.port, **options)
