"""Managing accounts: who may change whose account and how, and each change, audited.

The console's Admin tab and `vigil user` call these same functions. `by` is the signed-in
person making the change, or None for the command line, which is run on the server by its
administrator and so has no scope of its own; the rules that protect the service (the last
administrator, valid names, phones and passwords) apply to it all the same."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.service import audit
from monitor.orgs.models import Organisation, Team
from monitor.orgs.scope import Scope
from monitor.security import hash_secret
from monitor.users.models import Role, User
from monitor.users.service import (
    UserError,
    add_user,
    check_full_name,
    check_password,
    check_phone,
    end_sessions,
    placement,
)


class UserNotFound(UserError):
    """No such account, or not one this person may see (the same answer, so a limited
    account cannot learn which names exist elsewhere)."""


class UserRefused(UserError):
    """The person may not make this change."""


@dataclass(frozen=True)
class Placement:
    """An account's role and what it sees, as a rule compares them."""

    role: Role
    org_id: int | None
    team_id: int | None

    @classmethod
    def of(cls, user: User) -> Placement:
        return cls(Role(user.role), user.org_id, user.team_id)

    @property
    def scope(self) -> Scope:
        return Scope(self.org_id, self.team_id)


def _place(
    db: Session, by: User | None, org: str | None, team: str | None
) -> tuple[int | None, int | None]:
    """Ids for the names; to a limited account, one that does not exist is as one outside
    its scope, so that it cannot learn other organisations' names."""
    try:
        return placement(db, org, team)
    except UserError:
        if by is None or Placement.of(by).scope.service_wide:
            raise
        raise UserRefused("outside your organisation or team") from None


def actor_of(by: User | None) -> str:
    return "cli" if by is None else f"user:{by.username}"


def sees(by: User | None, user: User) -> bool:
    """Whether `by` may see `user`'s account: one within their organisation or team."""
    return by is None or Placement.of(by).scope.admits(user.org_id, user.team_id)


def refusal(by: User | None, target: Placement) -> str | None:
    """Why `by` may not manage an account placed as `target` (as it is, and as it would be
    after the change), or None. Administrators manage every account within their scope.
    Supervisors manage operators within theirs, and supervisors of a narrower one (an
    organisation's supervisor, its teams' supervisors): never an administrator, nor a peer,
    so nobody can give anyone more than they have."""
    if by is None:
        return None
    mine = Placement.of(by)
    if not mine.scope.admits(target.org_id, target.team_id):
        return "outside your organisation or team"
    if mine.role == Role.ADMIN:
        return None
    if mine.role != Role.SUPERVISOR:
        return "only administrators and supervisors manage accounts"
    if target.role == Role.ADMIN:
        return "a supervisor cannot make or change an administrator"
    if target.role == Role.SUPERVISOR and (target.org_id, target.team_id) == (
        mine.org_id,
        mine.team_id,
    ):
        return "a supervisor manages supervisors of a narrower scope only, not their peers"
    return None


def _allow(by: User | None, target: Placement) -> None:
    why = refusal(by, target)
    if why is not None:
        raise UserRefused(why)


def find(
    db: Session, by: User | None, *, username: str | None = None, id: int | None = None
) -> User:
    """The account by name or id, if `by` may see it."""
    if username is not None:
        user = db.scalar(select(User).where(User.username == username))
    else:
        user = db.get(User, id) if id is not None else None
    if user is None or not sees(by, user):
        raise UserNotFound(f"no user {username}" if username is not None else "no such user")
    return user


def visible(db: Session, by: User | None) -> list[User]:
    """Every account `by` may see, by name."""
    rows = db.scalars(select(User).order_by(User.username)).all()
    return [u for u in rows if sees(by, u)]


def _is_service_admin(p: Placement, active: bool) -> bool:
    return active and p.role == Role.ADMIN and p.org_id is None and p.team_id is None


def _keep_an_admin(db: Session, user: User, after: Placement, active_after: bool) -> None:
    """The service must keep one active administrator of the whole service: without one,
    nobody could manage policies or accounts but from the server's command line."""
    if not _is_service_admin(Placement.of(user), user.active):
        return
    if _is_service_admin(after, active_after):
        return
    # The rows are locked (PostgreSQL) so that two administrators removing each other at
    # the same moment cannot both see the other still there; SQLite writes one at a time.
    others = db.scalars(
        select(User.id)
        .where(
            User.role == Role.ADMIN.value,
            User.org_id.is_(None),
            User.team_id.is_(None),
            User.active.is_(True),
            User.id != user.id,
        )
        .with_for_update()
    ).all()
    if not others:
        raise UserRefused(f"{user.username} is the last administrator of the whole service")


