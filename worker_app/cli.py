"""`vigil device enrol` (added to `vigil device` through the `vigil.device_commands` entry
point), and the demo's enrolment link."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from monitor.config import Settings
from monitor.db import Store
from monitor.orgs.models import Organisation, Worker
from worker_app import codes, qr


def enrol(
    worker: Annotated[int, typer.Argument(help="The worker's id (as `vigil worker add` says).")],
    minutes: Annotated[
        int | None,
        typer.Option(min=1, max=7 * 24 * 60, help="How long the link works (VIGIL_ENROL_MINUTES)."),
    ] = None,
    svg: Annotated[
        Path | None, typer.Option(help="Also write the QR code to this SVG file.")
    ] = None,
    png: Annotated[
        Path | None, typer.Option(help="Also write the QR code to this PNG file.")
    ] = None,
) -> None:
    """Give a worker the phone app: a new app device and a one-time enrolment link, printed
    with its QR code. The worker's earlier app devices are revoked."""
    from monitor.cli import BROKER_RELOAD_HINT, fail, open_store, settings

    s = settings()
    store = open_store()
    try:
        with store.begin() as db:
            issued = codes.issue(
                db,
                worker,
                issued_by="cli",
                minutes=minutes or s.enrol_minutes,
                heartbeat_s=s.default_heartbeat_s,
            )
    except codes.EnrolmentError as e:
        raise fail(str(e)) from e
    link = codes.link(s, issued.code)
    for path, kind in ((svg, "svg"), (png, "png")):
        if path is not None:
            qr.save(link, path, kind)
    typer.echo(f"app device {issued.device_id} for {issued.worker_name} (worker {worker})")
    if issued.revoked:
        typer.echo(f"revoked their earlier app devices: {', '.join(issued.revoked)}")
    typer.echo(_instructions(issued))
    typer.echo(link)
    qr.terminal(link, sys.stdout)
    written = [str(p) for p in (svg, png) if p is not None]
    if written:
        typer.echo(f"QR code written to {' and '.join(written)}")
    typer.echo(BROKER_RELOAD_HINT, err=True)


def _instructions(issued: codes.Issued) -> str:
    return (
        f"Open this link on {issued.worker_name}'s phone, or scan the QR code with its camera. "
        f"It works once, until {issued.expires_at:%H:%M} UTC; the code by hand: {issued.code}"
    )


def demo_enrolment(store: Store, settings: Settings) -> str:
    """For `vigil demo` (the `vigil.demo` entry point): an enrolment link and its QR code
    for the demo's first worker, whose earlier app (from the last demo) is revoked."""
    from monitor import demo

    with store.begin() as db:
        worker_id = db.scalar(
            select(Worker.id)
            .join(Organisation, Organisation.id == Worker.org_id)
            .where(Organisation.name == demo.ORG)
            .order_by(Worker.id)
            .limit(1)
        )
        if worker_id is None:
            return ""
        issued = codes.issue(
            db,
            worker_id,
            issued_by="demo",
            minutes=settings.enrol_minutes,
            heartbeat_s=settings.default_heartbeat_s,
        )
    link = codes.link(settings, issued.code)
    return (
        f"  Phone app: make a phone {issued.worker_name}'s panic alarm.\n"
        f"  {_instructions(issued)}\n"
        f"  {link}\n" + qr.terminal_text(link)
    )
