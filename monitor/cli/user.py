"""`vigil user`: the people who use the console and the API.

Every command goes through monitor/users/accounts.py, as the console's Admin tab does, with
the command line as the change's author (`cli` in the audit log)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import fail, open_store

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from monitor.users.models import Role, User

app = typer.Typer(help="People who use the console and API.", no_args_is_help=True)


def _role(role: str) -> Role:
    from monitor.users.models import Role

    try:
        return Role(role)
    except ValueError:
        raise fail("role must be operator, supervisor or admin") from None


def _on_user(username: str, act: Callable[[Session, User], object]) -> None:
    """Run `act` on the named user in one transaction; the service's refusal is the error."""
    from monitor.users import accounts
    from monitor.users.service import UserError

    store = open_store()
    try:
        with store.begin() as db:
            act(db, accounts.find(db, None, username=username))
    except UserError as e:
        raise fail(str(e)) from e
    finally:
        store.dispose()


def _seen(org: str | None, team: str | None) -> str:
    return f"team {team} of {org}" if team else org or "the whole service"


@app.command("list")
def user_list() -> None:
    """Every user: name, full name, role, what they see, their phone, and whether active."""
    from monitor.orgs.models import Organisation, Team
    from monitor.users import accounts

    store = open_store()
    try:
        with store.session() as db:
            orgs = {o.id: o.name for o in db.query(Organisation)}
            teams = {t.id: t.name for t in db.query(Team)}
            lines = [
                (
                    u.username,
                    u.full_name,
                    u.role,
                    _seen(orgs.get(u.org_id or 0), teams.get(u.team_id or 0)),
                    u.phone or "-",
                    "active" if u.active else "disabled",
                )
                for u in accounts.visible(db, None)
            ]
    finally:
        store.dispose()
    header = ("USERNAME", "NAME", "ROLE", "SEES", "PHONE", "STATE")
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _user_active(username: str, active: bool) -> None:
    from monitor.users import accounts

    _on_user(username, lambda db, u: accounts.set_active(db, None, u, active))
    typer.echo(f"user {username} {'enabled' if active else 'disabled'}")


@app.command("disable")
def user_disable(username: str) -> None:
    """Disable a user (left, or a password to be reset): sign-in, the API and the console
    refuse them at once; an open console is closed within 30 s. The last
    administrator of the whole service cannot be disabled."""
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
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, show_default=False),
    ] = "",
) -> None:
    """Add a console/API user."""
    from monitor.users import accounts
    from monitor.users.service import UserError

    role_enum = _role(role)
    store = open_store()
    try:
        with store.begin() as db:
            user = accounts.create(
                db,
                None,
                username,
                password,
                role_enum,
                full_name=full_name,
                org=org,
                team=team,
                phone=phone,
            )
            typer.echo(f"user {user.username} added ({user.role}, sees {_seen(org, team)})")
    except UserError as e:
        raise fail(str(e)) from e
    finally:
        store.dispose()


@app.command("set-phone")
def user_set_phone(
    username: str,
    phone: Annotated[str, typer.Argument(help='E.164 ("+447700900123"); "" removes it.')],
) -> None:
    """Set the user's own phone: a call from an alert in the console rings it first, then
    connects them to the worker or a contact."""
    from monitor.users import accounts

    _on_user(username, lambda db, u: accounts.change(db, None, u, phone=phone))
    typer.echo(f"user {username}: phone {phone or 'removed'}")


@app.command("set-role")
def user_set_role(
    username: str,
    role: Annotated[str, typer.Argument(help="operator, supervisor or admin")],
) -> None:
    """Change what the user may do. It applies to their next request; the last
    administrator of the whole service keeps the role."""
    from monitor.users import accounts

    role_enum = _role(role)
    _on_user(username, lambda db, u: accounts.change(db, None, u, role=role_enum))
    typer.echo(f"user {username}: role {role_enum.value}")


@app.command("set-scope")
def user_set_scope(
    username: str,
    org: Annotated[
        str | None,
        typer.Option(help="Limit the user to this organisation (none: the whole service)."),
    ] = None,
    team: Annotated[
        str | None, typer.Option(help="Limit the user to this team of the organisation.")
    ] = None,
) -> None:
    """Change what the user sees: the whole service (no options), one organisation, or one
    team of it. It applies to their next request, and to their open console within 30 s."""
    from monitor.users import accounts

    _on_user(username, lambda db, u: accounts.change(db, None, u, scope=(org, team)))
    typer.echo(f"user {username}: sees {_seen(org, team)}")


@app.command("set-password")
def user_set_password(
    username: str,
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, show_default=False),
    ] = "",
) -> None:
    """Give the user a new password (tell it to them; it is never shown or logged)."""
    from monitor.users import accounts

    _on_user(username, lambda db, u: accounts.set_password(db, None, u, password))
    typer.echo(f"user {username}: password set")
