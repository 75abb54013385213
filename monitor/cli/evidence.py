"""`vigil evidence`: audio evidence, its checks and its retention."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli.common import fail, open_store, settings

app = typer.Typer(help="Audio evidence: checks and retention.", no_args_is_help=True)


@app.command("verify")
def evidence_verify(
    evidence_pk: Annotated[
        int | None, typer.Option("--id", help="Only this clip (the evidence record's id).")
    ] = None,
) -> None:
    """Read stored clips back from the evidence store and check their sha256 against the
    one recorded at upload; each check goes into the clip's custody."""
    from monitor.evidence import custody, storage
    from monitor.evidence.models import Evidence

    s = settings()
    store = open_store()
    if evidence_pk is not None:
        with store.session() as db:
            ev = db.get(Evidence, evidence_pk)
        if ev is None:
            raise fail(f"no evidence {evidence_pk}")
        if ev.purged_at is not None:
            raise fail(f"the audio of evidence {evidence_pk} was purged on {ev.purged_at:%Y-%m-%d}")
        if ev.stored_path is None:
            raise fail(f"evidence {evidence_pk} has no uploaded audio")
    checked = failed = 0
    for result in custody.verify(store, storage.from_settings(s), evidence_pk=evidence_pk):
        checked += 1
        if result.problem is not None:
            failed += 1
            typer.secho(f"FAILED {result.label} at {result.where}: {result.problem}", fg="red")
    if failed:
        raise fail(f"{failed} of {checked} stored clips failed the check")
    typer.echo(f"{checked} stored clips checked: each matches the sha256 recorded at upload")


@app.command("purge")
def evidence_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; delete nothing.")
    ] = False,
) -> None:
    """Delete the audio of clips whose incident closed more than VIGIL_EVIDENCE_RETENTION_DAYS
    ago, except incidents on hold; each deletion goes into the clip's custody and the audit log."""
    from monitor.evidence import retention, storage

    s = settings()
    days = s.evidence_retention_days
    purged = failed = 0
    verb = "would purge" if dry_run else "purged"
    for d in retention.purge(open_store(), storage.from_settings(s), days=days, dry_run=dry_run):
        if d.failed is not None:
            failed += 1
            typer.secho(f"FAILED {d.label} at {d.where}: {d.failed}", fg="red")
        elif d.kept is not None:
            typer.echo(f"kept {d.label} ({d.incident}): {d.kept}")
        else:
            purged += 1
            typer.echo(f"{verb} {d.label} ({d.incident}): {d.where}")
    if failed:
        raise fail(f"{failed} clips could not be purged; nothing was changed for them")
    typer.echo(f"{verb} {purged} clips (retention {days} days)")
