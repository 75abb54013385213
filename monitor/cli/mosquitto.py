"""`vigil mosquitto-config`: the broker's password files and ACLs from the device registry."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from monitor.cli.common import fail, open_store, settings


def mosquitto_config(
    out: Annotated[Path, typer.Option(help="Directory for passwords, acl, mosquitto.conf.")] = Path(
        "mosquitto"
    ),
    port: Annotated[
        int, typer.Option(help="The devices' listener port in the generated mosquitto.conf.")
    ] = 1883,
    bind: Annotated[str, typer.Option(help="The devices' listener address.")] = "0.0.0.0",
    service_port: Annotated[
        int, typer.Option(help="The service's own listener port (VIGIL_MQTT_PORT).")
    ] = 1884,
    service_bind: Annotated[
        str, typer.Option(help="The service's listener address: one devices cannot reach.")
    ] = "127.0.0.1",
    reload_pid: Annotated[
        int | None, typer.Option(help="Send this Mosquitto process SIGHUP to load the files.")
    ] = None,
    pid_file: Annotated[
        Path | None,
        typer.Option(help="Read the Mosquitto process id from this file, then send SIGHUP."),
    ] = None,
    tls_port: Annotated[int | None, typer.Option(help="Add a TLS listener on this port.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="The TLS listener's certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key.")] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(help="Also require client certificates signed by this CA."),
    ] = None,
) -> None:
    """Write Mosquitto's password file and ACL from the device registry (and a config), and
    with --reload-pid or --pid-file make the running broker load them: a disabled device or
    an old secret is then refused at its next connect."""
    from monitor import broker

    s = settings()
    if not s.mqtt_password:
        raise fail("set VIGIL_MQTT_PASSWORD: the service account's password goes in the file")
    if pid_file is not None:
        try:
            reload_pid = int(pid_file.read_text().strip())
        except (OSError, ValueError) as e:
            raise fail(f"cannot read a process id from {pid_file}: {e}") from e
    ports = [port, service_port] + ([tls_port] if tls_port is not None else [])
    if len(set(ports)) != len(ports):
        raise fail("--port, --service-port and --tls-port must be different ports")
    tls = None
    if tls_port is not None or tls_cert is not None or tls_key is not None:
        if tls_port is None or tls_cert is None or tls_key is None:
            raise fail("a TLS listener needs --tls-port, --tls-cert and --tls-key together")
        for path in (tls_cert, tls_key, tls_client_ca):
            if path is not None and not path.is_file():
                raise fail(f"no such file: {path}")
        tls = broker.TlsListener(tls_port, tls_cert, tls_key, tls_client_ca, bind)
    store = open_store()
    with store.session() as db:
        files = broker.write_config(
            db,
            out,
            port,
            s.mqtt_username,
            s.mqtt_password,
            bind,
            tls,
            service_port=service_port,
            service_bind=service_bind,
        )
    auth = files.auth
    typer.echo(
        f"wrote {auth.passwords}, {auth.acl}, {auth.service_passwords}, {auth.service_acl}"
        f" and {files.conf}"
    )
    if s.mqtt_port != service_port:
        typer.echo(
            f"Devices connect to port {port}; the service connects to port {service_port}:"
            f" set VIGIL_MQTT_PORT={service_port}.",
            err=True,
        )
    if reload_pid is None:
        typer.echo("Send Mosquitto SIGHUP to load them (kill -HUP <pid>).", err=True)
        return
    try:
        os.kill(reload_pid, signal.SIGHUP)
    except OSError as e:
        raise fail(f"could not signal Mosquitto (process {reload_pid}): {e}") from e
    typer.echo(f"sent SIGHUP to Mosquitto (process {reload_pid}): it loads them now")
