"""Accounts managed from the console's Admin tab (/api/v1/users) and `vigil user`: the
same validation, who may manage whom, the last administrator, at-once effect, the audit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from console import hub
from monitor.audit.models import AuditEntry
from monitor.cli import app
from monitor.users.models import Role, User
from tests.fast.handlers import Handlers as Running
from tests.support import PASSWORD, add_badge, bearer, console_socket

NORTH, SOUTH = "North Council", "South Trust"
NEW_PASSWORD = "a-new-long-password"


def _orgs(svc: Running) -> None:
    add_badge(svc.store, "n-a", org=NORTH, team="A")
    add_badge(svc.store, "n-b", org=NORTH, team="B")
    add_badge(svc.store, "s-a", org=SOUTH, team="A")


def _new(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "username": "dana",
        "full_name": "Dana Reyes",
        "role": "operator",
        "org": None,
        "team": None,
        "phone": "+447700900123",
        "password": PASSWORD,
    }
    return body | over


def _edit(row: dict[str, Any], **over: Any) -> dict[str, Any]:
    keep = {k: row[k] for k in ("role", "org", "team", "full_name", "phone")}
    return keep | over


def _users(svc: Running) -> dict[str, tuple[str, int | None, int | None, str, str, bool]]:
    with svc.store.session() as db:
        return {
            u.username: (u.role, u.org_id, u.team_id, u.phone, u.full_name, u.active)
            for u in db.scalars(select(User))
        }


def _id(svc: Running, username: str) -> int:
    with svc.store.session() as db:
        found = db.scalar(select(User.id).where(User.username == username))
    assert found is not None
    return found


def _audit(svc: Running) -> list[AuditEntry]:
    with svc.store.session() as db:
        return list(db.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _row(svc: Running, headers: dict[str, str], username: str) -> dict[str, Any]:
    listed = svc.http.get("/api/v1/users", headers=headers)
    assert listed.status_code == 200, listed.text
    rows: dict[str, dict[str, Any]] = {r["username"]: r for r in listed.json()}
    return rows[username]


def test_an_admin_adds_changes_and_resets_a_user(svc: Running) -> None:
    _orgs(svc)
    admin = svc.user("boss", Role.ADMIN)
    r = svc.http.post("/api/v1/users", json=_new(org=NORTH, team="A"), headers=admin)
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["username"], got["role"], got["org"], got["team"], got["active"]) == (
        "dana",
        "operator",
        NORTH,
        "A",
        True,
    )
    assert "password" not in json.dumps(got).lower()
    assert svc.login("dana")  # the password the admin set works

    row = _row(svc, admin, "dana")
    r = svc.http.put(
        f"/api/v1/users/{row['id']}",
        json=_edit(row, role="supervisor", phone="+447700900999", full_name="Dana R."),
        headers=admin,
    )
    assert r.status_code == 200, r.text
    assert _users(svc)["dana"][0] == "supervisor"
    assert _users(svc)["dana"][3:5] == ("+447700900999", "Dana R.")

    r = svc.http.put(
        f"/api/v1/users/{row['id']}/password", json={"password": NEW_PASSWORD}, headers=admin
    )
    assert r.status_code == 204, r.text
    old = svc.http.post("/api/v1/auth/token", data={"username": "dana", "password": PASSWORD})
    assert old.status_code == 401
    new = svc.http.post("/api/v1/auth/token", data={"username": "dana", "password": NEW_PASSWORD})
    assert new.status_code == 200

    entries = [e for e in _audit(svc) if e.target == "dana" and e.actor == "user:boss"]
    assert [e.action for e in entries] == ["user_added", "user_changed", "user_password_set"]
    assert entries[1].details["role"] == ["operator", "supervisor"]
    assert entries[1].details["phone"] == ["+447700900123", "+447700900999"]
    # No secret in any entry, nor its hash.
    with svc.store.session() as db:
        digest = db.scalar(select(User.password_hash).where(User.username == "dana"))
    for e in _audit(svc):
        text = json.dumps([e.target, e.details])
        assert PASSWORD not in text and NEW_PASSWORD not in text and str(digest) not in text


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"username": ""}, 422, "username"),
        ({"username": " dana"}, 422, "spaces"),
        ({"username": "da\x00na"}, 422, "control"),
        ({"username": "d" * 101}, 422, "100"),
        ({"password": "short"}, 422, "at least 10"),
        ({"phone": "07700 900123"}, 422, "E.164"),
        ({"org": "Nowhere"}, 422, "no organisation 'Nowhere'"),
        ({"team": "A"}, 422, "a team needs its organisation"),
        ({"org": NORTH, "team": "Z"}, 422, "no team 'Z'"),
        ({"role": "root"}, 422, "role"),
        ({"full_name": "x\ny"}, 422, "control"),
        ({"username": "boss"}, 409, "already exists"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    svc: Running, change: dict[str, Any], status: int, words: str
) -> None:
    _orgs(svc)
    admin = svc.user("boss", Role.ADMIN)
    before, logged = _users(svc), len(_audit(svc))
    r = svc.http.post("/api/v1/users", json=_new(**change), headers=admin)
    assert r.status_code == status, r.text
    assert words in r.text
    assert _users(svc) == before
    assert len(_audit(svc)) == logged


def test_a_refused_body_does_not_echo_the_password(svc: Running) -> None:
    # FastAPI puts what it refused in `input`: for a missing field the whole body, with the
    # password in it; for a password too long, the password itself.
    admin = svc.user("boss", Role.ADMIN)
    long = "p" * 1001
    without_role = {k: v for k, v in _new().items() if k != "role"}
    for path, method, body, secret in [
        ("/api/v1/users", "POST", without_role, PASSWORD),
        ("/api/v1/users", "POST", _new(password=long), long),
        ("/api/v1/users", "POST", _new(extra="x"), PASSWORD),
        (f"/api/v1/users/{_id(svc, 'boss')}/password", "PUT", {"password": long}, long),
        (f"/api/v1/users/{_id(svc, 'boss')}/password", "PUT", {"pw": PASSWORD}, PASSWORD),
    ]:
        r = svc.http.request(method, path, json=body, headers=admin)
        assert r.status_code == 422, r.text
        assert secret not in r.text and '"input"' not in r.text
        assert r.json()["detail"][0]["loc"][0] == "body"  # still says where


def test_a_supervisor_manages_operators_and_narrower_supervisors_in_scope(svc: Running) -> None:
    _orgs(svc)
    svc.user("boss", Role.ADMIN)
    lead = svc.user("lead", Role.SUPERVISOR, org=NORTH)
    svc.user("north-op", Role.OPERATOR, org=NORTH, team="B")
    svc.user("north-admin", Role.ADMIN, org=NORTH)
    svc.user("north-peer", Role.SUPERVISOR, org=NORTH)
    svc.user("south-op", Role.OPERATOR, org=SOUTH)

    seen = {r["username"] for r in svc.http.get("/api/v1/users", headers=lead).json()}
    assert seen == {"lead", "north-op", "north-admin", "north-peer"}
    choices = svc.http.get("/api/v1/users/choices", headers=lead).json()
    assert {(c["role"], c["org"], c["team"]) for c in choices} == {
        ("operator", NORTH, None),
        ("operator", NORTH, "A"),
        ("operator", NORTH, "B"),
        ("supervisor", NORTH, "A"),
        ("supervisor", NORTH, "B"),
    }

    ids = {u: _id(svc, u) for u in ("north-op", "north-admin", "north-peer", "south-op")}
    before, logged = _users(svc), len(_audit(svc))
    refused = [
        (svc.http.post, "/api/v1/users", _new(role="admin", org=NORTH), 403, "administrator"),
        (svc.http.post, "/api/v1/users", _new(org=None), 403, "outside"),
        (svc.http.post, "/api/v1/users", _new(org=SOUTH), 403, "outside"),
        # A name that does not exist reads as one outside: no other organisation's names.
        (svc.http.post, "/api/v1/users", _new(org="Nowhere"), 403, "outside"),
        (svc.http.post, "/api/v1/users", _new(role="supervisor", org=NORTH), 403, "peers"),
        (
            svc.http.put,
            f"/api/v1/users/{ids['north-op']}",
            {"role": "admin", "org": NORTH, "team": "B"},
            403,
            "administrator",
        ),
        (
            svc.http.put,
            f"/api/v1/users/{ids['north-op']}",
            {"role": "operator", "org": SOUTH},
            403,
            "outside",
        ),
        (svc.http.post, f"/api/v1/users/{ids['north-admin']}/disable", None, 403, "administrator"),
        (svc.http.post, f"/api/v1/users/{ids['north-peer']}/disable", None, 403, "peers"),
        (svc.http.post, f"/api/v1/users/{ids['south-op']}/disable", None, 404, "no such user"),
        (
            svc.http.put,
            f"/api/v1/users/{ids['south-op']}/password",
            {"password": NEW_PASSWORD},
            404,
            "no such user",
        ),
    ]
    for call, url, body, status, words in refused:
        r = call(url, json=body, headers=lead)
        assert (r.status_code, words in r.text) == (status, True), (url, body, r.text)
    assert _users(svc) == before
    assert all(e.action == "permission_refused" for e in _audit(svc)[logged:])
    assert len(_audit(svc)) - logged == 9  # each 403, not the 404s

    r = svc.http.post(
        "/api/v1/users", json=_new(role="supervisor", org=NORTH, team="A"), headers=lead
    )
    assert r.status_code == 201, r.text
    r = svc.http.post(f"/api/v1/users/{ids['north-op']}/disable", headers=lead)
    assert r.status_code == 200 and r.json()["active"] is False


def test_a_team_supervisor_makes_only_operators_of_the_team(svc: Running) -> None:
    _orgs(svc)
    team_lead = svc.user("team-lead", Role.SUPERVISOR, org=NORTH, team="A")
    choices = svc.http.get("/api/v1/users/choices", headers=team_lead).json()
    assert [(c["role"], c["org"], c["team"]) for c in choices] == [("operator", NORTH, "A")]
    r = svc.http.post("/api/v1/users", json=_new(org=NORTH), headers=team_lead)
    assert r.status_code == 403 and "outside" in r.text
    r = svc.http.post("/api/v1/users", json=_new(org=NORTH, team="A"), headers=team_lead)
    assert r.status_code == 201, r.text
    assert svc.http.get("/api/v1/users", headers=svc.user("op", Role.OPERATOR)).status_code == 403
    # Their own account is also a peer's: the refusal says which rule they met.
    r = svc.http.post(f"/api/v1/users/{_id(svc, 'team-lead')}/disable", headers=team_lead)
    assert r.status_code == 403 and "cannot disable your own account" in r.text, r.text
    assert _users(svc)["team-lead"][5] is True


def test_nobody_disables_themselves_or_the_last_service_admin(svc: Running) -> None:
    _orgs(svc)
    boss = svc.user("boss", Role.ADMIN)
    svc.user("north-admin", Role.ADMIN, org=NORTH)  # of one organisation: does not count
    boss_id = _id(svc, "boss")
    r = svc.http.post(f"/api/v1/users/{boss_id}/disable", headers=boss)
    assert r.status_code == 403 and "your own account" in r.text
    r = svc.http.put(f"/api/v1/users/{boss_id}", json={"role": "operator"}, headers=boss)
    assert r.status_code == 403 and "your own role" in r.text

    cli = CliRunner()
    env = {"VIGIL_DATABASE_URL": svc.settings.database_url}
    for args in (
        ["user", "disable", "boss"],
        ["user", "set-role", "boss", "supervisor"],
        ["user", "set-scope", "boss", "--org", NORTH],
    ):
        done = cli.invoke(app, args, env=env)
        assert done.exit_code == 1, args
        assert "last administrator of the whole service" in done.output, done.output
    assert _users(svc)["boss"] == ("admin", None, None, "", "Boss", True)

    second = svc.user("second", Role.ADMIN)
    r = svc.http.post(f"/api/v1/users/{boss_id}/disable", headers=second)
    assert r.status_code == 200, r.text
    done = cli.invoke(app, ["user", "disable", "second"], env=env)
    assert done.exit_code == 1 and "last administrator" in done.output
    assert cli.invoke(app, ["user", "enable", "boss"], env=env).exit_code == 0
    assert cli.invoke(app, ["user", "disable", "second"], env=env).exit_code == 0


def test_a_change_applies_to_the_users_token_at_once(
    svc: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "RECHECK_S", 0.3)
    _orgs(svc)
    admin = svc.user("boss", Role.ADMIN)
    lead = svc.user("lead", Role.SUPERVISOR)
    lead_id = _id(svc, "lead")
    assert svc.http.get("/api/v1/incidents", headers=lead).status_code == 200
    r = svc.http.put(f"/api/v1/users/{lead_id}", json={"role": "operator"}, headers=admin)
    assert r.status_code == 200, r.text
    assert svc.http.get("/api/v1/incidents", headers=lead).status_code == 403

    with console_socket(svc.http, bearer(lead)) as ws:
        assert '"kind": "snapshot"' in ws.receive_text()
        r = svc.http.post(f"/api/v1/users/{lead_id}/disable", headers=admin)
        assert r.status_code == 200, r.text
        try:
            while True:
                ws.receive_text()
        except WebSocketDisconnect as closed:
            assert closed.code == 4401
    assert svc.http.get("/api/v1/alerts", headers=lead).status_code == 401
    r = svc.http.post("/api/v1/auth/token", data={"username": "lead", "password": PASSWORD})
    assert r.status_code == 401
    assert svc.http.post(f"/api/v1/users/{lead_id}/enable", headers=admin).status_code == 200
    # Enabled again, the account signs in anew: the sessions it had ended with the disable.
    assert svc.http.get("/api/v1/alerts", headers=lead).status_code == 401
    again = svc.login("lead")
    assert svc.http.get("/api/v1/alerts", headers=again).status_code == 200
    # A new password ends every session signed in with the old one, websockets included.
    with console_socket(svc.http, bearer(again)) as ws:
        assert '"kind": "snapshot"' in ws.receive_text()
        r = svc.http.put(
            f"/api/v1/users/{lead_id}/password",
            json={"password": "a new long one 42"},
            headers=admin,
        )
        assert r.status_code == 204, r.text
        try:
            while True:
                ws.receive_text()
        except WebSocketDisconnect as closed:
            assert closed.code == 4401
    assert svc.http.get("/api/v1/alerts", headers=again).status_code == 401
    r = svc.http.post(
        "/api/v1/auth/token", data={"username": "lead", "password": "a new long one 42"}
    )
    assert r.status_code == 200
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert svc.http.get("/api/v1/alerts", headers=fresh).status_code == 200
    actions = [e.action for e in _audit(svc) if e.target == "lead"]
    assert actions[-4:] == ["user_changed", "user_disabled", "user_enabled", "user_password_set"]


def test_the_command_line_lists_and_changes_users_through_the_same_rules(svc: Running) -> None:
    _orgs(svc)
    svc.user("boss", Role.ADMIN)
    svc.user("ann", Role.OPERATOR, org=NORTH, team="A")
    cli = CliRunner()
    env = {"VIGIL_DATABASE_URL": svc.settings.database_url}
    assert cli.invoke(app, ["user", "set-phone", "ann", "+447700900555"], env=env).exit_code == 0
    assert cli.invoke(app, ["user", "set-role", "ann", "supervisor"], env=env).exit_code == 0
    done = cli.invoke(app, ["user", "set-scope", "ann", "--org", SOUTH, "--team", "A"], env=env)
    assert done.exit_code == 0, done.output
    assert cli.invoke(app, ["user", "disable", "ann"], env=env).exit_code == 0
    bad = cli.invoke(app, ["user", "set-scope", "ann", "--org", "Nowhere"], env=env)
    assert bad.exit_code == 1 and "no organisation 'Nowhere'" in bad.output
    bad = cli.invoke(app, ["user", "set-phone", "ann", "12"], env=env)
    assert bad.exit_code == 1 and "E.164" in bad.output
    assert cli.invoke(app, ["user", "set-role", "nobody", "admin"], env=env).exit_code == 1
    # The password asked for twice, with no "[]" of an empty default to take.
    done = cli.invoke(app, ["user", "set-password", "boss"], input=f"{PASSWORD}\n" * 2, env=env)
    assert done.exit_code == 0 and done.output.startswith("Password: "), done.output

    listed = cli.invoke(app, ["user", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.output.splitlines()]
    assert lines[0] == ["USERNAME", "NAME", "ROLE", "SEES", "PHONE", "STATE"]
    text = {line.split()[0]: line for line in listed.output.splitlines()[1:]}
    assert set(text) == {"ann", "boss"}
    for part in ("Ann", "supervisor", f"team A of {SOUTH}", "+447700900555", "disabled"):
        assert part in text["ann"]
    for part in ("Boss", "admin", "the whole service", "active"):
        assert part in text["boss"]
    cli_entries = [(e.action, sorted(e.details)) for e in _audit(svc) if e.actor == "cli"]
    assert cli_entries == [
        ("user_changed", ["phone"]),
        ("user_changed", ["role"]),
        ("user_changed", ["scope"]),
        ("user_disabled", []),
        ("user_password_set", []),
    ]
