"""The Admin tab's Places section as a new service's administrator meets it, in a real browser
(Chromium): a place for an organisation that has none yet. (The section's other checks, and the
operator's and Review's cautions, are in tests/test_console_places.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from monitor.users.models import Role
from tests.browsers import sign_in
from tests.support import Running, add_badge


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def test_a_place_for_an_organisation_with_none_yet(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    admin = svc.user("ada", Role.ADMIN)
    add_badge(svc.store, "pl-demo", org="Demo Borough Council")
    (demo,) = svc.http.get("/api/v1/orgs", headers=admin).json()
    r = svc.http.post(
        "/api/v1/places",
        json={"address": "4 Mill Lane", "lat": 51.52, "lon": -0.1, "org_id": demo["id"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = svc.http.post("/api/v1/orgs", json={"name": "Northshire Council"}, headers=admin)
    assert r.status_code == 201, r.text
    northshire = r.json()["id"]

    page = sign_in(chrome, base, "ada")
    page.click("#tab-admin")
    page.click("#ad-tab-places")
    pane = page.locator("#ad-places")
    expect(pane.locator("#ap-find table.ad-table")).to_contain_text("4 Mill Lane")
    # The button makes way for the form: the keyboard goes to it, and back on Cancel.
    pane.get_by_role("button", name="Add a place…").click()
    add = pane.locator("form.ap-add")
    expect(add.locator("input[name=address]")).to_be_focused()
    add.get_by_role("button", name="Cancel").click()
    expect(pane.get_by_role("button", name="Add a place…")).to_be_focused()
    page.keyboard.press("Enter")
    expect(add.locator("input[name=address]")).to_be_focused()
    # Every organisation is offered, by name, not only those the search found places of.
    expect(add.locator("select[name=org_id] option")).to_have_text(
        ["Choose…", "Demo Borough Council", "Northshire Council"]
    )
    add.locator("input[name=address]").fill("22 Orchard Road, Northtown")
    add.locator("input[name=lat]").fill("51.5085")
    add.locator("input[name=lon]").fill("-0.1257")
    add.locator("select[name=org_id]").select_option(label="Northshire Council")
    add.locator("button[type=submit]").click()
    place = pane.locator("#ap-place")
    expect(place.locator(".ap-said")).to_have_text("Place added: 22 Orchard Road, Northtown.")
    expect(place).to_contain_text("Northshire Council · Position: 51.50850, -0.12570")
    made = [
        p
        for p in svc.http.get("/api/v1/places?q=orchard", headers=admin).json()
        if p["address"] == "22 Orchard Road, Northtown"
    ]
    assert [p["org_id"] for p in made] == [northshire]
