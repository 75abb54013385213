"""User account service functions: create, authenticate."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.security import hash_secret, verify_secret
from monitor.users.models import Role, User

MIN_PASSWORD = 10


class UserError(ValueError):
    pass


def add_user(
    db: Session,
    username: str,
    password: str,
    role: Role,
    *,
    full_name: str = "",
    org_id: int | None = None,
) -> User:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"passwords must be at least {MIN_PASSWORD} characters")
    if not username or len(username) > 100:
        raise UserError("username must be 1 to 100 characters")
    if db.scalar(select(User).where(User.username == username)) is not None:
        raise UserError(f"user {username} already exists")
    user = User(
        username=username,
        password_hash=hash_secret(password),
        role=role.value,
        full_name=full_name,
        org_id=org_id,
    )
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, username: str, password: str) -> User | None:
    user = db.scalar(select(User).where(User.username == username, User.active.is_(True)))
    if user is None or not verify_secret(user.password_hash, password):
        return None
    return user
