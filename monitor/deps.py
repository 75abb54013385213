"""FastAPI dependencies: the store session, the signed-in user, role checks, device auth; and
the route class of routes that take PINs and passwords."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials, OAuth2PasswordBearer
from sqlalchemy.orm import Session

from monitor.audit.service import audit_now
from monitor.config import Settings
from monitor.db import MAX_ROW_ID, Store
from monitor.devices.models import Device
from monitor.devices.trackers import HTTP_ONLY_KINDS
from monitor.evidence.storage import EvidenceStore
from monitor.orgs.scope import Scope
from monitor.security import read_token, verify_device_secret
from monitor.users.accounts import actor_of
from monitor.users.models import Role, User
from monitor.users.service import signs_in

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token")
basic = HTTPBasic(realm="vigil-devices")


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_db(store: Annotated[Store, Depends(get_store)]) -> Iterator[Session]:
    """A session whose transaction commits when the route returns without error."""
    with store.begin() as db:
        yield db


# scope="function": the transaction commits before the response goes out, so a client never
# hears "done" for a change that then failed to commit.
SessionDep = Annotated[Session, Depends(get_db, scope="function")]
StoreDep = Annotated[Store, Depends(get_store)]


def get_read_db(store: Annotated[Store, Depends(get_store)]) -> Iterator[Session]:
    """A session for routes that only read: on SQLite it never takes the write lock, so a
    console refreshing its lists cannot hold up an alert being stored."""
    with store.session() as db:
        yield db


ReadSessionDep = Annotated[Session, Depends(get_read_db, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_evidence_store(request: Request) -> EvidenceStore:
    evidence: EvidenceStore = request.app.state.evidence_store
    return evidence


EvidenceStoreDep = Annotated[EvidenceStore, Depends(get_evidence_store)]
# A row id in a URL: a larger one than the database can hold is a bad id (422).
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def as_utc(value: datetime | None, name: str) -> datetime | None:
    """A time from a query string, in UTC: one without an offset is taken to be UTC (the
    store refuses naive times). One outside 1970 to 9000 is a 422: reports count weeks and
    years back from the times they are given, which near the ends of the calendar overflow."""
    if value is None:
        return None
    try:
        at = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        at = None
    if at is None or not EARLIEST <= at < LATEST:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{name} is out of range (1970 to 9000)",
        )
    return at


def current_user(
    token: Annotated[str, Depends(oauth2)], settings: SettingsDep, store: StoreDep
) -> User:
    unauthorised = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "not signed in, or the session has expired",
        headers={"WWW-Authenticate": "Bearer"},
    )
    claims = read_token(settings.secret_key, token)
    if claims is None:
        raise unauthorised
    with store.session() as db:
        user = db.get(User, claims.user_id)
        if user is None or not signs_in(user, claims):
            raise unauthorised
        return user


CurrentUser = Annotated[User, Depends(current_user)]


def no_store(response: Response) -> None:
    """For an answer that carries a credential shown once (a device's secret, an enrolment
    code, a PIN link): no cache on the way may keep it."""
    response.headers["Cache-Control"] = "no-store"


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def require(*roles: Role, service_wide: bool = False) -> Callable[..., User]:
    """One of `roles`; with `service_wide`, also not limited to one organisation (for what
    is shared by every organisation: escalation policies, the audit log)."""
    allowed = {r.value for r in roles}

    def check(user: CurrentUser, request: Request, store: StoreDep) -> User:
        refusal = None
        if user.role not in allowed:
            refusal = f"needs the role {' or '.join(sorted(allowed))}"
        elif service_wide and (user.org_id is not None or user.team_id is not None):
            refusal = "needs an account of the whole service, not of one organisation"
        if refusal is not None:
            audit_now(
                store,
                actor_of(user),
                "permission_refused",
                f"{request.method} {request.url.path}",
                address=client_address(request),
                role=user.role,
            )
            raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
        return user

    return check


def current_scope(user: CurrentUser, settings: SettingsDep) -> Scope:
    positions_always = user.role != Role.OPERATOR and settings.supervisor_positions == "always"
    return Scope(user.org_id, user.team_id, positions_always)


ScopeDep = Annotated[Scope, Depends(current_scope)]
# Who sees the fleet, the incidents and the reports (the console shows them their tabs).
SUPERVISING_ROLES = (Role.SUPERVISOR, Role.ADMIN)
Supervisor = Annotated[User, Depends(require(*SUPERVISING_ROLES))]
ServiceSupervisor = Annotated[User, Depends(require(*SUPERVISING_ROLES, service_wide=True))]
ServiceAdmin = Annotated[User, Depends(require(Role.ADMIN, service_wide=True))]


def current_device(
    device_id: str, creds: Annotated[HTTPBasicCredentials, Depends(basic)], store: StoreDep
) -> Device:
    refused = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "wrong device credentials",
        headers={"WWW-Authenticate": 'Basic realm="vigil-devices"'},
    )
    if not secrets.compare_digest(creds.username.encode(), device_id.encode()):
        raise refused
    with store.session() as db:
        device = db.get(Device, device_id)
        if device is None or not verify_device_secret(device.secret_hash, creds.password):
            raise refused
        if device.kind in HTTP_ONLY_KINDS:
            # A tracker's identifier lets it send positions and alarms, nothing more.
            raise refused
        if not device.enabled:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "device is disabled")
        return device


CurrentDevice = Annotated[Device, Depends(current_device)]


class Unechoed(APIRoute):
    """Validation refusals without the values refused (FastAPI puts each in `input`, and for
    a missing field the whole body): what was typed may be a PIN or a password, and neither
    is ever sent back. For the routers of workers' PINs and of users' accounts."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                kept = [
                    {k: v for k, v in err.items() if k in ("loc", "msg", "type")}
                    for err in e.errors()
                ]
                raise RequestValidationError(kept) from None

        return route
