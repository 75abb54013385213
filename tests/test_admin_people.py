"""The Admin tab's Workers, Teams and Organisations sections in a real browser (Chromium): an
administrator adds a worker with their PINs, edits and moves them, sees a refusal beside the
form with nothing changed, issues a PIN link whose QR code reads back as the link, and the
worker chooses their PINs on a phone-sized page; a team supervisor sees only their team.

VIGIL_SCREENSHOTS=docs/images: the tests also write the docs' admin-people-*.png; without it,
they only check."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import func, select

from monitor.orgs.models import Team, Worker
from monitor.security import verify_secret
from monitor.users.models import Role
from tests.browsers import shoot, sign_in, watched_context
from tests.support import Running, add_badge

ORG = "Northshire Council"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def stored(svc: Running, name: str) -> Worker | None:
    with svc.store.session() as db:
        w = db.scalar(select(Worker).where(Worker.name == name))
        if w is not None:
            db.expunge(w)
        return w


def team_id(svc: Running, name: str) -> int:
    with svc.store.session() as db:
        found = db.scalar(select(Team.id).where(Team.name == name))
    assert found is not None
    return found


def open_section(page: Page, section: str) -> Locator:
    page.click("#tab-admin")
    page.click(f"#ad-tab-{section}")
    pane = page.locator(f"#ad-{section}")
    expect(pane.locator("table.ad-table, p.note").first).to_be_visible()
    return pane


def pins(form: Locator, cancel: str, cancel2: str, duress: str, duress2: str) -> None:
    form.locator("input[name=cancel_pin]").fill(cancel)
    form.locator("input[name=cancel_pin_again]").fill(cancel2)
    form.locator("input[name=duress_pin]").fill(duress)
    form.locator("input[name=duress_pin_again]").fill(duress2)


def test_an_admin_adds_edits_and_moves_a_worker(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "badge-0007", name="Sam Lee", org=ORG, team="Housing")
    add_badge(svc.store, "badge-0012", name="Priya Nair", org=ORG, team="Community Nursing")
    svc.user("ada", Role.ADMIN)
    page = sign_in(chrome, base, "ada")
    pane = open_section(page, "workers")
    expect(pane.locator("#adp-workers")).to_contain_text("Sam Lee")

    add = pane.locator("form.ad-worker-add")
    add.locator("input[name=name]").fill("Amira Khan")
    add.locator("input[name=phone]").fill("+44 7700 900123")
    add.locator("select[name=team_id]").select_option(label="Housing")
    add.locator("textarea[name=responder_notes]").fill("Asthma: inhaler in left pocket")

    # Refused first: the same PIN twice. The reason beside the form; nothing added; what was
    # typed is kept.
    pins(add, "2468", "2468", "2468", "2468")
    add.locator("button[type=submit]").click()
    status = add.locator(".ad-status")
    expect(status).to_have_text(
        "Not saved: pins.duress_pin: the cancel PIN and the duress PIN must differ"
    )
    expect(status).to_have_class("ad-status error")
    assert stored(svc, "Amira Khan") is None
    expect(add.locator("input[name=name]")).to_have_value("Amira Khan")
    shoot(add, "admin-people-refused")

    pins(add, "2468", "2468", "1357", "1357")
    add.locator("button[type=submit]").click()
    expect(status).to_have_text("Amira Khan added with their PINs.")
    row = pane.locator("#adp-workers tr", has_text="Amira Khan")
    expect(row).to_contain_text("Housing")
    expect(row).to_contain_text("+44 7700 900123")
    expect(row.locator("td").nth(4)).to_have_text("set")
    amira = stored(svc, "Amira Khan")
    assert amira is not None and amira.team_id == team_id(svc, "Housing")
    assert verify_secret(amira.cancel_pin_hash, "2468")
    assert verify_secret(amira.duress_pin_hash, "1357")
    assert "2468" not in page.content() and "1357" not in page.content()
    shoot(pane, "admin-people-workers")

    # Edit and move to another team.
    row.get_by_role("button", name="Edit").click()
    edit = pane.locator("form.ad-worker-edit")
    expect(edit.locator("input[name=name]")).to_have_value("Amira Khan")
    edit.locator("input[name=phone]").fill("+447700900999")
    edit.locator("select[name=team_id]").select_option(label="Community Nursing")
    edit.locator("button[type=submit]").click()
    expect(edit.locator(".ad-status")).to_have_text("Amira Khan saved (team Community Nursing).")
    expect(row).to_contain_text("Community Nursing")
    amira = stored(svc, "Amira Khan")
    assert amira is not None and amira.team_id == team_id(svc, "Community Nursing")
    assert amira.phone == "+447700900999"

    # A refused change of PINs: the confirmation differs. Nothing changed.
    row.get_by_role("button", name="Set PINs").click()
    form = pane.locator("form.ad-worker-pins")
    pins(form, "8642", "8642", "9753", "9735")
    form.locator("button[type=submit]").click()
    expect(form.locator(".ad-status")).to_have_text(
        "Not saved: duress_pin_again: the two duress PINs typed are not the same"
    )
    after = stored(svc, "Amira Khan")
    assert after is not None and after.duress_pin_hash == amira.duress_pin_hash
    pins(form, "8642", "8642", "9753", "9753")
    form.locator("button[type=submit]").click()
    expect(form.locator(".ad-status")).to_contain_text("New PINs set for Amira Khan")
    after = stored(svc, "Amira Khan")
    assert after is not None and verify_secret(after.duress_pin_hash, "9753")

    # Teams: add one; a second of the same name is refused, with the reason.
    teams = open_section(page, "teams")
    add_team = teams.locator("form.ad-team-add")
    add_team.locator("input[name=name]").fill("Youth Justice")
    add_team.locator("button[type=submit]").click()
    expect(add_team.locator(".ad-status")).to_have_text(f"Team Youth Justice added to {ORG}.")
    expect(teams.locator("#adp-teams")).to_contain_text("Youth Justice")
    add_team.locator("input[name=name]").fill("Housing")
    add_team.locator("button[type=submit]").click()
    expect(add_team.locator(".ad-status")).to_have_text(
        "Not saved: the organisation already has a team called 'Housing'"
    )
    with svc.store.session() as db:
        assert db.scalar(select(func.count(Team.id)).where(Team.name == "Housing")) == 1
    shoot(teams, "admin-people-teams")

    # Organisations: the whole service's administrator sets a visit's end PIN.
    orgs = open_section(page, "orgs")
    orgs.locator("#adp-orgs tr", has_text=ORG).get_by_role("button", name="Edit").click()
    edit_org = orgs.locator("form.ad-org-edit")
    edit_org.locator("input[name=require_visit_end_pin]").check()
    edit_org.locator("button[type=submit]").click()
    expect(edit_org.locator(".ad-status")).to_have_text(f"{ORG} saved.")
    expect(orgs.locator("#adp-orgs tr", has_text=ORG).locator("td").nth(1)).to_have_text("yes")
    shoot(orgs, "admin-people-orgs")


def test_a_worker_chooses_their_pins_from_a_link_on_a_phone(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "badge-0007", name="Sam Lee", org=ORG, team="Housing")
    add_badge(svc.store, "badge-0012", name="Priya Nair", org=ORG, team="Community Nursing")
    svc.user("lead", Role.SUPERVISOR, org=ORG, team="Housing")
    page = sign_in(chrome, base, "lead")
    pane = open_section(page, "workers")
    # A team supervisor sees their team's workers only, and no organisations section.
    expect(pane.locator("#adp-workers tbody tr")).to_have_count(1)
    expect(page.locator("#ad-tab-orgs")).to_have_count(0)

    add = pane.locator("form.ad-worker-add")
    add.locator("input[name=name]").fill("Ola Bello")
    add.locator("button[type=submit]").click()
    expect(add.locator(".ad-status")).to_have_text(
        "Ola Bello added: give them a PIN link to choose their PINs."
    )
    row = pane.locator("#adp-workers tr", has_text="Ola Bello")
    expect(row.locator("td").nth(1)).to_have_text("Housing")
    expect(row.locator("td").nth(4)).to_have_text("not set")

    row.get_by_role("button", name="PIN link").click()
    shown = pane.locator(".adp-pin-link")
    qr = shown.locator("img.ad-qr")
    expect(qr).to_be_visible()
    link = shown.locator("input.adp-link").input_value()
    assert link.startswith(f"{svc.settings.public_url.rstrip('/')}/pins#t=")
    image = Image.open(io.BytesIO(qr.screenshot()))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [link]
    expect(shown).to_contain_text("Shown this once: give it to Ola Bello now")
    shoot(shown, "admin-people-pin-link")

    # On the worker's phone (the link's path on the service under test).
    phone_ctx, blocked = watched_context(chrome.browser, **PHONE)  # type: ignore[arg-type]
    try:
        phone = phone_ctx.new_page()
        phone.goto(base + "/pins#t=" + link.split("#t=", 1)[1])
        expect(phone.locator("#who")).to_contain_text("For Ola Bello. This link works once")
        form = phone.locator("#pins")
        pins(form, "4826", "4826", "731905", "731906")
        form.get_by_role("button", name="Save my PINs").click()
        expect(phone.locator("#status")).to_have_text(
            "Not saved: Duress PIN again: the two duress PINs typed are not the same"
        )
        ola = stored(svc, "Ola Bello")
        assert ola is not None and ola.duress_pin_hash == ""
        form.locator("input[name=duress_pin_again]").fill("731905")
        shoot(phone, "admin-people-phone")
        form.get_by_role("button", name="Save my PINs").click()
        expect(phone.locator("#status")).to_have_text(
            "Your PINs are saved. Remember them: nobody else knows them."
        )
        expect(form).to_be_hidden()
        assert phone.evaluate("location.hash") == ""
        # Nothing wider than the phone.
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        ola = stored(svc, "Ola Bello")
        assert ola is not None and verify_secret(ola.duress_pin_hash, "731905")
        assert verify_secret(ola.cancel_pin_hash, "4826")

        # The link again: used.
        again = phone_ctx.new_page()
        again.goto(base + "/pins#t=" + link.split("#t=", 1)[1])
        expect(again.locator("#who")).to_have_text(
            "This link has been used already: ask for a new one"
        )
        expect(again.locator("#pins")).to_be_hidden()
    finally:
        phone_ctx.close()
    assert blocked == [], blocked

    page.click("#ad-tab-workers")
    expect(row.locator("td").nth(4)).to_have_text("set")


def test_workers_are_found_by_typing_and_a_new_one_gets_their_pin_link_next(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "badge-0007", name="Sam Lee", org=ORG, team="Housing")
    add_badge(svc.store, "badge-0012", name="Priya Nair", org=ORG, team="Community Nursing")
    add_badge(svc.store, "badge-0015", name="Sam Okoro", org=ORG, team="Community Nursing")
    svc.user("ada", Role.ADMIN)
    page = sign_in(chrome, base, "ada")
    pane = open_section(page, "workers")
    rows = pane.locator("#adp-workers tbody tr")
    expect(rows).to_have_count(3)

    # Words of the name, team or organisation, in any order; the count says what is hidden.
    find = pane.locator("#adp-find")
    find.fill("nursing sam")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Sam Okoro")
    expect(pane.locator(".adp-found")).to_have_text("1 of 3 workers")
    find.fill("sam")
    expect(rows).to_have_count(2)
    find.fill("nobody")
    expect(pane.locator(".ad-list")).to_have_text('No worker matches "nobody".')
    find.fill("")
    expect(rows).to_have_count(3)
    expect(pane.locator(".adp-found")).to_have_text("")

    # Added with the PINs left blank, by the keyboard alone: the worker's PIN link is the
    # next thing the keyboard reaches, and Enter makes it, ready to copy.
    add = pane.locator("form.ad-worker-add")
    add.locator("input[name=name]").fill("Ola Bello")
    add.locator("select[name=team_id]").select_option(label="Housing")
    add.locator("input[name=name]").press("Enter")
    expect(add.locator(".ad-status")).to_have_text(
        "Ola Bello added: give them a PIN link to choose their PINs."
    )
    nxt = pane.get_by_role("button", name="Make Ola Bello's PIN link")
    expect(nxt).to_be_focused()
    page.keyboard.press("Enter")
    link = pane.locator(".adp-pin-link input.adp-link")
    expect(link).to_be_focused()
    expect(link).to_have_value(re.compile(r"/pins#t=\S+$"))
    expect(pane.locator(".adp-pin-link h3")).to_have_text("PIN link for Ola Bello")
    expect(nxt).to_have_count(0)

    # Half typed, a worker whose team is not there yet: off to Teams to add it, and back.
    add.locator("input[name=name]").fill("Kai Moss")
    add.locator("input[name=phone]").fill("+447700900321")
    add.locator("textarea[name=responder_notes]").fill("Hearing aid: call, then text")
    add.locator("select[name=team_id]").select_option(label="Community Nursing")
    teams = open_section(page, "teams")
    add_team = teams.locator("form.ad-team-add")
    add_team.locator("input[name=name]").fill("Youth Justice")
    add_team.locator("button[type=submit]").click()
    expect(add_team.locator(".ad-status")).to_have_text(f"Team Youth Justice added to {ORG}.")
    # A button pressed keeps the keyboard where it was (it lost the focus while saving).
    expect(add_team.locator("button[type=submit]")).to_be_focused()
    pane = open_section(page, "workers")
    add = pane.locator("form.ad-worker-add")
    expect(add.locator("input[name=name]")).to_have_value("Kai Moss")
    expect(add.locator("input[name=phone]")).to_have_value("+447700900321")
    expect(add.locator("textarea[name=responder_notes]")).to_have_value(
        "Hearing aid: call, then text"
    )
    expect(add.locator("select[name=team_id] option:checked")).to_have_text("Community Nursing")
    add.locator("select[name=team_id]").select_option(label="Youth Justice")
    add.get_by_role("button", name="Add worker").click()
    expect(add.locator(".ad-status")).to_contain_text("Kai Moss added")
    kai = stored(svc, "Kai Moss")
    assert kai is not None and kai.team_id == team_id(svc, "Youth Justice")
    # Added, the form is empty again, and stays so across a visit elsewhere.
    open_section(page, "teams")
    pane = open_section(page, "workers")
    expect(pane.locator("form.ad-worker-add input[name=name]")).to_have_value("")


def test_the_admin_tab_fits_a_phone(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    for i in range(3):
        add_badge(svc.store, f"badge-p{i}", name=f"Worker With A Long Name {i}", org=ORG)
    svc.user("ada", Role.ADMIN)
    phone_ctx, blocked = watched_context(chrome.browser, **PHONE)  # type: ignore[arg-type]
    try:
        page = sign_in(phone_ctx, base, "ada")
        for section in ("workers", "users", "devices", "escalation", "places"):
            pane = open_section(page, section)
            expect(pane.locator("form").first).to_be_visible()
            page.wait_for_load_state("networkidle")  # what the section lists, drawn
            # The page is no wider than the phone: a wide table scrolls on its own, and every
            # section's tab is on the screen.
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            right = page.locator("#ad-tabs button").last.evaluate(
                "b => b.getBoundingClientRect().right"
            )
            assert right <= PHONE["width"], section
    finally:
        phone_ctx.close()
    assert blocked == [], blocked
