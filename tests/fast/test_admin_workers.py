"""Workers, teams and organisations administered over the API (the console's Admin tab) and
the command line: validation, scope, the audit trail, PINs never given back, and the links
workers choose their own PINs with."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from monitor.audit.models import AuditEntry
from monitor.db import utcnow
from monitor.orgs.models import Organisation, Team, Worker, WorkerPinLink
from monitor.security import verify_secret
from monitor.users.models import Role
from tests.fast.handlers import Handlers
from tests.support import add_badge

PINS = {
    "cancel_pin": "2468",
    "cancel_pin_again": "2468",
    "duress_pin": "1357",
    "duress_pin_again": "1357",
}
NORTH, SOUTH = "North Council", "South Trust"


def ids(svc: Handlers, org: str, team: str | None = None) -> tuple[int, int | None]:
    with svc.store.session() as db:
        org_id = db.scalar(select(Organisation.id).where(Organisation.name == org))
        team_id = None
        if team is not None:
            team_id = db.scalar(select(Team.id).where(Team.org_id == org_id, Team.name == team))
    assert org_id is not None
    return org_id, team_id


def worker(svc: Handlers, worker_id: int) -> Worker:
    with svc.store.session() as db:
        w = db.get(Worker, worker_id)
        assert w is not None
        db.expunge(w)
        return w


def audit_log(svc: Handlers) -> list[AuditEntry]:
    with svc.store.session() as db:
        rows = list(db.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        for r in rows:
            db.expunge(r)
        return rows


def workers_count(svc: Handlers) -> int:
    with svc.store.session() as db:
        return len(db.scalars(select(Worker.id)).all())


def no_pin_in(text: str, *pins: str) -> None:
    for pin in pins:
        assert pin not in text, f"PIN {pin} given back: {text}"


@pytest.fixture
def orgs(svc: Handlers) -> dict[str, Any]:
    """Two organisations; North has the teams Housing and Nursing, South has Housing. One
    worker in each team."""
    made = {
        "nh": add_badge(svc.store, "nh-badge", org=NORTH, team="Housing", name="Nia Housing"),
        "nn": add_badge(svc.store, "nn-badge", org=NORTH, team="Nursing", name="Ned Nursing"),
        "sh": add_badge(svc.store, "sh-badge", org=SOUTH, team="Housing", name="Sol Housing"),
    }
    return {k: b.worker_id for k, b in made.items()}


def test_add_edit_move_and_pins_audited_and_never_given_back(
    svc: Handlers, orgs: dict[str, int]
) -> None:
    admin = svc.user("root", Role.ADMIN)
    north, housing = ids(svc, NORTH, "Housing")
    _, nursing = ids(svc, NORTH, "Nursing")
    seen: list[str] = []

    r = svc.http.post(
        "/api/v1/workers",
        headers=admin,
        json={
            "name": "  Amira Khan ",
            "phone": "+44 7700 900123",
            "team_id": housing,
            "responder_notes": "Asthma",
            "pins": PINS,
        },
    )
    assert r.status_code == 201, r.text
    seen.append(r.text)
    added = r.json()
    assert added["name"] == "Amira Khan"  # as typed, less the spaces around it
    assert (added["org"], added["team"], added["pins_set"]) == (NORTH, "Housing", True)
    w = worker(svc, added["id"])
    assert verify_secret(w.cancel_pin_hash, "2468") and verify_secret(w.duress_pin_hash, "1357")

    # Edit and move to another team of the organisation.
    r = svc.http.put(
        f"/api/v1/workers/{w.id}",
        headers=admin,
        json={
            "name": "Amira Khan",
            "phone": "+447700900999",
            "responder_notes": "",
            "team_id": nursing,
        },
    )
    assert r.status_code == 200, r.text
    seen.append(r.text)
    assert (r.json()["team"], r.json()["phone"]) == ("Nursing", "+447700900999")

    # New PINs from the administrator: 204, nothing in the answer.
    new = {
        "cancel_pin": "8642",
        "cancel_pin_again": "8642",
        "duress_pin": "97531",
        "duress_pin_again": "97531",
    }
    r = svc.http.put(f"/api/v1/workers/{w.id}/pins", headers=admin, json=new)
    assert r.status_code == 204 and r.content == b""
    # Nothing claims to be JSON: the console reads any answer that does.
    assert "json" not in r.headers.get("content-type", "")
    assert verify_secret(worker(svc, w.id).duress_pin_hash, "97531")

    listed = svc.http.get("/api/v1/workers", headers=admin)
    seen.append(listed.text)
    row = next(x for x in listed.json() if x["id"] == w.id)
    assert (row["team"], row["org"], row["pins_set"]) == ("Nursing", NORTH, True)
    assert not any(k for k in row if "pin" in k and k != "pins_set")

    entries = [e for e in audit_log(svc) if e.target == f"worker {w.id}"]
    assert [e.action for e in entries] == [
        "worker_added",
        "worker_moved",
        "worker_changed",
        "worker_pins_set",
    ]
    assert all(e.actor == "user:root" for e in entries)
    assert entries[1].details == {"was_team_id": housing, "team_id": nursing}
    assert entries[2].details == {"fields": ["phone", "responder_notes"]}
    assert entries[0].details["pins_set"] is True and entries[0].details["org_id"] == north
    for text in [*seen, *(json.dumps(e.details) for e in audit_log(svc))]:
        no_pin_in(text, "2468", "1357", "8642", "97531")


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"pins": {**PINS, "cancel_pin": "12", "cancel_pin_again": "12"}}, 422, "4 to 8 digits"),
        (
            {"pins": {**PINS, "cancel_pin": "12a45", "cancel_pin_again": "12a45"}},
            422,
            "4 to 8 digits",
        ),
        ({"pins": {**PINS, "duress_pin": "2468", "duress_pin_again": "2468"}}, 422, "must differ"),
        (
            {"pins": {**PINS, "duress_pin_again": "1358"}},
            422,
            "two duress PINs typed are not the same",
        ),
        (
            {"pins": {**PINS, "cancel_pin_again": "2469"}},
            422,
            "two cancel PINs typed are not the same",
        ),
        ({"phone": "07700 900123"}, 422, "country code"),
        ({"name": "   "}, 422, "name"),
        ({"name": "x" * 201}, 422, "name"),
        ({"responder_notes": "x" * 4001}, 422, "responder_notes"),
        ({"team_id": 999999}, 404, "no team 999999"),
        ({"team_id": 2**40}, 422, "team_id"),
        ({"team_id": None, "org_id": None}, 422, "a worker needs a team or an organisation"),
        ({"pin": "1234"}, 422, "pin"),
    ],
)
def test_a_refused_worker_is_not_added_and_its_pins_are_not_echoed(
    svc: Handlers, orgs: dict[str, int], change: dict[str, Any], status: int, words: str
) -> None:
    admin = svc.user("root", Role.ADMIN)
    _, housing = ids(svc, NORTH, "Housing")
    before = workers_count(svc)
    body = {"name": "Amira Khan", "phone": "", "team_id": housing, "pins": PINS, **change}
    r = svc.http.post("/api/v1/workers", headers=admin, json=body)
    assert r.status_code == status, r.text
    assert words in r.text
    no_pin_in(r.text, "2468", "1357", "1358", "2469", "12a45")
    assert '"input"' not in r.text
    assert workers_count(svc) == before
    assert not [e for e in audit_log(svc) if e.action == "worker_added"]


def test_the_pin_route_refuses_what_the_cli_refuses(svc: Handlers, orgs: dict[str, int]) -> None:
    admin = svc.user("root", Role.ADMIN)
    w = orgs["nh"]
    was = worker(svc, w).cancel_pin_hash
    for body, words in [
        ({**PINS, "duress_pin": "2468", "duress_pin_again": "2468"}, "must differ"),
        ({**PINS, "cancel_pin_again": "2469"}, "not the same"),
        ({**PINS, "cancel_pin": "123456789", "cancel_pin_again": "123456789"}, "cancel_pin"),
        ({"cancel_pin": "2468", "duress_pin": "1357"}, "cancel_pin_again"),
    ]:
        r = svc.http.put(f"/api/v1/workers/{w}/pins", headers=admin, json=body)
        assert r.status_code == 422 and words in r.text, r.text
        no_pin_in(r.text, "2468", "1357", "2469", "123456789")
    assert worker(svc, w).cancel_pin_hash == was
    assert svc.http.put("/api/v1/workers/999999/pins", headers=admin, json=PINS).status_code == 404


def test_a_team_supervisor_manages_only_their_team(svc: Handlers, orgs: dict[str, int]) -> None:
    lead = svc.user("housing-lead", Role.SUPERVISOR, org=NORTH, team="Housing")
    _, housing = ids(svc, NORTH, "Housing")
    _, nursing = ids(svc, NORTH, "Nursing")
    _, south_housing = ids(svc, SOUTH, "Housing")
    mine, theirs = orgs["nh"], orgs["nn"]
    keep = worker(svc, theirs)

    assert [w["id"] for w in svc.http.get("/api/v1/workers", headers=lead).json()] == [mine]
    assert [t["id"] for t in svc.http.get("/api/v1/teams", headers=lead).json()] == [housing]
    assert [o["name"] for o in svc.http.get("/api/v1/orgs", headers=lead).json()] == [NORTH]

    edit = {"name": "Ned", "phone": "", "responder_notes": "", "team_id": nursing}
    # Another team's worker does not exist for them.
    assert svc.http.put(f"/api/v1/workers/{theirs}", headers=lead, json=edit).status_code == 404
    assert (
        svc.http.put(f"/api/v1/workers/{theirs}/pins", headers=lead, json=PINS).status_code == 404
    )
    assert svc.http.post(f"/api/v1/workers/{theirs}/pin-links", headers=lead).status_code == 404
    # Their own worker cannot be moved out of their team, to another team or to none.
    r = svc.http.put(f"/api/v1/workers/{mine}", headers=lead, json=edit)
    assert r.status_code == 404 and f"no team {nursing}" in r.text
    r = svc.http.put(f"/api/v1/workers/{mine}", headers=lead, json={**edit, "team_id": None})
    assert r.status_code == 403 and "keeps its workers in that team" in r.text
    # Nor added elsewhere; teams and organisations are not theirs to make.
    new = {"name": "Zoe", "team_id": nursing}
    assert svc.http.post("/api/v1/workers", headers=lead, json=new).status_code == 404
    assert svc.http.post("/api/v1/workers", headers=lead, json={"name": "Zoe"}).status_code == 403
    assert svc.http.post("/api/v1/teams", headers=lead, json={"name": "Mine"}).status_code == 403
    assert svc.http.post("/api/v1/orgs", headers=lead, json={"name": "Mine"}).status_code == 403
    assert (
        svc.http.put(f"/api/v1/teams/{nursing}", headers=lead, json={"name": "X"}).status_code
        == 404
    )
    # Nothing changed.
    after, moved = worker(svc, theirs), worker(svc, mine)
    assert (after.name, after.team_id, after.cancel_pin_hash) == (
        keep.name,
        keep.team_id,
        keep.cancel_pin_hash,
    )
    assert moved.team_id == housing
    assert not [e for e in audit_log(svc) if e.action.startswith(("worker_", "team_", "pin_"))]

    # Within their team they manage: a new worker lands in it, even without naming it.
    r = svc.http.post("/api/v1/workers", headers=lead, json={"name": "Zoe", "team_id": housing})
    assert r.status_code == 201 and r.json()["team_id"] == housing

    # An organisation's supervisor moves between its teams, not to another organisation's.
    north_lead = svc.user("north-lead", Role.SUPERVISOR, org=NORTH)
    r = svc.http.put(
        f"/api/v1/workers/{theirs}", headers=north_lead, json={**edit, "team_id": housing}
    )
    assert r.status_code == 200 and r.json()["team"] == "Housing"
    r = svc.http.put(
        f"/api/v1/workers/{theirs}", headers=north_lead, json={**edit, "team_id": south_housing}
    )
    assert r.status_code == 404
    # And a service-wide admin may not move a worker to another organisation's team either.
    root = svc.user("root", Role.ADMIN)
    r = svc.http.put(
        f"/api/v1/workers/{theirs}", headers=root, json={**edit, "team_id": south_housing}
    )
    assert r.status_code == 422 and "another organisation" in r.text
    assert worker(svc, theirs).team_id == housing


def test_teams_and_organisations(svc: Handlers, orgs: dict[str, int]) -> None:
    root = svc.user("root", Role.ADMIN)
    north_admin = svc.user("north-admin", Role.ADMIN, org=NORTH)
    centre_sup = svc.user("centre-sup", Role.SUPERVISOR)
    north, _ = ids(svc, NORTH)

    r = svc.http.post(
        "/api/v1/orgs", headers=root, json={"name": "East Health", "require_visit_end_pin": True}
    )
    assert r.status_code == 201, r.text
    east = r.json()
    assert (east["require_visit_end_pin"], east["teams"], east["workers"]) == (True, 0, 0)
    assert svc.http.post("/api/v1/orgs", headers=root, json={"name": NORTH}).status_code == 409
    r = svc.http.put(
        f"/api/v1/orgs/{east['id']}",
        headers=root,
        json={"name": "East NHS", "require_visit_end_pin": False},
    )
    assert r.status_code == 200 and r.json()["name"] == "East NHS"
    r = svc.http.put(
        f"/api/v1/orgs/{east['id']}",
        headers=root,
        json={"name": SOUTH, "require_visit_end_pin": False},
    )
    assert r.status_code == 409
    # Only an administrator of the whole service changes organisations.
    for who in (north_admin, centre_sup):
        assert svc.http.post("/api/v1/orgs", headers=who, json={"name": "Mine"}).status_code == 403
        r = svc.http.put(
            f"/api/v1/orgs/{north}",
            headers=who,
            json={"name": "Mine", "require_visit_end_pin": True},
        )
        assert r.status_code == 403
    assert [o["name"] for o in svc.http.get("/api/v1/orgs", headers=north_admin).json()] == [NORTH]
    assert len(svc.http.get("/api/v1/orgs", headers=centre_sup).json()) == 3

    # Teams: an organisation's admin adds to their own; the whole service's names one.
    r = svc.http.post("/api/v1/teams", headers=north_admin, json={"name": "Youth"})
    assert r.status_code == 201 and r.json()["org"] == NORTH
    assert (
        svc.http.post("/api/v1/teams", headers=north_admin, json={"name": "Youth"}).status_code
        == 409
    )
    r = svc.http.post(
        "/api/v1/teams", headers=north_admin, json={"name": "X", "org_id": east["id"]}
    )
    assert r.status_code == 404
    assert svc.http.post("/api/v1/teams", headers=root, json={"name": "Youth"}).status_code == 422
    r = svc.http.post("/api/v1/teams", headers=root, json={"name": "Youth", "org_id": east["id"]})
    assert r.status_code == 201 and r.json()["org"] == "East NHS"
    team = r.json()["id"]
    r = svc.http.put(f"/api/v1/teams/{team}", headers=north_admin, json={"name": "Mine"})
    assert r.status_code == 404
    r = svc.http.put(f"/api/v1/teams/{team}", headers=root, json={"name": "Young People"})
    assert r.status_code == 200 and r.json()["name"] == "Young People"

    actions = [
        (e.actor, e.action)
        for e in audit_log(svc)
        if e.action.startswith(("organisation_", "team_"))
    ]
    assert actions == [
        ("user:root", "organisation_added"),
        ("user:root", "organisation_changed"),
        ("user:north-admin", "team_added"),
        ("user:root", "team_added"),
        ("user:root", "team_renamed"),
    ]


def _link(svc: Handlers, who: dict[str, str], worker_id: int) -> str:
    r = svc.http.post(f"/api/v1/workers/{worker_id}/pin-links", headers=who)
    assert r.status_code == 201, r.text
    # A one-time credential: no cache on the way may keep the answer.
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["link"].startswith(svc.settings.public_url.rstrip("/") + "/pins#t=")
    assert body["qr_svg"].startswith("<svg")
    return str(body["link"].split("#t=", 1)[1])


def test_a_worker_chooses_their_pins_through_a_link_once(
    svc: Handlers, orgs: dict[str, int]
) -> None:
    lead = svc.user("housing-lead", Role.SUPERVISOR, org=NORTH, team="Housing")
    w = orgs["nh"]
    token = _link(svc, lead, w)
    with svc.store.session() as db:
        stored = db.scalars(select(WorkerPinLink.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0]

    r = svc.http.post("/api/v1/pin-links/about", json={"token": token})
    assert r.status_code == 200 and r.json()["worker_name"] == "Nia Housing"
    mine = {
        "cancel_pin": "4826",
        "cancel_pin_again": "4826",
        "duress_pin": "731905",
        "duress_pin_again": "731905",
    }

    # A wrong confirmation is refused, and the link still works.
    was = worker(svc, w)
    r = svc.http.post(
        "/api/v1/pin-links/use", json={"token": token, **mine, "duress_pin_again": "731906"}
    )
    assert r.status_code == 422 and "two duress PINs typed are not the same" in r.text
    no_pin_in(r.text, "4826", "731905", "731906")
    assert worker(svc, w).duress_pin_hash == was.duress_pin_hash

    r = svc.http.post("/api/v1/pin-links/use", json={"token": token, **mine})
    assert r.status_code == 204, r.text
    now = worker(svc, w)
    assert verify_secret(now.cancel_pin_hash, "4826") and verify_secret(
        now.duress_pin_hash, "731905"
    )

    # Once only.
    r = svc.http.post("/api/v1/pin-links/use", json={"token": token, **PINS})
    assert r.status_code == 410 and "used already" in r.text
    assert verify_secret(worker(svc, w).cancel_pin_hash, "4826")
    assert svc.http.post("/api/v1/pin-links/about", json={"token": token}).status_code == 410
    assert svc.http.post("/api/v1/pin-links/about", json={"token": "nonsense"}).status_code == 404

    # Expired: refused. A new link makes an unused earlier one unknown.
    old = _link(svc, lead, w)
    token = _link(svc, lead, w)
    assert svc.http.post("/api/v1/pin-links/use", json={"token": old, **PINS}).status_code == 404
    with svc.store.begin() as db:
        db.execute(update(WorkerPinLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = svc.http.post("/api/v1/pin-links/use", json={"token": token, **PINS})
    assert r.status_code == 410 and "expired" in r.text
    assert verify_secret(worker(svc, w).cancel_pin_hash, "4826")

    entries = [
        (e.actor, e.action, e.details.get("by"))
        for e in audit_log(svc)
        if e.target == f"worker {w}"
    ]
    assert entries == [
        ("user:housing-lead", "pin_link_issued", None),
        (f"worker:{w}", "worker_pins_set", "worker"),
        ("user:housing-lead", "pin_link_issued", None),
        ("user:housing-lead", "pin_link_issued", None),
    ]
    for e in audit_log(svc):
        no_pin_in(json.dumps(e.details) + e.target, "4826", "731905", token, old)


def test_a_worker_added_without_pins_has_none_until_they_choose(
    svc: Handlers, orgs: dict[str, int]
) -> None:
    admin = svc.user("north-admin", Role.ADMIN, org=NORTH)
    r = svc.http.post("/api/v1/workers", headers=admin, json={"name": "Ola New"})
    assert r.status_code == 201 and r.json()["pins_set"] is False and r.json()["team"] is None
    new = worker(svc, r.json()["id"])
    assert new.cancel_pin_hash == "" and new.org_id == ids(svc, NORTH)[0]
    token = _link(svc, admin, new.id)
    assert svc.http.post("/api/v1/pin-links/use", json={"token": token, **PINS}).status_code == 204
    listed = svc.http.get("/api/v1/workers", headers=admin).json()
    assert next(x for x in listed if x["id"] == new.id)["pins_set"] is True


# -- the command line -------------------------------------------------------------------------


def test_cli_worker_list_and_set_pins(vigil) -> None:  # type: ignore[no-untyped-def]
    pins = ["--cancel-pin", "2468", "--duress-pin", "1357"]
    out = vigil(
        "worker",
        "add",
        "Sam Lee",
        "--org",
        NORTH,
        "--team",
        "Housing",
        "--phone",
        "+447700900123",
        *pins,
    ).output
    # What was made with the worker is said: a mistyped name makes an organisation or team.
    assert (
        out.strip()
        == f"worker 1 added: Sam Lee, team Housing of {NORTH} (new organisation and team)"
    )
    out = vigil("worker", "add", "Ana Ruiz", "--org", SOUTH, *pins).output
    assert out.strip() == f"worker 2 added: Ana Ruiz, {SOUTH} (new organisation)"
    # PINs asked for twice: a mismatch is asked again, and what is set is what was confirmed.
    out = vigil(
        "worker",
        "add",
        "Ben Cole",
        "--org",
        NORTH,
        "--team",
        "Nursing",
        input="1111\n1112\n1111\n1111\n2222\n2222\n",
    ).output
    assert "do not match" in out and "worker 3 added" in out
    assert out.rstrip().endswith(f"worker 3 added: Ben Cole, team Nursing of {NORTH} (new team)")
    assert "Cancel PIN: " in out and "Duress PIN: " in out

    lines = vigil("worker", "list").output.splitlines()
    # Headed as vigil user list and vigil device list are.
    assert lines[0].split() == ["ID", "NAME", "TEAM", "ORGANISATION", "PHONE", "PINS"]
    assert lines[1].split() == ["2", "Ana", "Ruiz", "-", "South", "Trust", "-", "set"]
    assert lines[2].split() == ["3", "Ben", "Cole", "Nursing", "North", "Council", "-", "set"]
    assert lines[3].split() == [
        "1",
        "Sam",
        "Lee",
        "Housing",
        "North",
        "Council",
        "+447700900123",
        "set",
    ]
    assert [
        x.split()[0] for x in vigil("worker", "list", "--org", NORTH).output.splitlines()[1:]
    ] == ["3", "1"]
    assert [
        x.split()[0] for x in vigil("worker", "list", "--team", "Housing").output.splitlines()[1:]
    ] == ["1"]
    assert vigil("worker", "list", "--team", "Nobody").output.strip() == "no workers match"

    out = vigil("worker", "set-pins", "1", input="4321\n4321\n8765\n8765\n").output
    assert "worker 1 (Sam Lee): new PINs set" in out
    no_pin_in(out.replace("*", ""), "4321\n", "8765\n")
    with vigil.store().session() as db:
        sam = db.get(Worker, 1)
        assert sam is not None and verify_secret(sam.duress_pin_hash, "8765")
        entries = [
            (e.actor, e.action) for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
    assert entries == [("cli", "worker_added")] * 3 + [("cli", "worker_pins_set")]

    refused = vigil(
        "worker", "set-pins", "1", "--cancel-pin", "5555", "--duress-pin", "5555", ok=False
    )
    assert "must differ" in refused.output
    assert "no worker 9" in vigil("worker", "set-pins", "9", *pins, ok=False).output
    assert "country code" in vigil("worker", "add", "X", "--phone", "0770", *pins, ok=False).output
    with vigil.store().session() as db:
        sam = db.get(Worker, 1)
        assert sam is not None and verify_secret(sam.cancel_pin_hash, "4321")
        assert len(db.scalars(select(Worker)).all()) == 3


def test_cli_teams(vigil) -> None:  # type: ignore[no-untyped-def]
    assert (
        "team 1 added: Housing (North Council)"
        in vigil("team", "add", "Housing", "--org", NORTH).output
    )
    assert (
        "already has a team called 'Housing'"
        in vigil("team", "add", "Housing", "--org", NORTH, ok=False).output
    )
    vigil("team", "add", "Housing", "--org", SOUTH)
    lines = vigil("team", "list", "--org", SOUTH).output.splitlines()
    assert lines[0].split() == ["ID", "TEAM", "ORGANISATION", "WORKERS"]
    assert lines[1].split() == ["2", "Housing", "South", "Trust", "0"]
    # An organisation the command makes is made as the console's administrators make one:
    # checked, and in the audit log.
    with vigil.store().session() as db:
        entries = [
            (e.actor, e.action, e.details.get("name"))
            for e in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
    assert entries == [
        ("cli", "organisation_added", NORTH),
        ("cli", "team_added", "Housing"),
        ("cli", "organisation_added", SOUTH),
        ("cli", "team_added", "Housing"),
    ]
    assert "name" in vigil("team", "add", "Nursing", "--org", " ", ok=False).output
    with vigil.store().session() as db:
        assert len(db.scalars(select(Organisation)).all()) == 2
