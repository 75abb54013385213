"""Places and cautions in the console, in a real browser (Chromium): "Cautions at this
address" in the alert's pane with the previous incidents there (and the read recorded once in
the timeline), a caution made from an incident in Review showing for the next alert there, and
the Admin tab's Places section: add, change, refuse with the reason, delete.

VIGIL_SCREENSHOTS=docs/images: the tests also write the docs' console-cautions.png and
admin-places.png; without it, they only check."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect

from monitor.users.models import Role
from tests.browsers import shoot, sign_in
from tests.support import Running

ELM = (51.53412, -0.12101)  # Flat 3, 12 Elm Street; positions a few metres off still match it


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def raise_at(svc: Running, badge: Any, at: tuple[float, float], type: str = "red") -> int:
    """An alert raised by `badge` at `at`, and its id in the service."""
    badge.send_location(lat=at[0], lon=at[1], acc=8, qos=1)
    device_alert = badge.raise_alert(type=type)
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    op = svc.login("op1")
    found = [
        a["id"]
        for a in svc.http.get("/api/v1/alerts", headers=op).json()
        if a["device_alert_id"] == device_alert
    ]
    assert len(found) == 1
    return int(found[0])


def resolve(svc: Running, alert: int, outcome: str, note: str) -> None:
    op = svc.login("op1")
    assert svc.http.post(f"/api/v1/alerts/{alert}/acknowledge", headers=op).status_code == 200
    r = svc.http.post(
        f"/api/v1/alerts/{alert}/resolve", json={"outcome": outcome, "note": note}, headers=op
    )
    assert r.status_code == 200, r.text


def add_place(svc: Running, admin: dict[str, str], address: str, at: tuple[float, float]) -> int:
    r = svc.http.post(
        "/api/v1/places", json={"address": address, "lat": at[0], "lon": at[1]}, headers=admin
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def add_caution(svc: Running, admin: dict[str, str], place: int, **body: Any) -> dict[str, Any]:
    body.setdefault("expires_on", (date.today() + timedelta(days=300)).isoformat())
    r = svc.http.post(f"/api/v1/places/{place}/cautions", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return dict(r.json())


def shown_entries(svc: Running, alert: int) -> list[dict[str, Any]]:
    timeline = svc.http.get(f"/api/v1/alerts/{alert}", headers=svc.login("op1")).json()["timeline"]
    return [t for t in timeline if t["kind"] == "cautions_shown"]


def open_row(page: Page, alert: int) -> None:
    page.locator(f'#queue tbody tr[data-id="{alert}"]').click()
    expect(page.locator("#detail")).to_be_visible()


def test_operator_sees_the_cautions_and_previous_incidents_read_recorded_once(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    svc.user("sam", Role.SUPERVISOR)
    admin = svc.user("ada", Role.ADMIN)
    badge, _ = svc.badge("elm", name="Nia Walker")
    place = add_place(svc, admin, "Flat 3, 12 Elm Street", ELM)
    add_caution(svc, admin, place, kind="weapons", text="Knife seen on the kitchen table")
    add_caution(
        svc,
        admin,
        place,
        kind="aggressive_animal",
        text="Large dog, usually shut in the back room",
        review_on=(date.today() + timedelta(days=90)).isoformat(),
    )
    # An earlier incident there, over; then the alert the operator opens, 20 m off.
    before = raise_at(svc, badge, ELM)
    resolve(svc, before, "false_alarm", "Pressed by mistake on the stairs")
    now = raise_at(svc, badge, (ELM[0] + 0.00018, ELM[1]))

    page = sign_in(chrome, base, "op1")
    fetched: list[str] = []

    def count(req: Request) -> None:
        if re.search(rf"/api/v1/alerts/{now}/cautions$", req.url):
            fetched.append(req.url)

    page.on("request", count)
    open_row(page, now)
    box = page.locator("#d-cautions")
    expect(box).to_contain_text("Cautions at this address")
    expect(box).to_contain_text("2 cautions")
    expect(box.locator(".caution-place")).to_have_text(
        re.compile(r"^Flat 3, 12 Elm Street \(nearest place, 2\d\u00a0m away\)$")
    )
    weapons = box.locator(".caution-weapons")
    expect(weapons.locator(".caution-kind")).to_have_text("Weapons")
    expect(weapons.locator(".caution-text")).to_have_text("Knife seen on the kitchen table")
    expect(weapons.locator(".caution-by")).to_contain_text("Recorded by ada on ")
    expect(box.locator(".caution-aggressive_animal .caution-by")).to_contain_text("review by ")
    # The previous incident and how it ended; an operator has no Review to open it in.
    incidents = box.locator(".caution-incidents li")
    expect(incidents).to_have_count(1)
    expect(incidents.first).to_contain_text(f"#{before} Panic")
    expect(incidents.first).to_contain_text("False alarm")
    expect(incidents.locator("a")).to_have_count(0)
    # At a glance, before the actions: the kinds only.
    flag = page.locator("#d-caution-flag")
    expect(flag).to_have_text(
        re.compile(
            r"^⚠ Cautions at this address: "
            r"(Weapons · Aggressive animal|Aggressive animal · Weapons) \(details below\)$"
        )
    )
    tops = [
        page.locator(s).evaluate("e => e.getBoundingClientRect().top")
        for s in ["#d-summary", "#d-caution-flag", "#detail > .actions", "#d-cautions"]
    ]
    assert tops == sorted(tops), tops

    # The read is in the alert's timeline, once, however often the alert changes.
    expect(page.locator("#timeline")).to_contain_text("Cautions at this address shown to op1")
    for i in range(3):
        badge.send_location(lat=ELM[0], lon=ELM[1] + i * 0.00001, acc=8, qos=1)
    svc.http.post(
        f"/api/v1/alerts/{now}/notes", json={"text": "Calling the worker"}, headers=svc.login("op1")
    )
    expect(page.locator("#timeline")).to_contain_text("Calling the worker")
    assert len(fetched) == 1, fetched
    assert len(shown_entries(svc, now)) == 1
    shoot(page, "console-cautions")
    # Opening it again fetches them again; the service still records one read per person.
    page.keyboard.press("Escape")
    # Awaited through Playwright: its events reach `fetched` only while it is called.
    with page.expect_request(re.compile(rf"/api/v1/alerts/{now}/cautions$")):
        open_row(page, now)
    assert len(fetched) == 2, fetched
    expect(box).to_contain_text("Knife seen on the kitchen table")
    assert len(shown_entries(svc, now)) == 1

    # A supervisor's previous incidents are links into Review.
    sam = sign_in(chrome, base, "sam")
    open_row(sam, now)
    link = sam.locator(f'#d-cautions a[data-incident="{before}"]')
    expect(link).to_be_visible()
    link.click()
    expect(sam.locator("#rv-incident")).to_be_visible()
    expect(sam.locator("#rv-title")).to_contain_text(f"#{before} Panic")
    texts = [t["text"] for t in shown_entries(svc, now)]
    assert len(texts) == 2 and any("sam" in t for t in texts), texts


def test_a_caution_made_from_an_incident_shows_for_the_next_alert_there(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    lead = svc.user("sam", Role.SUPERVISOR)
    badge, _ = svc.badge("oak", name="Tom Reyes")
    first = raise_at(svc, badge, ELM)
    resolve(svc, first, "genuine_emergency", "Resident threatened the worker; police attended")

    page = sign_in(chrome, base, "sam")
    page.click("#tab-review")
    page.locator(f'#incidents tbody tr[data-id="{first}"]').click()
    page.click(".rv-caution-open")
    form = page.locator(".rv-caution-form")
    # No place matched the alert: the form asks for the address.
    expect(page.locator(".rv-caution-where")).to_contain_text("matched no place")
    expect(form.locator("input[name=expires_on]")).to_have_value(
        re.compile(rf"^{date.today().year + 1}-")
    )
    form.locator("select[name=kind]").select_option("hostile_person")
    form.locator("textarea[name=text]").fill("Father threatened staff at the door; visit in pairs")
    form.locator("input[name=address]").fill("27 Oak Road")
    # Refused first: four years is past the longest a caution may be kept.
    too_far = date.today().replace(year=date.today().year + 4).isoformat()
    form.locator("input[name=expires_on]").fill(too_far)
    form.locator("button[type=submit]").click()
    expect(form.locator(".ad-status.error")).to_contain_text("Not saved: ")
    expect(form.locator(".ad-status.error")).to_contain_text("expires_on")
    assert svc.http.get("/api/v1/places", headers=lead).json() == []
    # Then made, in one step, with the default expiry.
    form.locator("input[name=expires_on]").fill((date.today() + timedelta(days=365)).isoformat())
    form.locator("button[type=submit]").click()
    expect(form.locator(".ad-status")).to_contain_text("Caution made: Hostile or violent person")
    (made,) = svc.http.get("/api/v1/places", headers=lead).json()
    assert made["address"] == "27 Oak Road"
    assert made["caution_count"] == 1

    # The next alert there shows it to the operator, with the incident it came from.
    second = raise_at(svc, badge, (ELM[0], ELM[1] + 0.0001))
    op = sign_in(chrome, base, "op1")
    open_row(op, second)
    box = op.locator("#d-cautions")
    expect(box.locator(".caution-hostile_person .caution-text")).to_have_text(
        "Father threatened staff at the door; visit in pairs"
    )
    expect(box.locator(".caution-hostile_person .caution-by")).to_contain_text(
        "Recorded by sam on "
    )
    expect(box.locator(".caution-hostile_person .caution-by")).to_contain_text(
        f"from incident #{first}"
    )
    expect(box.locator(".caution-incidents li")).to_contain_text(["Genuine emergency"])


def test_admin_places_add_change_refuse_delete(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    admin = svc.user("ada", Role.ADMIN)
    svc.badge("adm", name="Nia Walker")  # an organisation with a team, Housing
    # And a team nobody is in yet: a caution may be for it all the same.
    (housing,) = svc.http.get("/api/v1/teams", headers=admin).json()
    outreach = {"name": "Outreach", "org_id": housing["org_id"]}
    r = svc.http.post("/api/v1/teams", json=outreach, headers=admin)
    assert r.status_code == 201, r.text
    # A caution due for review, so that the reminders have something to show first.
    old = add_place(svc, admin, "4 Mill Lane", (51.52, -0.1))
    add_caution(
        svc,
        admin,
        old,
        kind="access",
        text="Gate code changes monthly",
        review_on=date.today().isoformat(),
    )

    page = sign_in(chrome, base, "ada")
    page.click("#tab-admin")
    page.click("#ad-tab-places")
    pane = page.locator("#ad-places")
    review = pane.locator("#ap-review")
    expect(review.locator("h3")).to_have_text("Due for review: 1 caution at 1 place")
    expect(review).to_contain_text("Gate code changes monthly")
    # The reminders come before everything else in the section.
    first = pane.locator("#ap-review").evaluate("e => e.getBoundingClientRect().top")
    find = pane.locator("#ap-find").evaluate("e => e.getBoundingClientRect().top")
    assert first < find

    # Add a place, its position picked on the map.
    pane.get_by_role("button", name="Add a place…").click()
    add = pane.locator("form.ap-add")
    add.locator("input[name=address]").fill("Flat 3, 12 Elm Street")
    add.locator(".ap-map").click(position={"x": 120, "y": 100})
    expect(add.locator("input[name=lat]")).not_to_have_value("")
    expect(add.locator("input[name=lon]")).not_to_have_value("")
    add.locator("input[name=lat]").fill(str(ELM[0]))
    add.locator("input[name=lon]").fill(str(ELM[1]))
    add.locator("button[type=submit]").click()
    place = pane.locator("#ap-place")
    expect(place.locator(".ap-said")).to_contain_text("Place added: Flat 3, 12 Elm Street.")
    expect(place.locator("h3").first).to_have_text("Flat 3, 12 Elm Street")
    (added,) = [
        p
        for p in svc.http.get("/api/v1/places?q=elm", headers=admin).json()
        if p["address"] == "Flat 3, 12 Elm Street"
    ]
    assert (added["lat"], added["lon"]) == ELM

    # Its caution, for the team only.
    new = place.locator("form.ap-caution-add")
    new.locator("select[name=kind]").select_option("aggressive_animal")
    new.locator("textarea[name=text]").fill("Large dog, usually shut in the back room")
    expect(new.locator("select[name=team_id] option")).to_have_text(
        ["Whole organisation", "Housing only", "Outreach only"]
    )
    new.locator("select[name=team_id]").select_option(label="Housing only")
    new.locator("button[type=submit]").click()
    expect(place.locator(".ap-said")).to_contain_text("Caution added: Aggressive animal.")
    row = place.locator("table.ad-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Large dog, usually shut in the back room")
    expect(row).to_contain_text("Housing only")

    # Changed; then a change refused with the service's reason, and nothing changed.
    row.get_by_role("button", name="Edit").click()
    edit = place.locator("form.ap-caution-change")
    edit.locator("textarea[name=text]").fill(
        "Large dog; ask for it to be shut away before entering"
    )
    edit.locator("button[type=submit]").click()
    expect(place.locator(".ap-said")).to_contain_text("Caution saved.")
    expect(row).to_contain_text("ask for it to be shut away")
    row.get_by_role("button", name="Edit").click()
    edit.locator("input[name=expires_on]").fill((date.today() - timedelta(days=3)).isoformat())
    edit.locator("button[type=submit]").click()
    refusal = edit.locator(".ad-status.error")
    expect(refusal).to_contain_text("Not saved: ")
    expect(refusal).to_contain_text("expires_on")
    detail = svc.http.get(f"/api/v1/places/{added['id']}", headers=admin).json()
    (kept,) = detail["cautions"]
    assert kept["text"] == "Large dog; ask for it to be shut away before entering"
    assert kept["expires_on"] > date.today().isoformat()
    shoot(page, "admin-places", full_page=True)
    edit.get_by_role("button", name="Cancel").click()

    # Deleted, each after asking.
    row.get_by_role("button", name="Delete…").click()
    expect(row.locator(".ap-confirm")).to_contain_text("Delete this caution?")
    row.get_by_role("button", name="Keep it").click()
    expect(row).to_contain_text("Large dog")
    row.get_by_role("button", name="Delete…").click()
    row.get_by_role("button", name="Delete", exact=True).click()
    expect(place.locator(".ap-said")).to_contain_text("Caution deleted: Aggressive animal.")
    expect(place).to_contain_text("No cautions at this place.")
    place.get_by_role("button", name="Delete this place…").click()
    expect(place.locator(".ap-confirm")).to_contain_text(
        "Delete Flat 3, 12 Elm Street? This cannot be undone."
    )
    place.get_by_role("button", name="Delete the place").click()
    expect(place.locator(".ap-said")).to_contain_text("Place deleted: Flat 3, 12 Elm Street.")
    left = [p["address"] for p in svc.http.get("/api/v1/places", headers=admin).json()]
    assert left == ["4 Mill Lane"]
    # Each change is in the audit log, by ada.
    actions = [
        e["action"]
        for e in svc.http.get("/api/v1/audit?limit=200", headers=admin).json()
        if e["actor"] == "user:ada"
    ]
    for done in (
        "place_added",
        "caution_added",
        "caution_changed",
        "caution_deleted",
        "place_deleted",
    ):
        assert done in actions, actions


def test_operator_has_no_admin_tab(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("op1")
    svc.user("sam", Role.SUPERVISOR)
    op = sign_in(chrome, base, "op1")
    expect(op.locator("#tab-alerts")).to_be_visible()
    expect(op.locator("#tab-admin")).to_be_hidden()
    sam = sign_in(chrome, base, "sam")
    sam.click("#tab-admin")
    sam.click("#ad-tab-places")
    expect(sam.locator("#ap-review h3")).to_have_text("Due for review: none")
