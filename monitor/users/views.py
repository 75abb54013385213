"""Sign-in (OAuth2 password flow), the signed-in user, and the accounts the Admin tab
manages (list, add, change, disable, enable, set a password)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.audit.service import audit_now
from monitor.db import Store
from monitor.deps import (
    CurrentUser,
    ReadSessionDep,
    RowId,
    SettingsDep,
    StoreDep,
    Supervisor,
    Unechoed,
    client_address,
)
from monitor.orgs.models import Organisation, Team
from monitor.security import make_token
from monitor.users import accounts
from monitor.users.accounts import actor_of
from monitor.users.models import (
    PasswordIn,
    Role,
    Token,
    User,
    UserChoice,
    UserEdit,
    UserNew,
    UserOut,
    UserRow,
)
from monitor.users.service import UserError, UserExists, authenticate
from monitor.users.throttle import SignInThrottle

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@auth_router.post("/token")
def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
) -> Token:
    limiter: SignInThrottle = request.app.state.sign_in_throttle
    address = client_address(request)
    # Checked before the password: a refused attempt costs no argon2 time either.
    wait = limiter.wait_s(form.username, address)
    if wait > 0:
        audit_now(store, form.username, "sign_in_throttled", address=address)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed sign-ins: try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    # A read session: argon2 takes a while and must not hold up writers meanwhile.
    with store.session() as db:
        user = authenticate(db, form.username, form.password)
    if user is None:
        limiter.failed(form.username, address)
        audit_now(store, form.username, "sign_in_failed", address=address)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    limiter.succeeded(form.username)
    audit_now(store, actor_of(user), "sign_in", address=address)
    token = make_token(settings.secret_key, str(user.id), user.role, settings.token_ttl_s)
    return Token(access_token=token, expires_in=settings.token_ttl_s)


@auth_router.get("/me")
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


# Accounts in the console's Admin tab: who may do what to whom is decided in
# monitor/users/accounts.py, as for `vigil user`.
# Unechoed: a refused body is answered without what was typed, which holds a password.
accounts_router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=Unechoed)


def write(request: Request, store: Store, by: User, act: Callable[[Session], UserRow]) -> UserRow:
    """Run `act` in a transaction of its own, committed before the answer goes out, and turn
    the service's refusals into HTTP answers. A refused permission is written to the audit
    log once the change's transaction has been rolled back (SQLite has one writer at once)."""
    try:
        with store.begin() as db:
            return act(db)
    except accounts.UserNotFound as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    except accounts.UserRefused as e:
        audit_now(
            store,
            accounts.actor_of(by),
            "permission_refused",
            f"{request.method} {request.url.path}",
            address=client_address(request),
            role=by.role,
            reason=str(e),
        )
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(e)) from e
    except UserExists as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e
    except UserError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e


def rows(db: Session, users: list[User]) -> list[UserRow]:
    orgs = {i: name for i, name in db.execute(select(Organisation.id, Organisation.name))}
    teams = {i: name for i, name in db.execute(select(Team.id, Team.name))}
    return [
        UserRow(
            id=u.id,
            username=u.username,
            full_name=u.full_name,
            role=Role(u.role),
            org=orgs.get(u.org_id) if u.org_id is not None else None,
            team=teams.get(u.team_id) if u.team_id is not None else None,
            phone=u.phone,
            active=u.active,
            created_at=u.created_at,
        )
        for u in users
    ]


@accounts_router.get("")
def list_users(by: Supervisor, db: ReadSessionDep) -> list[UserRow]:
    """Every account within the signed-in person's organisation or team."""
    return rows(db, accounts.visible(db, by))


@accounts_router.get("/choices")
def choices(by: Supervisor, db: ReadSessionDep) -> list[UserChoice]:
    """The roles and scopes the signed-in person may give an account."""
    return [UserChoice(role=r, org=o, team=t) for r, o, t in accounts.grantable(db, by)]


@accounts_router.post("", status_code=status.HTTP_201_CREATED)
def add(body: UserNew, by: Supervisor, request: Request, store: StoreDep) -> UserRow:
    def act(db: Session) -> UserRow:
        user = accounts.create(
            db,
            by,
            body.username,
            body.password,
            body.role,
            full_name=body.full_name,
            org=body.org or None,
            team=body.team or None,
            phone=body.phone,
            address=client_address(request),
        )
        return rows(db, [user])[0]

    return write(request, store, by, act)


@accounts_router.put("/{user_id}")
def edit(
    user_id: RowId, body: UserEdit, by: Supervisor, request: Request, store: StoreDep
) -> UserRow:
    """Role, scope, full name and phone. A change of role or scope applies to the user's
    next request, and to their open console at its next look-up of the user."""

    def act(db: Session) -> UserRow:
        user = accounts.find(db, by, id=user_id)
        accounts.change(
            db,
            by,
            user,
            role=body.role,
            scope=(body.org or None, body.team or None),
            full_name=body.full_name,
            phone=body.phone,
            address=client_address(request),
        )
        return rows(db, [user])[0]

    return write(request, store, by, act)


def _active(user_id: int, active: bool, by: User, request: Request, store: Store) -> UserRow:
    def act(db: Session) -> UserRow:
        user = accounts.find(db, by, id=user_id)
        accounts.set_active(db, by, user, active, address=client_address(request))
        return rows(db, [user])[0]

    return write(request, store, by, act)


@accounts_router.post("/{user_id}/disable")
def disable(user_id: RowId, by: Supervisor, request: Request, store: StoreDep) -> UserRow:
    """Sign-in and every API call with the user's token are refused at once; their open
    console is closed at its next look-up of the user (within 30 seconds)."""
    return _active(user_id, False, by, request, store)


@accounts_router.post("/{user_id}/enable")
def enable(user_id: RowId, by: Supervisor, request: Request, store: StoreDep) -> UserRow:
    return _active(user_id, True, by, request, store)


@accounts_router.put("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def password(
    user_id: RowId, body: PasswordIn, by: Supervisor, request: Request, store: StoreDep
) -> Response:
    def act(db: Session) -> UserRow:
        user = accounts.find(db, by, id=user_id)
        accounts.set_password(db, by, user, body.password, address=client_address(request))
        return rows(db, [user])[0]

    write(request, store, by, act)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# What the API includes: both, so that the API need not know how this domain splits them.
router = APIRouter()
router.include_router(auth_router)
router.include_router(accounts_router)
