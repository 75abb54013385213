"""Places and cautions (issue 17): their administration within scope and its audit trail,
expiry, matching visits and alerts to places, the operator's view recorded in the alert's
timeline, an incident made a caution, and the devices' search."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor.alerts import chain
from monitor.alerts.labels import CAUTION_KIND_LABELS, all_labels
from monitor.alerts.models import Alert, AlertEvent
from monitor.audit.models import AuditEntry
from monitor.devices.models import LocationFix
from monitor.orgs.models import Organisation, Team
from monitor.places.models import Caution, CautionKind, Place
from monitor.users.models import Role
from monitor.visits.models import Visit
from tests.fast.handlers import FastDevice
from tests.fast.handlers import Handlers as Running
from tests.support import Badge, add_badge, wait_until

ELM = (51.5000, -0.1200)
# About 50 m and 100 m north of Elm Street (a degree of latitude is some 111 km).
NEAR = (51.50045, -0.1200)
FAR = (51.50090, -0.1200)


def day(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


@dataclass
class World:
    svc: Running
    admin: dict[str, str]  # of the whole service
    north: dict[str, str]  # supervisor of the North organisation
    housing: dict[str, str]  # supervisor of North's Housing team
    schools: dict[str, str]  # supervisor of North's Schools team
    op: dict[str, str]  # operator of the whole service
    south: dict[str, str]  # supervisor of the South organisation
    north_id: int
    south_id: int
    housing_id: int
    schools_id: int
    badges: dict[str, Badge]

    def post(self, url: str, body: Any, who: dict[str, str], code: int = 201) -> Any:
        r = self.svc.http.post(url, json=body, headers=who)
        assert r.status_code == code, r.text
        return r.json()

    def get(self, url: str, who: dict[str, str], code: int = 200) -> Any:
        r = self.svc.http.get(url, headers=who)
        assert r.status_code == code, r.text
        return r.json()

    def place(
        self, address: str, at: tuple[float, float] | None = ELM, who: dict[str, str] | None = None
    ) -> Any:
        body: dict[str, Any] = {"address": address}
        if at is not None:
            body["lat"], body["lon"] = at
        return self.post("/api/v1/places", body, who or self.north)

    def caution(self, place_id: int, who: dict[str, str] | None = None, **kw: Any) -> Any:
        body = {"kind": "aggressive_animal", "text": "Large dog", "expires_on": day(90), **kw}
        return self.post(f"/api/v1/places/{place_id}/cautions", body, who or self.north)


@pytest.fixture
def world(svc: Running) -> World:
    badges = {
        b.device_id: b
        for b in (
            add_badge(svc.store, "pl-north-h", org="North", team="Housing"),
            add_badge(svc.store, "pl-north-s", org="North", team="Schools"),
            add_badge(svc.store, "pl-south", org="South", team="Housing"),
        )
    }
    with svc.store.session() as db:
        orgs = {o.name: o.id for o in db.scalars(select(Organisation))}
        teams = {(t.org_id, t.name): t.id for t in db.scalars(select(Team))}
    north_id, south_id = orgs["North"], orgs["South"]
    return World(
        svc=svc,
        admin=svc.user("pl-admin", Role.ADMIN),
        north=svc.user("pl-north", Role.SUPERVISOR, org="North"),
        housing=svc.user("pl-housing", Role.SUPERVISOR, org="North", team="Housing"),
        schools=svc.user("pl-schools", Role.SUPERVISOR, org="North", team="Schools"),
        op=svc.user("pl-op", Role.OPERATOR),
        south=svc.user("pl-south", Role.SUPERVISOR, org="South"),
        north_id=north_id,
        south_id=south_id,
        housing_id=teams[(north_id, "Housing")],
        schools_id=teams[(north_id, "Schools")],
        badges=badges,
    )


def audit_log(svc: Running, prefix: str = "") -> list[tuple[str, str, str]]:
    with svc.store.session() as db:
        rows = db.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        return [
            (e.actor, e.action, e.target)
            for e in rows
            if e.action.startswith(("place_", "caution")) and e.target.startswith(prefix)
        ]


def counts(svc: Running) -> tuple[int, int, int]:
    with svc.store.session() as db:
        return (
            db.scalar(select(func.count(Place.id))) or 0,
            db.scalar(select(func.count(Caution.id))) or 0,
            db.scalar(select(func.count(AuditEntry.id))) or 0,
        )


def test_every_caution_kind_has_words() -> None:
    assert set(CAUTION_KIND_LABELS) == {k.value for k in CautionKind}
    assert all_labels()["caution_kind"]["hostile_person"] == "Hostile or violent person"


def test_add_change_search_delete_each_audited(world: World) -> None:
    w, svc = world, world.svc
    made = w.place("Flat 3, 12 Elm Street")
    assert made["org_id"] == w.north_id and made["org"] == "North"
    assert (made["caution_count"], made["cautions"], made["incidents"]) == (0, [], [])
    pid = made["id"]
    w.place("4 Oak Road", at=None)

    # Words of the address, in any order, any case; a word that is not there finds nothing.
    for q, found in [
        ("elm 12", ["Flat 3, 12 Elm Street"]),
        ("STREET flat", ["Flat 3, 12 Elm Street"]),
        ("road", ["4 Oak Road"]),
        ("elm road", []),
        ("", ["4 Oak Road", "Flat 3, 12 Elm Street"]),
    ]:
        got = [p["address"] for p in w.get(f"/api/v1/places?q={q}", w.north)]
        assert sorted(got) == sorted(found), q

    dog = w.caution(pid, review_on=day(30))
    assert dog["kind_label"] == "Aggressive animal" and dog["team"] is None
    assert dog["recorded_by"] == "user:pl-north" and dog["review_due"] is False
    threat = w.caution(
        pid,
        kind="hostile_person",
        text="Father threatened staff",
        team_id=w.housing_id,
        expires_on=day(10),
    )
    assert threat["team"] == "Housing" and threat["review_due"] is True  # expires within 14 days

    r = svc.http.patch(
        f"/api/v1/cautions/{dog['id']}",
        json={"text": "Two large dogs", "review_on": None},
        headers=w.north,
    )
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "Two large dogs" and r.json()["review_on"] is None
    r = svc.http.patch(
        f"/api/v1/places/{pid}", json={"address": "Flat 3, 12 Elm St"}, headers=w.north
    )
    assert r.status_code == 200 and r.json()["address"] == "Flat 3, 12 Elm St"
    assert [p["id"] for p in w.get("/api/v1/places?q=elm st", w.north)] == [pid]

    detail = w.get(f"/api/v1/places/{pid}", w.north)
    assert detail["caution_count"] == 2 and detail["review_due_count"] == 1
    assert {c["text"] for c in detail["cautions"]} == {"Two large dogs", "Father threatened staff"}
    review = w.get("/api/v1/cautions/review", w.north)
    assert [(c["id"], c["address"]) for c in review] == [(threat["id"], "Flat 3, 12 Elm St")]

    assert svc.http.delete(f"/api/v1/cautions/{threat['id']}", headers=w.north).status_code == 204
    assert svc.http.delete(f"/api/v1/places/{pid}", headers=w.north).status_code == 204
    assert w.get(f"/api/v1/places/{pid}", w.north, 404)
    with svc.store.session() as db:
        assert db.scalar(select(func.count(Caution.id))) == 0  # the dog went with its place

    who = "user:pl-north"
    assert audit_log(svc) == [
        (who, "place_added", f"place:{pid}"),
        (who, "place_added", f"place:{pid + 1}"),
        (who, "caution_added", f"caution:{dog['id']}"),
        (who, "caution_added", f"caution:{threat['id']}"),
        (who, "caution_changed", f"caution:{dog['id']}"),
        (who, "place_changed", f"place:{pid}"),
        (who, "caution_deleted", f"caution:{threat['id']}"),
        (who, "place_deleted", f"place:{pid}"),
    ]
    with svc.store.session() as db:
        changed = db.scalar(select(AuditEntry).where(AuditEntry.action == "caution_changed"))
        assert changed is not None
        # What changed, not what it says: the text is personal data.
        assert changed.details["changed"] == ["review_on", "text"]
        assert "Two large dogs" not in json.dumps(changed.details)


def test_scope_org_team_operator_and_other_organisation(world: World) -> None:
    w, svc = world, world.svc
    pid = w.place("12 Elm Street")["id"]
    org_wide = w.caution(pid, text="Dog in the garden")
    housing = w.caution(pid, text="Father threatened staff", team_id=w.housing_id)
    schools = w.caution(pid, text="Ask for the head of year", team_id=w.schools_id)
    south_pid = w.place("1 South Lane", who=w.south)["id"]

    def texts(who: dict[str, str]) -> set[str]:
        return {c["text"] for c in w.get(f"/api/v1/places/{pid}", who)["cautions"]}

    everything = {"Dog in the garden", "Father threatened staff", "Ask for the head of year"}
    assert texts(w.admin) == texts(w.north) == everything
    # A team reads the organisation's places, and only org-wide and its own team's cautions.
    assert texts(w.housing) == {"Dog in the garden", "Father threatened staff"}
    assert w.get(f"/api/v1/places/{pid}", w.housing)["caution_count"] == 2
    assert [p["id"] for p in w.get("/api/v1/places", w.housing)] == [pid]

    # Another organisation's place and caution do not exist for them.
    assert w.get(f"/api/v1/places/{south_pid}", w.north, 404)
    assert (
        svc.http.patch(
            f"/api/v1/places/{south_pid}", json={"address": "x"}, headers=w.north
        ).status_code
        == 404
    )
    assert svc.http.delete(f"/api/v1/places/{pid}", headers=w.south).status_code == 404
    r = svc.http.patch(f"/api/v1/cautions/{org_wide['id']}", json={"text": "x"}, headers=w.south)
    assert r.status_code == 404
    assert w.post(
        f"/api/v1/places/{pid}/cautions",
        {"kind": "other", "text": "x", "expires_on": day(5)},
        w.south,
        404,
    )
    assert [p["id"] for p in w.get("/api/v1/places", w.south)] == [south_pid]
    # Another team's caution, to a team: not found either.
    r = svc.http.delete(f"/api/v1/cautions/{schools['id']}", headers=w.housing)
    assert r.status_code == 404

    # A team records for its own team only; the organisation's cautions are read-only to it.
    own = w.caution(pid, who=w.housing, text="Park on the road")
    assert own["team_id"] == w.housing_id
    refused = w.post(
        f"/api/v1/places/{pid}/cautions",
        {"kind": "other", "text": "x", "expires_on": day(5), "team_id": w.schools_id},
        w.housing,
        422,
    )
    assert refused["detail"] == "team_id: you may record cautions only for your own team"
    r = svc.http.patch(f"/api/v1/cautions/{org_wide['id']}", json={"text": "x"}, headers=w.housing)
    assert r.status_code == 403, r.text
    r = svc.http.patch(
        f"/api/v1/cautions/{housing['id']}",
        json={"text": "Father threatened staff twice"},
        headers=w.housing,
    )
    assert r.status_code == 200, r.text
    # Nor may a team move, rename or delete a place whose cautions are not all its own: the
    # other teams' cautions would be shown somewhere else, or not at all.
    assert svc.http.delete(f"/api/v1/places/{pid}", headers=w.housing).status_code == 403
    for change in ({"address": "14 Elm Street"}, {"lat": 51.6, "lon": -0.2}):
        r = svc.http.patch(f"/api/v1/places/{pid}", json=change, headers=w.housing)
        assert r.status_code == 403 and "may change it" in r.text, r.text
    assert w.get(f"/api/v1/places/{pid}", w.north)["address"] == "12 Elm Street"
    # A place with only the team's own cautions is theirs to change.
    mine = w.place("3 Oak Road", who=w.housing)["id"]
    w.caution(mine, who=w.housing, text="Narrow stairs")
    r = svc.http.patch(f"/api/v1/places/{mine}", json={"address": "3a Oak Road"}, headers=w.housing)
    assert r.status_code == 200, r.text
    # The organisation's supervisor gives a team only a team of the place's organisation.
    with svc.store.session() as db:
        south_team = db.scalar(select(Team.id).where(Team.org_id == w.south_id))
    refused = w.post(
        f"/api/v1/places/{pid}/cautions",
        {"kind": "other", "text": "x", "expires_on": day(5), "team_id": south_team},
        w.north,
        422,
    )
    assert refused["detail"] == f"team_id: the place's organisation has no team {south_team}"

    # Operators see cautions only through an alert.
    for method, url in [
        ("GET", "/api/v1/places"),
        ("GET", f"/api/v1/places/{pid}"),
        ("GET", "/api/v1/cautions/review"),
        ("DELETE", f"/api/v1/places/{pid}"),
    ]:
        assert svc.http.request(method, url, headers=w.op).status_code == 403
        assert svc.http.request(method, url).status_code == 401
    # A service-wide admin with several organisations says which.
    refused = w.post("/api/v1/places", {"address": "Nowhere 1"}, w.admin, 422)
    assert refused["detail"] == "org_id: say which organisation the place belongs to"
    assert (
        w.post("/api/v1/places", {"address": "9 South Lane", "org_id": w.south_id}, w.admin)["org"]
        == "South"
    )
    refused = w.post(
        "/api/v1/places", {"address": "9 North Lane", "org_id": w.south_id}, w.north, 422
    )
    assert refused["detail"] == "org_id: you may add places only to your own organisation"


BAD: list[tuple[str, str, dict[str, Any], str]] = [
    ("/api/v1/places", "POST", {"address": ""}, "address"),
    ("/api/v1/places", "POST", {"address": "   "}, "address: it has no letters or numbers"),
    (
        "/api/v1/places",
        "POST",
        {"address": "1 Elm St", "lat": 51.5},
        "lat: give both lat and lon, or neither",
    ),
    ("/api/v1/places", "POST", {"address": "1 Elm St", "lat": 91, "lon": 0}, "lat"),
    ("/api/v1/places", "POST", {"address": "1 Elm St", "lat": "51.5", "lon": 0}, "lat"),
    ("/api/v1/places", "POST", {"address": "1 Elm St", "colour": "red"}, "colour"),
    ("/api/v1/places", "POST", {"address": "1 Elm\u0000 St"}, "address"),
    ("/api/v1/places/{pid}", "PATCH", {"address": None}, "address: may not be empty"),
    (
        "/api/v1/places/{pid}/cautions",
        "POST",
        {"kind": "dog", "text": "x", "expires_on": "{d90}"},
        "kind",
    ),
    (
        "/api/v1/places/{pid}/cautions",
        "POST",
        {"kind": "other", "text": "", "expires_on": "{d90}"},
        "text",
    ),
    ("/api/v1/places/{pid}/cautions", "POST", {"kind": "other", "text": "x"}, "expires_on"),
    (
        "/api/v1/places/{pid}/cautions",
        "POST",
        {"kind": "other", "text": "x", "expires_on": 1893456000},
        "expires_on",
    ),
    (
        "/api/v1/places/{pid}/cautions",
        "POST",
        {"kind": "other", "text": "x", "expires_on": "{d-1}"},
        "expires_on: it is in the past",
    ),
    (
        "/api/v1/places/{pid}/cautions",
        "POST",
        {"kind": "other", "text": "x", "expires_on": "{d1200}"},
        "expires_on: at most 3 years ahead",
    ),
    (
        "/api/v1/places/{pid}/cautions",
        "POST",
        {"kind": "other", "text": "x", "expires_on": "{d10}", "review_on": "{d20}"},
        "review_on: it is after expires_on",
    ),
    (
        "/api/v1/places/{pid}/cautions",
        "POST",
        {"kind": "other", "text": "x", "expires_on": "{d10}", "team_id": "1"},
        "team_id",
    ),
    (
        "/api/v1/cautions/{cid}",
        "PATCH",
        {"review_on": "{d200}"},
        "review_on: it is after expires_on",
    ),
    ("/api/v1/cautions/{cid}", "PATCH", {"expires_on": None}, "expires_on: may not be empty"),
    ("/api/v1/cautions/{cid}", "PATCH", {"text": "x", "secret": 1}, "secret"),
]


def test_bad_input_is_refused_and_changes_nothing(world: World) -> None:
    w = world
    pid = w.place("12 Elm Street")["id"]
    cid = w.caution(pid)["id"]
    for url, method, body, detail in BAD:
        refused(w, url.format(pid=pid, cid=cid), method, body, detail, pid, cid)


def refused(
    w: World, url: str, method: str, body: dict[str, Any], detail: str, pid: int, cid: int
) -> None:
    svc = w.svc
    subs = {
        "{d90}": day(90),
        "{d-1}": day(-1),
        "{d1200}": day(1200),
        "{d10}": day(10),
        "{d20}": day(20),
        "{d200}": day(200),
    }
    body = {k: subs.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = counts(svc)
    with svc.store.session() as db:
        place_before = db.get(Place, pid).__dict__.copy()
    r = svc.http.request(method, url, json=body, headers=w.north)
    assert r.status_code == 422, (url, body, r.text)
    got = r.json()["detail"]
    said = got if isinstance(got, str) else " ".join(str(e["loc"][-1]) for e in got)
    assert said.startswith(detail), said
    assert counts(svc) == before
    with svc.store.session() as db:
        after = db.get(Place, pid).__dict__
        assert {k: after[k] for k in ("address", "lat", "lon")} == {
            k: place_before[k] for k in ("address", "lat", "lon")
        }
        caution = db.get(Caution, cid)
        assert caution is not None and caution.text == "Large dog" and caution.updated_by is None


def start_visit(
    device: FastDevice, visit_id: str, at: tuple[float, float] | None, **extra: Any
) -> None:
    msg: dict[str, Any] = {
        "v": 1,
        "ts": int(time.time() * 1000),
        "id": visit_id,
        "action": "start",
        "duration_s": 1800,
        **extra,
    }
    if at is not None:
        msg["loc"] = {"lat": at[0], "lon": at[1], "acc": 8}
    device.publish_raw("visit", json.dumps(msg), qos=1)


def visit_place(svc: Running, device_id: str, visit_id: str) -> tuple[int | None, str | None]:
    with svc.store.session() as db:
        v = db.scalar(
            select(Visit).where(Visit.device_id == device_id, Visit.device_visit_id == visit_id)
        )
        assert v is not None
        return v.place_id, v.place_match


def test_visits_are_matched_by_the_place_chosen_or_by_distance(world: World) -> None:
    w, svc = world, world.svc
    elm = w.place("12 Elm Street")["id"]
    oak = w.place("4 Oak Road", at=FAR)["id"]
    south = w.place("1 South Lane", at=ELM, who=w.south)["id"]  # same spot, other organisation
    w.caution(elm, text="Large dog, kept in the kitchen")
    w.caution(elm, kind="hostile_person", text="Father threatened staff", team_id=w.housing_id)
    w.caution(elm, kind="other", text="Ask for the head of year", team_id=w.schools_id)
    gone = w.caution(elm, kind="other", text="Gone", expires_on=day(0))["id"]
    with svc.store.begin() as db:  # expired yesterday: hidden from the worker too
        expired = db.get(Caution, gone)
        assert expired is not None
        expired.expires_on = datetime.now(UTC).date() - timedelta(days=1)
    housing = svc.device("pl-north-h")

    # Chosen from the list: that place, wherever the worker stands.
    start_visit(housing, "v-chosen", FAR, place=elm)
    started = housing.wait_for("visit_started", visit_id="v-chosen", timeout=10)
    assert started.payload["place"] == {"id": elm, "address": "12 Elm Street"}
    assert started.payload["cautions"] == [
        {
            "kind": "hostile_person",
            "label": "Hostile or violent person",
            "text": "Father threatened staff",
        },
        {
            "kind": "aggressive_animal",
            "label": "Aggressive animal",
            "text": "Large dog, kept in the kitchen",
        },
    ]
    assert visit_place(svc, "pl-north-h", "v-chosen") == (elm, "chosen")

    # Another organisation's place is never matched: chosen, it is ignored and the position
    # decides; near it, the worker's own organisation's place within the distance wins.
    start_visit(housing, "v-other-org", NEAR, place=south)
    assert (
        housing.wait_for("visit_started", visit_id="v-other-org", timeout=10).payload["place"]["id"]
        == elm
    )
    assert visit_place(svc, "pl-north-h", "v-other-org") == (elm, "position")
    south_badge = svc.device("pl-south")
    start_visit(south_badge, "v-south", NEAR)
    assert (
        south_badge.wait_for("visit_started", visit_id="v-south", timeout=10).payload["place"]["id"]
        == south
    )

    # By distance: about 50 m away is within 75 m; Oak Road is nearer to FAR.
    start_visit(housing, "v-near", NEAR)
    housing.wait_for("visit_started", visit_id="v-near", timeout=10)
    assert visit_place(svc, "pl-north-h", "v-near") == (elm, "position")
    start_visit(housing, "v-far", FAR)
    housing.wait_for("visit_started", visit_id="v-far", timeout=10)
    assert visit_place(svc, "pl-north-h", "v-far") == (oak, "position")
    # About 60 m south and 60 m east: 85 m away, not matched (though within 75 m each way).
    start_visit(housing, "v-corner", (51.49946, -0.11913))
    housing.wait_for("visit_started", visit_id="v-corner", timeout=10)
    assert visit_place(svc, "pl-north-h", "v-corner") == (None, None)
    # About 200 m from both: no place, and the answer says none.
    start_visit(housing, "v-none", (51.5027, -0.1200))
    plain = housing.wait_for("visit_started", visit_id="v-none", timeout=10)
    assert "place" not in plain.payload and "cautions" not in plain.payload
    assert visit_place(svc, "pl-north-h", "v-none") == (None, None)
    # Another team's worker is told the organisation's cautions and their own team's.
    schools = svc.device("pl-north-s")
    start_visit(schools, "v-schools", None, place=elm)
    told = schools.wait_for("visit_started", visit_id="v-schools", timeout=10).payload["cautions"]
    assert [c["text"] for c in told] == [
        "Ask for the head of year",
        "Large dog, kept in the kitchen",
    ]

    # A place of the wrong type is refused like any other field; nothing is stored.
    start_visit(housing, "v-bad", ELM, place="12")
    rejected = housing.wait_for("rejected", timeout=10)
    assert rejected.payload["reason"].startswith("place:"), rejected.payload
    with svc.store.session() as db:
        assert db.scalar(select(Visit).where(Visit.device_visit_id == "v-bad")) is None


def test_visit_started_keeps_its_cautions_short_and_when_sent_again(world: World) -> None:
    w, svc = world, world.svc
    elm = w.place("12 Elm Street")["id"]
    for i in range(12):
        w.caution(
            elm, text=f"{i:02d}" + "\U0001f415" * 1998
        )  # 2000 characters, 12 bytes each in JSON
    housing = svc.device("pl-north-h")
    start_visit(housing, "v-long", ELM)
    started = housing.wait_for("visit_started", visit_id="v-long", timeout=10)
    assert 1 <= len(started.payload["cautions"]) <= 10
    assert all(len(c["text"]) <= 300 for c in started.payload["cautions"])
    assert len(json.dumps(started.payload).encode()) < 12 * 1024
    # Coming online again, the device is told the visit stands as it was first told.
    before = len([c for c in housing.commands if c.type == "visit_started"])
    housing.publish_raw(
        "status", json.dumps({"v": 1, "ts": int(time.time() * 1000), "online": True}), qos=1
    )
    again = wait_until(
        lambda: [c for c in housing.commands if c.type == "visit_started"][before:],
        timeout=10,
        what="visit_started sent again",
    )
    assert again[0].payload["place"] == started.payload["place"]
    assert again[0].payload["cautions"] == started.payload["cautions"]


def raise_at(
    svc: Running, device: FastDevice, at: tuple[float, float] | None, *, located: bool = True
) -> int:
    if at is not None:
        device.position = at
    device_alert_id = device.raise_alert(located=located)
    device.wait_for("alert_received", alert_id=device_alert_id, timeout=10)
    with svc.store.session() as db:
        alert_id = db.scalar(select(Alert.id).where(Alert.device_alert_id == device_alert_id))
        assert alert_id is not None
        return alert_id


def fixes_of(svc: Running, device_id: str) -> int:
    with svc.store.session() as db:
        q = select(func.count(LocationFix.id)).where(LocationFix.device_id == device_id)
        return db.scalar(q) or 0


def shown_entries(svc: Running, alert_id: int) -> list[tuple[str, str]]:
    with svc.store.session() as db:
        rows = db.scalars(
            select(AlertEvent).where(
                AlertEvent.alert_id == alert_id, AlertEvent.kind == "cautions_shown"
            )
        )
        return [(e.actor, e.text) for e in rows]


def test_the_operator_sees_cautions_and_previous_incidents_recorded_once(world: World) -> None:
    w, svc = world, world.svc
    elm = w.place("12 Elm Street")["id"]
    dog = w.caution(elm, text="Large dog")
    threat = w.caution(
        elm, kind="hostile_person", text="Father threatened staff", team_id=w.housing_id
    )
    w.caution(elm, kind="other", text="Ask for the head of year", team_id=w.schools_id)
    housing = svc.device("pl-north-h")

    # An earlier incident on a visit the worker chose Elm Street for, resolved.
    start_visit(housing, "v-1", FAR, place=elm)
    housing.wait_for("visit_started", visit_id="v-1", timeout=10)
    earlier = raise_at(svc, housing, FAR)
    r = svc.http.post(
        f"/api/v1/alerts/{earlier}/resolve", json={"outcome": "false_alarm"}, headers=w.admin
    )
    assert r.status_code == 200, r.text
    housing.publish_raw(
        "visit",
        json.dumps({"v": 1, "ts": int(time.time() * 1000), "id": "v-1", "action": "end"}),
        qos=1,
    )
    housing.wait_for("visit_ended", visit_id="v-1", timeout=10)
    # Now one by position alone, 50 m away.
    now = raise_at(svc, housing, NEAR)

    op_team = svc.user("pl-op-housing", Role.OPERATOR, org="North", team="Housing")
    seen = w.get(f"/api/v1/alerts/{now}/cautions", w.op)
    assert seen["place"]["id"] == elm and seen["matched_by"] == "position"
    assert 45 < seen["distance_m"] < 55
    assert [c["id"] for c in seen["cautions"]] == [
        c + 0 for c in sorted([dog["id"], threat["id"], dog["id"] + 2], reverse=True)
    ]
    assert [(p["alert_id"], p["outcome"], p["worker"]) for p in seen["previous"]] == [
        (earlier, "false_alarm", "Alex Worker")
    ]
    # The earlier one went by its visit's chosen place.
    assert w.get(f"/api/v1/alerts/{earlier}/cautions", w.admin)["matched_by"] == "chosen"
    # A team's operator sees the organisation's and the team's cautions only.
    assert {c["text"] for c in w.get(f"/api/v1/alerts/{now}/cautions", op_team)["cautions"]} == {
        "Large dog",
        "Father threatened staff",
    }

    # Once per person per alert, however often they look.
    w.get(f"/api/v1/alerts/{now}/cautions", w.op)
    w.get(f"/api/v1/alerts/{now}/cautions", w.op)
    assert shown_entries(svc, now) == [
        ("user:pl-op", "Cautions at this address shown to pl-op: 3"),
        ("user:pl-op-housing", "Cautions at this address shown to pl-op-housing: 2"),
    ]
    detail = w.get(f"/api/v1/alerts/{now}", w.op)
    assert [e["kind"] for e in detail["timeline"]].count("cautions_shown") == 2
    with svc.store.session() as db:
        verdict = chain.verify(db)
        assert verdict.broken is None, verdict

    # Outside the scope the alert does not exist; an alert at no place shows nothing, and
    # records nothing.
    south = svc.user("pl-south-op", Role.OPERATOR, org="South")
    assert w.get(f"/api/v1/alerts/{now}/cautions", south, 404)
    nowhere = raise_at(svc, svc.device("pl-south"), (48.85, 2.35))
    assert w.get(f"/api/v1/alerts/{nowhere}/cautions", w.op) == {
        "place": None,
        "matched_by": None,
        "distance_m": None,
        "cautions": [],
        "previous": [],
    }
    assert shown_entries(svc, nowhere) == []


def test_an_alert_without_a_fix_is_placed_by_the_fix_nearest_in_time(world: World) -> None:
    """A phone indoors has no fix at the press, and one a few seconds later: the alert is
    placed by that fix, for its cautions, the place's incidents and a caution made from it.
    A fix minutes away from the press says nothing of where it was raised."""
    w, svc = world, world.svc
    elm = w.place("12 Elm Street")["id"]
    w.caution(elm, text="Large dog")
    housing = svc.device("pl-north-h")
    alert = raise_at(svc, housing, NEAR, located=False)
    housing.send_location(*NEAR, qos=1)
    wait_until(lambda: w.get(f"/api/v1/alerts/{alert}", w.op)["position"], what="the fix")
    seen = w.get(f"/api/v1/alerts/{alert}/cautions", w.op)
    assert seen["place"]["id"] == elm and seen["matched_by"] == "position"
    assert 45 < seen["distance_m"] < 55
    assert [c["text"] for c in seen["cautions"]] == ["Large dog"]
    assert [i["alert_id"] for i in w.get(f"/api/v1/places/{elm}", w.north)["incidents"]] == [alert]
    body = {"kind": "previous_assault", "text": "Worker pushed", "expires_on": day(365)}
    assert w.post(f"/api/v1/incidents/{alert}/caution", body, w.north)["place_id"] == elm

    # The school's phone last had a fix near Elm Street ten minutes before its press, and
    # has none to give in answer to the service's `locate`.
    school = svc.device("pl-north-s")
    school.send_location = lambda *args, **kwargs: None  # type: ignore[method-assign]
    old = {"lat": NEAR[0], "lon": NEAR[1], "acc": 8}
    ts = int(time.time() * 1000) - 10 * 60_000
    school.publish_raw("location", json.dumps({"v": 1, "ts": ts, "loc": old}), qos=1)
    wait_until(lambda: fixes_of(svc, school.device_id), what="the old fix")
    later = raise_at(svc, school, None, located=False)
    school.wait_for("locate")
    assert fixes_of(svc, school.device_id) == 1
    assert w.get(f"/api/v1/alerts/{later}/cautions", w.op)["place"] is None
    assert later not in [
        i["alert_id"] for i in w.get(f"/api/v1/places/{elm}", w.north)["incidents"]
    ]


def test_an_incident_becomes_a_caution_in_one_step(world: World) -> None:
    w, svc = world, world.svc
    elm = w.place("12 Elm Street")["id"]
    housing = svc.device("pl-north-h")
    at_elm = raise_at(svc, housing, NEAR)
    body = {"kind": "previous_assault", "text": "Worker pushed at the door", "expires_on": day(365)}
    made = w.post(f"/api/v1/incidents/{at_elm}/caution", body, w.north)
    assert (made["place_id"], made["source_alert_id"], made["kind_label"]) == (
        elm,
        at_elm,
        "Previous assault",
    )

    # Matching no place: the address is asked for, and nothing is made without it.
    elsewhere = raise_at(svc, housing, (51.60, -0.20))
    before = counts(svc)
    refused = w.post(f"/api/v1/incidents/{elsewhere}/caution", body, w.north, 422)
    assert refused["detail"] == "address: the alert matches no place; give the address"
    assert counts(svc) == before
    made = w.post(
        f"/api/v1/incidents/{elsewhere}/caution", {**body, "address": "7 Birch Close"}, w.housing
    )
    assert made["team_id"] == w.housing_id
    place = w.get(f"/api/v1/places/{made['place_id']}", w.north)
    assert (place["address"], place["lat"], place["lon"]) == ("7 Birch Close", 51.60, -0.20)
    assert [i["alert_id"] for i in place["incidents"]] == [elsewhere]
    assert audit_log(svc)[-2:] == [
        ("user:pl-housing", "place_added", f"place:{made['place_id']}"),
        ("user:pl-housing", "caution_added", f"caution:{made['id']}"),
    ]
    # Operators may not; another organisation's supervisor finds no such incident.
    assert (
        svc.http.post(f"/api/v1/incidents/{at_elm}/caution", json=body, headers=w.op).status_code
        == 403
    )
    assert w.post(f"/api/v1/incidents/{at_elm}/caution", body, w.south, 404)
    # Bad input changes nothing.
    before = counts(svc)
    w.post(
        f"/api/v1/incidents/{elsewhere}/caution",
        {**body, "expires_on": day(-1), "address": "8 Birch Close"},
        w.north,
        422,
    )
    assert counts(svc) == before


def test_devices_search_places_with_their_own_credentials(world: World) -> None:
    w, svc = world, world.svc
    elm = w.place("Flat 3, 12 Elm Street")["id"]
    w.place("12 Elm Street", who=w.south)
    w.caution(elm, text="Large dog")
    w.caution(elm, kind="other", text="Ask for the head of year", team_id=w.schools_id)
    housing, schools = w.badges["pl-north-h"], w.badges["pl-north-s"]

    def search(q: str, badge: Badge, secret: str | None = None) -> Any:
        return svc.http.get(
            f"/api/v1/devices/{badge.device_id}/places",
            params={"q": q},
            auth=(badge.device_id, secret or badge.secret),
        )

    r = search("elm 12", housing)
    assert r.status_code == 200, r.text
    # Only the worker's organisation's places, with the cautions their team is shown.
    assert r.json() == [
        {
            "id": elm,
            "address": "Flat 3, 12 Elm Street",
            "cautions": [
                {"kind": "aggressive_animal", "label": "Aggressive animal", "text": "Large dog"}
            ],
        }
    ]
    assert [c["text"] for c in search("elm", schools).json()[0]["cautions"]] == [
        "Ask for the head of year",
        "Large dog",
    ]
    assert search("e", housing).json() == []  # fewer than 2 characters
    assert search("birch", housing).json() == []
    # Its own credentials only: a wrong secret, another device's, none at all.
    assert search("elm", housing, secret="wrong").status_code == 401
    r = svc.http.get(
        f"/api/v1/devices/{housing.device_id}/places?q=elm",
        auth=(schools.device_id, schools.secret),
    )
    assert r.status_code == 401
    assert svc.http.get(f"/api/v1/devices/{housing.device_id}/places?q=elm").status_code == 401
    # Nor a signed-in person's token.
    assert (
        svc.http.get(
            f"/api/v1/devices/{housing.device_id}/places?q=elm", headers=w.admin
        ).status_code
        == 401
    )


def test_expired_cautions_are_hidden_then_deleted_by_the_scheduler(world: World) -> None:
    w, svc = world, world.svc
    keep = svc.settings.caution_keep_days
    assert keep == 30  # the default
    elm = w.place("12 Elm Street")["id"]
    ids = {
        name: w.caution(elm, text=name, review_on=day(0))["id"]
        for name in ("current", "hidden", "gone")
    }
    today = datetime.now(UTC).date()
    with svc.store.begin() as db:
        for name, days_ago in (("hidden", 1), ("gone", keep + 1)):
            caution = db.get(Caution, ids[name])
            assert caution is not None
            caution.expires_on = today - timedelta(days=days_ago)

    # The scheduler deletes the one past its keeping time, on its own, with an audit entry.
    def deleted() -> bool:
        with svc.store.session() as db:
            return db.get(Caution, ids["gone"]) is None

    wait_until(deleted, timeout=10, what="the expired caution deleted")
    with svc.store.session() as db:
        assert db.get(Caution, ids["hidden"]) is not None  # kept 30 days, but hidden
        (entry,) = db.scalars(
            select(AuditEntry).where(AuditEntry.action == "cautions_expired")
        ).all()
        assert (entry.actor, entry.target, entry.details["cautions"]) == (
            "system",
            "1 caution",
            [ids["gone"]],
        )
    # Expired is hidden from every read: the place, the review list, an edit.
    assert [c["text"] for c in w.get(f"/api/v1/places/{elm}", w.north)["cautions"]] == ["current"]
    assert w.get(f"/api/v1/places/{elm}", w.north)["caution_count"] == 1
    assert [c["text"] for c in w.get("/api/v1/cautions/review", w.north)] == ["current"]
    r = svc.http.patch(
        f"/api/v1/cautions/{ids['hidden']}", json={"expires_on": day(30)}, headers=w.north
    )
    assert r.status_code == 404
    assert w.get("/api/v1/places?q=elm", w.north)[0]["caution_count"] == 1
