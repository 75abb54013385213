"""Sign-in (OAuth2 password flow) and the signed-in user."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from monitor.audit.service import audit_now
from monitor.deps import CurrentUser, SettingsDep, StoreDep, client_address
from monitor.security import make_token
from monitor.users.models import Token, UserOut
from monitor.users.service import authenticate
from monitor.users.throttle import SignInThrottle

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token")
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
    audit_now(store, f"user:{user.username}", "sign_in", address=address)
    token = make_token(settings.secret_key, str(user.id), user.role, settings.token_ttl_s)
    return Token(access_token=token, expires_in=settings.token_ttl_s)


@router.get("/me")
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
