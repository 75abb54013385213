"""`vigil sim`: a simulated fleet of badges and phones against the broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import settings


def sim(
    credentials: Annotated[Path, typer.Option(help="JSON list of device credentials.")],
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[
        int, typer.Option(help="The broker's port for devices (not the service's).")
    ] = 1883,
    place: Annotated[str, typer.Option(help="LAT,LON the fleet walks around.")] = "51.5072,-0.1276",
    alert_rate: Annotated[float, typer.Option(help="Alerts per device per hour.")] = 0.5,
    visit_rate: Annotated[float, typer.Option(help="Visits per device per hour.")] = 1.0,
    location_every: Annotated[float, typer.Option(help="Seconds between locations.")] = 30.0,
    heartbeat_every: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 60.0,
    processes: Annotated[
        int, typer.Option(help="Spread the fleet over N processes (about 10,000 devices each).")
    ] = 1,
    source_addresses: Annotated[
        str | None, typer.Option(help="Local addresses to connect from, A,B,... (127.0.0.x).")
    ] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Run a simulated fleet of badges and phones against the broker."""
    from device_sim.cli import run

    s = settings()
    argv = [
        "--host",
        host or s.mqtt_host,
        "--port",
        str(port),
        "--credentials",
        str(credentials),
        "--place",
        place,
        "--alert-rate",
        str(alert_rate),
        "--visit-rate",
        str(visit_rate),
        "--location-every",
        str(location_every),
        "--heartbeat-every",
        str(heartbeat_every),
        "--processes",
        str(processes),
    ]
    if source_addresses:
        argv += ["--source-addresses", source_addresses]
    if duration is not None:
        argv += ["--duration", str(duration)]
    raise typer.Exit(run(argv))
