"""The access matrix: every signed-in route, as every role, of the whole service and of one
organisation, against docs/security.md's table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from console import hub
from monitor.cli import app
from monitor.users.models import Role
from tests.fast.handlers import Handlers as Running
from tests.support import PASSWORD, add_badge, bearer, console_socket

TABLE = Path(__file__).parents[2] / "docs" / "security.md"
ROW = re.compile(
    r"^\| `(GET|POST|PUT|PATCH|DELETE) (/\S+)` "
    r"\| (yes|no) \| (yes|no) \| (yes|no) \| (yes|own|no) \|$"
)
ROLES = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
ORG = "Matrix Org"


def permission_table(*, limited: bool = False) -> dict[tuple[str, str], dict[Role, bool]]:
    """Which role may use which route; with `limited`, for accounts of one organisation."""
    table = {}
    for line in TABLE.read_text().splitlines():
        m = ROW.match(line)
        if m:
            table[(m[1], m[2])] = {
                role: m[3 + i] == "yes" and not (limited and m[6] == "no")
                for i, role in enumerate(ROLES)
            }
    return table


def signed_in_routes(svc: Running) -> set[tuple[str, str]]:
    spec = svc.service.app.openapi()
    return {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if any("OAuth2PasswordBearer" in s for s in op.get("security", []))
    }


def concrete(path: str) -> str:
    # Ids that exist nowhere: an allowed role gets 404 or 422, never 403.
    return re.sub(r"\{[a-z_]+\}", "999999", path)


def test_the_table_lists_every_signed_in_route(svc: Running) -> None:
    table = permission_table()
    assert len(table) > 10, "the table in docs/security.md was not found"
    assert set(table) == signed_in_routes(svc)


@pytest.mark.parametrize("limited", [False, True], ids=["whole-service", "one-organisation"])
def test_every_route_as_every_role(svc: Running, limited: bool) -> None:
    org = None
    if limited:
        add_badge(svc.store, "matrix-badge", org=ORG)  # makes the organisation
        org = ORG
    tokens = {role: svc.user(f"matrix-{role.value}", role, org=org) for role in ROLES}
    for (method, path), allowed in permission_table(limited=limited).items():
        url = concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        anonymous = svc.http.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, path)
        for role, may in allowed.items():
            got = svc.http.request(method, url, json=body, headers=tokens[role]).status_code
            if may:
                assert got not in (401, 403), (method, path, role.value, got)
            else:
                assert got == 403, (method, path, role.value, got)


def test_the_websocket_takes_every_role_and_refuses_no_token(svc: Running) -> None:
    for role in ROLES:
        token = bearer(svc.user(f"ws-{role.value}", role))
        with console_socket(svc.http, token) as ws:
            assert '"kind": "snapshot"' in ws.receive_text()
    with console_socket(svc.http, "not-a-token") as ws:
        try:
            ws.receive_text()
            raise AssertionError("a websocket without a valid token stayed open")
        except WebSocketDisconnect as closed:
            assert closed.code == 4401


def test_a_disabled_user_is_refused_everywhere_at_once(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "RECHECK_S", 0.3)
    monkeypatch.setenv("VIGIL_DATABASE_URL", svc.settings.database_url)
    headers = svc.user("leaver", Role.SUPERVISOR)
    cli = CliRunner()
    with console_socket(svc.http, bearer(headers)) as ws:
        assert '"kind": "snapshot"' in ws.receive_text()
        done = cli.invoke(app, ["user", "disable", "leaver"])
        assert done.exit_code == 0 and "user leaver disabled" in done.output
        # The open console is closed at its next look-up of the user.
        try:
            while True:
                ws.receive_text()
        except WebSocketDisconnect as closed:
            assert closed.code == 4401
    assert svc.http.get("/api/v1/alerts", headers=headers).status_code == 401
    r = svc.http.post("/api/v1/auth/token", data={"username": "leaver", "password": PASSWORD})
    assert r.status_code == 401
    assert cli.invoke(app, ["user", "enable", "leaver"]).exit_code == 0
    # Enabled again, they sign in anew: the disable ended the session they had.
    assert svc.http.get("/api/v1/alerts", headers=headers).status_code == 401
    assert svc.http.get("/api/v1/alerts", headers=svc.login("leaver")).status_code == 200
    assert cli.invoke(app, ["user", "disable", "nobody"]).exit_code == 1
    log = svc.http.get("/api/v1/audit", headers=svc.user("boss", Role.ADMIN)).json()
    assert [e["action"] for e in log if e["target"] == "leaver"][:2] == [
        "user_enabled",
        "user_disabled",
    ]
