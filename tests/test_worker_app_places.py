"""The worker app's address search and the cautions at an address, in real browsers against
the real service over HTTP and the real Mosquitto through the relay: places and cautions made
through the service's routes as an administrator would, the address searched as the worker
types, the cautions read before the visit starts and kept on the visit screen, and a search
that fails leaving the visit's start as it was."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright
from sqlalchemy import select

from monitor.users.models import Role
from monitor.visits.models import Visit
from tests.browsers import CHROMIUM, FIREFOX, shoot
from tests.support import Running, wait_until
from tests.test_worker_app import (
    CHROMIUM_ARGS,
    FIREFOX_PREFS,
    HERE,
    Phone,
    badge,
    connected,
    creds,
    key_pin,
    outbox,
)

# About 1.5 km from where the phone is (HERE): never matched by position.
ELSEWHERE = (51.5200, -0.1100)
DOG = "Large dog, usually loose in the front garden. Phone before you knock."
FATHER = "The father has threatened staff (March). Visit in pairs if you can."


@pytest.fixture(scope="module")
def pw() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(pw: Playwright) -> Iterator[Browser]:
    b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="module")
def firefox(pw: Playwright) -> Iterator[Browser]:
    b = pw.firefox.launch(
        channel="moz-firefox", executable_path=FIREFOX, firefox_user_prefs=FIREFOX_PREFS
    )
    yield b
    b.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    # The browser tests are about the app; one database is enough.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


@pytest.fixture
def phones(chromium: Browser) -> Iterator[Callable[..., Phone]]:
    made: list[Phone] = []

    def make(browser: Browser | None = None, *, chromium_engine: bool = True) -> Phone:
        p = Phone(browser or chromium, chromium=chromium_engine)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


# ---- places and cautions, as an administrator records them ----


def add_place(
    svc: Running, admin: dict[str, str], address: str, at: tuple[float, float] | None
) -> int:
    body: dict[str, Any] = {"address": address}
    if at:
        body |= {"lat": at[0], "lon": at[1]}
    r = svc.http.post("/api/v1/places", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def add_caution(svc: Running, admin: dict[str, str], place: int, kind: str, text: str) -> None:
    expires = (date.today() + timedelta(days=180)).isoformat()
    r = svc.http.post(
        f"/api/v1/places/{place}/cautions",
        json={"kind": kind, "text": text, "expires_on": expires},
        headers=admin,
    )
    assert r.status_code == 201, r.text


def elm_street(svc: Running, prefix: str) -> tuple[int, int]:
    """Two places in Elm Street, away from the phone: one with two cautions, one with none."""
    admin = svc.user(f"admin-{prefix}", Role.ADMIN, org="Test Org")
    flat = add_place(svc, admin, "12 Elm Street, Flat 3", ELSEWHERE)
    add_caution(svc, admin, flat, "aggressive_animal", DOG)
    add_caution(svc, admin, flat, "hostile_person", FATHER)
    quiet = add_place(svc, admin, "14 Elm Street", (ELSEWHERE[0] + 0.001, ELSEWHERE[1]))
    return flat, quiet


def the_visit(svc: Running, device_id: str) -> Visit | None:
    with svc.store.session() as db:
        return db.scalar(select(Visit).where(Visit.device_id == device_id))


def new_visit(page: Page) -> None:
    page.click("#visit-new")
    expect(page.locator("#visit-form")).to_be_visible()


def start_visit(page: Page) -> None:
    page.click("#visit-start-form button[type=submit]")
    expect(page.locator("#visit")).to_be_visible()


def cautions_in(page: Page, box: str) -> list[str]:
    """Each caution shown in `box`, as 'label text', in the order of the page (the service's:
    its own rule, sorted here)."""
    return sorted(
        " ".join(li.locator("span").all_inner_texts()).replace("\n", " ")
        for li in page.locator(f"{box} li").all()
    )


TWO = [f"Aggressive animal {DOG}", f"Hostile or violent person {FATHER}"]


# ---- search and pick, with the keyboard ----


def test_an_address_searched_and_picked_shows_its_cautions_and_goes_with_the_visit(
    svc: Running, phones: Callable[..., Phone]
) -> None:
    base = svc.serve_http()
    b = badge(svc, "app-place", name="Nia Okoro")  # (its organisation first)
    flat, _ = elm_street(svc, "pick")
    page = phones().open(base, creds(b, "Nia Okoro"))
    connected(page)
    new_visit(page)

    # Typed as a worker types: the list comes after a pause, both Elm Street places in it.
    address = page.locator("#visit-address")
    address.press_sequentially("elm st", delay=60)
    options = page.locator("#place-list [role=option]")
    expect(options).to_have_count(2)
    expect(address).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#place-list")).to_contain_text("2 cautions recorded")
    expect(page.locator("#place-list")).to_contain_text("No cautions recorded")
    # Nothing about an address shows before one is picked.
    expect(page.locator("#place-cautions")).to_be_hidden()
    shoot(page, "worker-app-visit-address")

    # Narrowed (words in any order), then picked with the arrow key and Enter; Enter picks,
    # it does not start the visit.
    address.press_sequentially(" 12", delay=60)
    expect(options).to_have_count(1)
    address.press("ArrowDown")
    expect(address).to_have_attribute("aria-activedescendant", "place-opt-0")
    address.press("Enter")
    expect(address).to_have_value("12 Elm Street, Flat 3")
    expect(page.locator("#place-list")).to_be_hidden()
    expect(page.locator("#visit-form")).to_be_visible()
    box = page.locator("#place-cautions")
    expect(box).to_be_visible()
    expect(box.locator("h2")).to_have_text("Cautions at this address")
    assert cautions_in(page, "#place-cautions") == TWO
    assert the_visit(svc, b.device_id) is None  # read before anything is started
    page.fill("#visit-note", "Attendance, Year 9")
    shoot(page, "worker-app-visit-cautions")

    start_visit(page)
    expect(page.locator("#visit-msg")).to_have_text(
        "The monitoring centre has your visit.", timeout=15_000
    )
    v = wait_until(lambda: the_visit(svc, b.device_id), what="the visit row")
    assert (v.place_id, v.place_match) == (flat, "chosen")
    assert v.note == "12 Elm Street, Flat 3 — Attendance, Year 9"
    # The cautions stay in front of the worker for the whole visit: their kinds at the top,
    # in full under the buttons (Get help now stays where it was).
    link = page.locator("#visit-cautions-link")
    expect(link).to_have_text(
        re.compile(r"^Cautions at this address: (Aggressive animal|Hostile or violent person), ")
    )
    expect(link).to_contain_text("Aggressive animal")
    expect(link).to_contain_text("Hostile or violent person")
    expect(page.locator("#visit-cautions")).to_be_visible()
    assert cautions_in(page, "#visit-cautions") == TWO
    assert page.evaluate("window.scrollY") == 0  # the new screen from its top
    shoot(page, "worker-app-visit-cautions-open")
    link.click()
    expect(page.locator("#visit-cautions")).to_be_in_viewport()
    page.reload()
    expect(page.locator("#visit-cautions")).to_be_visible()
    assert cautions_in(page, "#visit-cautions") == TWO

    # ...and go with it: nothing of them is left on the phone once it has ended.
    page.click("#visit-end")
    key_pin(page, b.cancel_pin)
    expect(page.locator("#ended-title")).to_have_text("Visit ended", timeout=15_000)
    expect(page.locator("#visit-cautions")).to_be_hidden()
    expect(page.locator("#visit-cautions-link")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('vigil.app.visit')") is None
    assert DOG not in page.content()
    # The next visit's form starts empty.
    page.click("#ended-ok")
    new_visit(page)
    expect(address).to_have_value("")
    expect(page.locator("#place-cautions")).to_be_hidden()


# ---- picked with a tap, in both engines; changing the text drops the pick ----


def pick_by_tap(svc: Running, phone: Phone, prefix: str) -> None:
    base = svc.serve_http()
    b = badge(svc, prefix)
    _, quiet = elm_street(svc, prefix)
    page = phone.open(base, creds(b))
    connected(page)
    new_visit(page)
    address = page.locator("#visit-address")
    address.press_sequentially("elm", delay=60)
    page.locator("#place-list [role=option]", has_text="12 Elm Street").click()
    expect(address).to_have_value("12 Elm Street, Flat 3")
    assert cautions_in(page, "#place-cautions") == TWO

    # The worker changes the address: it is their own words now, and no cautions show.
    address.press("End")
    address.press_sequentially(" (back door)", delay=30)
    expect(page.locator("#place-cautions")).to_be_hidden()
    # A place without cautions says so once picked.
    address.fill("")
    address.press_sequentially("14 elm", delay=60)
    page.locator("#place-list [role=option]", has_text="14 Elm Street").click()
    expect(page.locator("#place-cautions")).to_contain_text(
        "Nothing is recorded about this address."
    )
    start_visit(page)
    v = wait_until(lambda: the_visit(svc, b.device_id), what="the visit row")
    assert (v.place_id, v.place_match) == (quiet, "chosen")
    assert v.note == "14 Elm Street"
    expect(page.locator("#visit-msg")).to_have_text(
        "The monitoring centre has your visit.", timeout=15_000
    )
    # Nothing recorded at the place: nothing to show while the visit is open.
    expect(page.locator("#visit-cautions")).to_be_hidden()
    expect(page.locator("#visit-cautions-link")).to_be_hidden()


def test_an_address_picked_with_a_tap(svc: Running, phones: Callable[..., Phone]) -> None:
    pick_by_tap(svc, phones(), "app-tap")


def test_an_address_picked_with_a_tap_in_firefox(
    svc: Running, phones: Callable[..., Phone], firefox: Browser
) -> None:
    pick_by_tap(svc, phones(firefox, chromium_engine=False), "app-tap-ff")


# ---- matched by the position: the service's answer brings the cautions ----


def test_cautions_come_with_visit_started_for_a_visit_matched_by_position(
    svc: Running, phones: Callable[..., Phone]
) -> None:
    base = svc.serve_http()
    b = badge(svc, "app-near")
    admin = svc.user("admin-near", Role.ADMIN, org="Test Org")
    # About 30 m from the phone, under another name than the worker will type.
    near = add_place(
        svc, admin, "Rose House, 3 Mill Lane", (HERE["latitude"] + 0.0003, HERE["longitude"])
    )
    add_caution(svc, admin, near, "aggressive_animal", DOG)
    page = phones().open(base, creds(b))
    connected(page)
    new_visit(page)
    page.fill("#visit-address", "Flat 3 round the back")
    # Their own words, nothing picked: nothing is shown before the start.
    expect(page.locator("#place-state")).to_have_text(
        re.compile("No saved address matches"), timeout=10_000
    )
    expect(page.locator("#place-cautions")).to_be_hidden()
    start_visit(page)
    box = page.locator("#visit-cautions")
    expect(box).to_be_visible(timeout=15_000)
    expect(box.locator(".where")).to_have_text("Rose House, 3 Mill Lane")
    expect(page.locator("#visit-cautions-link")).to_have_text(
        "Cautions at this address: Aggressive animal. Read them ↓"
    )
    assert cautions_in(page, "#visit-cautions") == [f"Aggressive animal {DOG}"]
    v = wait_until(lambda: the_visit(svc, b.device_id), what="the visit row")
    assert (v.place_id, v.place_match) == (near, "position")
    assert v.note == "Flat 3 round the back"


# ---- the search failing: quietly, and the visit starts as it always did ----


def test_no_network_the_search_says_so_quietly_and_the_visit_starts_when_it_returns(
    svc: Running, phones: Callable[..., Phone]
) -> None:
    base = svc.serve_http()
    b = badge(svc, "app-place-off")
    elm_street(svc, "offline")
    phone = phones()
    page = phone.open(base, creds(b))
    connected(page)
    page.wait_for_function("() => !!navigator.serviceWorker.controller")
    new_visit(page)
    phone.context.set_offline(True)
    expect(page.locator("#conn")).to_have_text("No connection", timeout=15_000)
    page.locator("#visit-address").press_sequentially("12 elm", delay=60)
    expect(page.locator("#place-state")).to_have_text(
        re.compile("address search is not available just now"), timeout=10_000
    )
    expect(page.locator("#place-list")).to_be_hidden()
    start_visit(page)
    expect(page.locator("#visit-title")).to_have_text("Starting your visit…")
    assert outbox(page, "visit") == 1
    phone.context.set_offline(False)
    expect(page.locator("#visit-msg")).to_have_text(
        "The monitoring centre has your visit.", timeout=20_000
    )
    v = wait_until(lambda: the_visit(svc, b.device_id), what="the visit row")
    # Typed, not picked, and far from the place: not matched to it.
    assert (v.note, v.place_id, v.place_match) == ("12 elm", None, None)


def test_a_refused_search_is_quiet_and_the_visit_start_is_kept(
    svc: Running, phones: Callable[..., Phone]
) -> None:
    """A phone whose credentials the service no longer takes (401): the search says so
    quietly, and the start is kept to send as every other message is."""
    base = svc.serve_http()
    b = badge(svc, "app-place-401")
    elm_street(svc, "refused")
    wrong = creds(b) | {"secret": "not-" + b.secret}
    page = phones().open(base, wrong)
    expect(page.locator("#conn")).to_have_text("Cannot connect", timeout=15_000)
    new_visit(page)
    with page.expect_response(re.compile("/places\\?q=")) as answer:
        page.locator("#visit-address").press_sequentially("elm", delay=60)
    assert answer.value.status == 401
    expect(page.locator("#place-state")).to_have_text(
        re.compile("address search is not available just now")
    )
    start_visit(page)
    expect(page.locator("#visit-title")).to_have_text("Starting your visit…")
    kept = json.loads(page.evaluate("localStorage.getItem('vigil.app.outbox')"))
    starts = [e["payload"] for e in kept if e["suffix"] == "visit"]
    assert [(s["action"], s["note"], "place" in s) for s in starts] == [("start", "elm", False)]
