"""`vigil audit`: proof of what happened, the incident log's hash chains."""

from __future__ import annotations

import typer

from monitor.cli.common import fail, open_store

app = typer.Typer(help="Proof of what happened: the incident log.", no_args_is_help=True)


@app.command("verify")
def audit_verify() -> None:
    """Check every incident's hash chain; name the first entry that does not fit."""
    from monitor.alerts import chain

    store = open_store()
    with store.session() as db:
        verdict = chain.verify(db)
    if verdict.broken is not None:
        raise fail(f"the incident log has been tampered with: {verdict.broken}")
    typer.echo(
        f"incident log intact: incidents {verdict.incidents}, entries {verdict.entries}\n"
        f"digest of every chain's head: {verdict.digest}\n"
        "(keep the digest somewhere else: a later one tells whether whole incidents or their "
        "newest entries were removed)"
    )
