"""User accounts: what a valid one is, creating one, and signing in."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.db import utcnow
from monitor.orgs.models import Organisation, Team
from monitor.phones import is_e164
from monitor.security import TokenClaims, hash_secret, verify_nobody, verify_secret
from monitor.users.models import Role, User

MIN_PASSWORD = 10
# argon2 hashes any length, but slowly: a megabyte "password" would cost a thread its time.
MAX_PASSWORD = 1000


class UserError(ValueError):
    pass


class UserExists(UserError):
    pass


def add_user(
    db: Session,
    username: str,
    password: str,
    role: Role,
    *,
    full_name: str = "",
    org: str | None = None,
    team: str | None = None,
    phone: str = "",
    password_hash: str | None = None,
) -> User:
    """A new account. Without `org` it sees the whole service; with `org` (and `team`) only
    that organisation (team). Both must exist already: a typo must not make an empty
    organisation that its user then watches, seeing no alerts. `password_hash`, the hash of
    `password` made already, spares set-ups (tests, benchmarks) of many users argon2's time."""
    check_password(password)
    check_username(username)
    check_full_name(full_name)
    if db.scalar(select(User).where(User.username == username)) is not None:
        raise UserExists(f"user {username} already exists")
    org_id, team_id = placement(db, org, team)
    check_phone(phone)
    user = User(
        username=username,
        password_hash=password_hash or hash_secret(password),
        role=role.value,
        full_name=full_name,
        org_id=org_id,
        team_id=team_id,
        phone=phone,
    )
    db.add(user)
    db.flush()
    return user


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"passwords must be at most {MAX_PASSWORD} characters")


def _printable(text: str) -> bool:
    return all(ch.isprintable() for ch in text)


def check_username(username: str) -> None:
    """A name people type to sign in and read in the audit log: no spaces around it and
    nothing unprintable (a name that looks like another's)."""
    if not username or len(username) > 100:
        raise UserError("username must be 1 to 100 characters")
    if username != username.strip() or not _printable(username):
        raise UserError("username must not start or end with spaces or hold control characters")


def check_full_name(full_name: str) -> None:
    if len(full_name) > 200 or not _printable(full_name):
        raise UserError("full name must be at most 200 characters, without control characters")


def placement(db: Session, org: str | None, team: str | None) -> tuple[int | None, int | None]:
    """The organisation and team ids for their names (None, None: the whole service)."""
    if org is None:
        if team is not None:
            raise UserError("a team needs its organisation too")
        return None, None
    org_row = db.scalar(select(Organisation).where(Organisation.name == org))
    if org_row is None:
        known = ", ".join(db.scalars(select(Organisation.name).order_by(Organisation.name)))
        raise UserError(f"no organisation {org!r} (known: {known or 'none'})")
    if team is None:
        return org_row.id, None
    team_row = db.scalar(select(Team).where(Team.org_id == org_row.id, Team.name == team))
    if team_row is None:
        known = ", ".join(
            db.scalars(select(Team.name).where(Team.org_id == org_row.id).order_by(Team.name))
        )
        raise UserError(f"no team {team!r} in {org} (known: {known or 'none'})")
    return org_row.id, team_row.id


def check_phone(phone: str) -> None:
    if phone and not is_e164(phone):
        raise UserError(f"phone {phone!r} is not in E.164 form (+447700900123)")


def set_phone(db: Session, username: str, phone: str) -> User:
    """The user's own phone, rung first when they call someone from an alert ("": none).
    A setter for set-ups (tests, benchmarks): people go through accounts.change."""
    check_phone(phone)
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username}")
    user.phone = phone
    return user


def set_active(db: Session, username: str, active: bool) -> User:
    """A setter for set-ups (tests, benchmarks): people go through accounts.set_active,
    which keeps the last administrator."""
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username}")
    user.active = active
    if not active:
        end_sessions(user)
    return user


def end_sessions(user: User) -> None:
    """Every session the user has signed in to ends now: a new password, or a disabled
    account (whose old tokens must not come back to life when it is enabled again)."""
    user.sessions_from = utcnow()


def signs_in(user: User, claims: TokenClaims) -> bool:
    """Whether a valid token with these claims still signs its user in, for the API and the
    consoles' websocket alike: the account is enabled, and the token was issued after its
    sessions last ended."""
    if not user.active:
        return False
    return user.sessions_from is None or claims.issued > user.sessions_from.timestamp()


def authenticate(db: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, else None. A name with no active account
    costs an argon2 check too, so the time taken does not tell which names exist."""
    user = db.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None:
        verify_nobody(password)
        return None
    return user if verify_secret(user.password_hash, password) else None
