"""`vigil serve` and `vigil demo`: the service, and everything on this machine for a demo."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli.common import fail, settings


def serve(
    host: Annotated[str | None, typer.Option(help="Overrides VIGIL_HTTP_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides VIGIL_HTTP_PORT.")] = None,
) -> None:
    """Run the service: MQTT ingest, escalation, the API and the console."""
    from monitor.server import Service

    s = settings()
    s = s.model_copy(
        update={k: v for k, v in (("http_host", host), ("http_port", port)) if v is not None}
    )
    service = Service(s)
    service.start()
    service.serve()


def demo(
    devices: Annotated[int, typer.Option(min=1, max=500, help="Simulated devices.")] = 25,
    alert_rate: Annotated[float, typer.Option(help="Alerts per device per hour.")] = 2.0,
    port: Annotated[int, typer.Option(help="HTTP port of the console.")] = 8000,
) -> None:
    """Everything on this machine, no configuration: broker, store, console, fleet."""
    from monitor import demo as demo_mod
    from monitor.broker import BrokerError, free_port, wait_for_port

    s = settings().model_copy(update={"http_port": port, "http_host": "127.0.0.1"})
    if wait_for_port("127.0.0.1", port, 0.2):
        raise fail(f"port {port} is in use; choose another with --port {free_port()}")
    try:
        demo_mod.run(s, devices_count=devices, alert_rate=alert_rate)
    except BrokerError as e:
        raise fail(str(e)) from e
