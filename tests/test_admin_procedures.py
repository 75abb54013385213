"""The Admin tab's Procedures section in a real browser (Chromium): a safety lead starts a
new service from the shipped procedures, saves them, and the next alert's checklist is one
of them; a save naming a team that does not exist is refused with the reason shown and
nothing changed; an organisation's admin is told the file is the whole service's.

VIGIL_SCREENSHOTS=docs/images: the test also writes the docs' admin-procedures*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from monitor.procedures import files
from monitor.procedures.definitions import DEFAULT_FILE, parse_file
from monitor.users.models import Role
from tests.browsers import shoot, sign_in
from tests.support import Running


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def open_section(page: Page) -> None:
    page.click("#tab-admin")
    page.click("#ad-tab-procedures")
    expect(page.locator("#ad-procedures")).to_be_visible()


def stored(svc: Running) -> str:
    with svc.store.session() as db:
        return files.stored(db).yaml


def test_a_safety_lead_starts_from_the_shipped_procedures_and_a_bad_save_changes_nothing(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    badge, _ = svc.badge("sop-housing")  # the organisation and its team Housing
    svc.user("lead", Role.SUPERVISOR)
    page = sign_in(chrome, base, "lead")
    open_section(page)
    listed = page.locator("#asop-list")
    expect(listed).to_contain_text("No procedures are stored")
    page.get_by_role("button", name="Start from the shipped procedures").click()
    editor = page.locator("#asop-yaml")
    shipped = DEFAULT_FILE.read_text(encoding="utf-8")
    expect(editor).to_have_value(shipped)
    result = page.locator("#asop-result")
    expect(result).to_contain_text("not saved")
    assert stored(svc) == "procedures: []\n"

    # Made the service's own, then saved: the list and the editor say what is stored.
    ours = shipped.replace("999", "112")
    assert ours != shipped
    editor.fill(ours)
    page.get_by_role("button", name="Save", exact=True).click()
    count = len(parse_file(ours).procedures)
    expect(result).to_contain_text(f"Saved: {count} procedures (procedures added ")
    expect(listed.locator("tbody tr")).to_have_count(count)
    panic = next(p for p in parse_file(ours).procedures if p.name == "Panic")
    named = page.locator("td:first-child", has_text=re.compile("^Panic$"))
    expect(listed.locator("tbody tr", has=named).locator("td")).to_have_text(
        ["Panic", "Panic", "Every organisation", "—", str(len(panic.steps))]
    )
    expect(editor).to_have_value(stored(svc))
    assert "112" in stored(svc) and "999" not in stored(svc)
    shoot(page, "admin-procedures", full_page=True)

    # The next alert's checklist is one of them.
    alert_id = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=alert_id, timeout=10)
    ops = svc.user("op-sop", Role.OPERATOR)
    (row,) = svc.http.get("/api/v1/alerts", headers=ops).json()
    shown = svc.http.get(f"/api/v1/alerts/{row['id']}/procedure", headers=ops).json()
    assert shown["name"] == "Panic" and any("112" in s["do"] for s in shown["steps"])

    # A team nobody has: refused with `vigil sop load`'s words, and nothing changed.
    before = stored(svc)
    typo = before.replace("steps:", "team: Housng\n  steps:", 1)
    editor.fill(typo)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(result).to_contain_text("Not saved: nothing was changed.")
    expect(result.locator("li")).to_contain_text(["team: no team is called 'Housng'"])
    expect(editor).to_have_value(typo)  # what was typed is kept, to be put right
    assert stored(svc) == before
    result.scroll_into_view_if_needed()
    shoot(page, "admin-procedures-refused", full_page=True)

    # An organisation's admin is told whose file it is, and is shown none of it.
    svc.user("oda", Role.ADMIN, org="Test Org")
    other = sign_in(chrome, base, "oda")
    open_section(other)
    expect(other.locator("#ad-procedures")).to_contain_text("one file for every organisation")
    expect(other.locator("#asop-yaml")).to_have_count(0)
