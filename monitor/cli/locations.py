"""`vigil locations`: the location history and its retention."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.audit.service import audit
from monitor.cli.common import fail, open_store, settings

app = typer.Typer(help="Location history.", no_args_is_help=True)


@app.command("purge")
def locations_purge(
    dry_run: Annotated[bool, typer.Option(help="Count what would go; delete nothing.")] = False,
) -> None:
    """Delete location history outside alerts and visits older than the retention time
    (the service also does this every VIGIL_LOCATION_PURGE_EVERY_S)."""
    from datetime import timedelta

    from monitor.db import utcnow
    from monitor.privacy import retention

    s = settings()
    if s.location_retention_days == 0:
        raise fail("VIGIL_LOCATION_RETENTION_DAYS is 0: location history is kept for ever")
    store = open_store()
    keep, now = timedelta(days=s.location_retention_days), utcnow()
    deleted = 0
    with store.session() as reading:
        for batch in retention.expired(reading, now, keep):
            if dry_run:
                deleted += len(batch.doomed)
                continue
            if batch.doomed:
                with store.begin() as db:
                    n = retention.delete_fixes(db, batch.doomed)
                    audit(db, "cli", "locations_purged", f"{n} fixes", days=keep.days)
                deleted += n
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb} {deleted} location fixes older than {s.location_retention_days} days")