def _names(db: Session, p: Placement) -> dict[str, str | None]:
    org = db.get(Organisation, p.org_id) if p.org_id is not None else None
    team = db.get(Team, p.team_id) if p.team_id is not None else None
    return {"org": org.name if org else None, "team": team.name if team else None}


def create(
    db: Session,
    by: User | None,
    username: str,
    password: str,
    role: Role,
    *,
    full_name: str = "",
    org: str | None = None,
    team: str | None = None,
    phone: str = "",
    address: str = "",
) -> User:
    """A new account, placed where `by` may place it. The password is never audited."""
    org_id, team_id = _place(db, by, org, team)
    _allow(by, Placement(role, org_id, team_id))
    user = add_user(
        db, username, password, role, full_name=full_name, org=org, team=team, phone=phone
    )
    audit(
        db,
        actor_of(by),
        "user_added",
        user.username,
        address=address,
        role=role.value,
        org=org,
        team=team,
        phone=phone,
        full_name=full_name,
    )
    return user


def change(
    db: Session,
    by: User | None,
    user: User,
    *,
    role: Role | None = None,
    scope: tuple[str | None, str | None] | None = None,
    full_name: str | None = None,
    phone: str | None = None,
    address: str = "",
) -> dict[str, list[object]]:
    """Change what is given (None: left as it is); returns what changed, old and new. A
    change of role or scope is checked against the account as it is and as it would be."""
    before = Placement.of(user)
    org_id, team_id = _place(db, by, *scope) if scope is not None else (user.org_id, user.team_id)
    after = Placement(role or before.role, org_id, team_id)
    myself = by is not None and by.id == user.id
    if not myself:  # anyone may change their own name and phone
        _allow(by, before)
    if after != before:
        if myself:
            raise UserRefused("you cannot change your own role or scope")
        _allow(by, after)
        _keep_an_admin(db, user, after, user.active)
    if full_name is not None:
        check_full_name(full_name)
    if phone is not None:
        check_phone(phone)
    changes: dict[str, list[object]] = {}
    if after.role != before.role:
        changes["role"] = [before.role.value, after.role.value]
    old_names, new_names = _names(db, before), _names(db, after)
    if (after.org_id, after.team_id) != (before.org_id, before.team_id):
        changes["scope"] = [old_names, new_names]
    if full_name is not None and full_name != user.full_name:
        changes["full_name"] = [user.full_name, full_name]
        user.full_name = full_name
    if phone is not None and phone != user.phone:
        changes["phone"] = [user.phone, phone]
        user.phone = phone
    user.role, user.org_id, user.team_id = after.role.value, after.org_id, after.team_id
    if changes:
        audit(db, actor_of(by), "user_changed", user.username, address=address, **changes)
    return changes


def set_active(
    db: Session, by: User | None, user: User, active: bool, *, address: str = ""
) -> None:
    """Disable (sign-in, the API and the console refuse them at once; an open console is
    closed at its next look-up) or enable an account."""
    # Said first: to a supervisor, their own account is also a peer's, and "not their peers"
    # would not tell them why.
    if not active and by is not None and by.id == user.id:
        raise UserRefused("you cannot disable your own account")
    _allow(by, Placement.of(user))
    if not active:
        _keep_an_admin(db, user, Placement.of(user), False)
    if user.active == active:
        return
    user.active = active
    if not active:
        end_sessions(user)
    audit(
        db,
        actor_of(by),
        "user_enabled" if active else "user_disabled",
        user.username,
        address=address,
    )


def set_password(
    db: Session, by: User | None, user: User, password: str, *, address: str = ""
) -> None:
    """A new password, set by an administrator or supervisor (the account's owner is told
    it by them), or by its owner. Audited without it."""
    if by is None or by.id != user.id:
        _allow(by, Placement.of(user))
    check_password(password)
    user.password_hash = hash_secret(password)
    end_sessions(user)  # whoever knew the old password is signed out too
    audit(db, actor_of(by), "user_password_set", user.username, address=address)


def grantable(db: Session, by: User | None) -> list[tuple[Role, str | None, str | None]]:
    """Every (role, organisation, team) `by` may give an account, for the console's form."""
    orgs = db.scalars(select(Organisation).order_by(Organisation.name)).all()
    teams = db.scalars(select(Team).order_by(Team.name)).all()
    places: list[tuple[str | None, str | None, int | None, int | None]] = [(None, None, None, None)]
    for o in orgs:
        places.append((o.name, None, o.id, None))
        places.extend((o.name, t.name, o.id, t.id) for t in teams if t.org_id == o.id)
    return [
        (role, org, team)
        for org, team, org_id, team_id in places
        for role in Role
        if refusal(by, Placement(role, org_id, team_id)) is None
    ]
