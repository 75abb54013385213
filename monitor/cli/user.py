"""`vigil user`: the people who use the console and the API."""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.audit.service import audit
from monitor.cli.common import fail, open_store

app = typer.Typer(help="People who use the console and API.", no_args_is_help=True)


def _user_active(username: str, active: bool) -> None:
    from monitor.users.service import UserError, set_active

    store = open_store()
    try:
        with store.begin() as db:
            set_active(db, username, active)
            audit(db, "cli", "user_enabled" if active else "user_disabled", username)
    except UserError as e:
        raise fail(str(e)) from e
    typer.echo(f"user {username} {'enabled' if active else 'disabled'}")


@app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user (left, or a password to be reset): sign-in, the API and the console
    refuse them at once; an open console is closed within a minute."""
    _user_active(username, False)


@app.command("enable")
def user_enable(username: str) -> None:
    """Enable a user again."""
    _user_active(username, True)


@app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="operator, supervisor or admin")] = "operator",
    full_name: Annotated[str, typer.Option()] = "",
    org: Annotated[
        str | None,
        typer.Option(help="Limit the user to this organisation (default: the whole service)."),
    ] = None,
    team: Annotated[
        str | None, typer.Option(help="Limit the user to this team of the organisation.")
    ] = None,
    phone: Annotated[
        str,
        typer.Option(help="Their own phone (E.164), rung first when they call from an alert."),
    ] = "",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
) -> None:
    """Add a console/API user."""
    from monitor.users.models import Role
    from monitor.users.service import UserError, add_user

    try:
        role_enum = Role(role)
    except ValueError:
        raise fail("role must be operator, supervisor or admin") from None
    store = open_store()
    try:
        with store.begin() as db:
            user = add_user(
                db,
                username,
                password,
                role_enum,
                full_name=full_name,
                org=org,
                team=team,
                phone=phone,
            )
            audit(
                db,
                "cli",
                "user_added",
                username,
                role=role_enum.value,
                org=org,
                team=team,
                phone=phone,
            )
            seen = f"team {team} of {org}" if team else org or "the whole service"
            typer.echo(f"user {user.username} added ({user.role}, sees {seen})")
    except UserError as e:
        raise fail(str(e)) from e


@app.command("set-phone")
def user_set_phone(
    username: str,
    phone: Annotated[str, typer.Argument(help='E.164 ("+447700900123"); "" removes it.')],
) -> None:
    """Set the user's own phone: a call from an alert in the console rings it first, then
    connects them to the worker or a contact."""
    from monitor.users.service import UserError, set_phone

    store = open_store()
    try:
        with store.begin() as db:
            set_phone(db, username, phone)
            audit(db, "cli", "user_phone_set", username, phone=phone)
    except UserError as e:
        raise fail(str(e)) from e
    typer.echo(f"user {username}: phone {phone or 'removed'}")
