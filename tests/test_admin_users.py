"""The Admin tab's Users section in a real browser (Chromium): an administrator adds a user,
changes their role and phone and disables them (never their own account); a supervisor is
offered only the roles they may give, and their attempt to make a peer is refused with the
reason beside the form and nothing changed; an operator has no Admin tab.

VIGIL_SCREENSHOTS=docs/images: the tests also write the docs' admin-users.png and
admin-users-refused.png; without it, they only check."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import select

from monitor.users.models import Role, User
from tests.browsers import shoot, sign_in
from tests.support import PASSWORD, Running, add_badge

ORG = "Northshire Council"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def accounts(svc: Running) -> dict[str, tuple[str, int | None, int | None, str, bool]]:
    with svc.store.session() as db:
        return {
            u.username: (u.role, u.org_id, u.team_id, u.phone, u.active)
            for u in db.scalars(select(User))
        }


def open_users(page: Page) -> Locator:
    page.click("#tab-admin")
    page.click("#ad-tab-users")
    pane = page.locator("#ad-users")
    expect(pane.locator("#au-list h3")).to_contain_text("Accounts (")
    return pane


def row(pane: Locator, username: str) -> Locator:
    return pane.locator(f'#au-list tr[data-username="{username}"]')


def test_an_admin_adds_changes_and_disables_a_user(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "users-north", org=ORG, team="Housing North")
    svc.user("ada", Role.ADMIN)
    svc.user("sam", Role.SUPERVISOR, org=ORG)
    page = sign_in(chrome, base, "ada")
    pane = open_users(page)
    expect(row(pane, "sam")).to_contain_text(ORG)

    add = pane.locator("#au-add form")
    add.locator("input[name=username]").fill("dana")
    add.locator("input[name=full_name]").fill("Dana Reyes")
    add.locator("select[name=role]").select_option("operator")
    add.locator("select[name=scope]").select_option(label=f"{ORG} · Housing North")
    add.locator("input[name=phone]").fill("+447700900123")
    add.locator("input[name=password]").fill(PASSWORD)
    add.locator("input[name=confirm]").fill(PASSWORD + "x")
    add.locator("button[type=submit]").click()
    expect(add.locator(".ad-status")).to_have_text("Not saved: the two passwords differ")
    assert "dana" not in accounts(svc)
    add.locator("input[name=confirm]").fill(PASSWORD)
    add.locator("button[type=submit]").click()
    expect(add.locator(".ad-status")).to_contain_text("dana added")
    dana = row(pane, "dana")
    expect(dana).to_contain_text("Operator")
    expect(dana).to_contain_text(f"{ORG} · Housing North")
    assert svc.login("dana")  # the password typed works

    dana.get_by_role("button", name="Change").click()
    change = pane.locator("#au-edit form.au-change")
    change.locator("select[name=role]").select_option("supervisor")
    change.locator("input[name=phone]").fill("+447700900999")
    change.locator("button[type=submit]").click()
    expect(change.locator(".ad-status")).to_have_text("dana changed.")
    expect(dana).to_contain_text("Supervisor")
    expect(dana).to_contain_text("+447700900999")
    role, _, _, phone, _ = accounts(svc)["dana"]
    assert (role, phone) == ("supervisor", "+447700900999")

    # Asked first, in the row; Keep changes nothing.
    dana.get_by_role("button", name="Disable").click()
    expect(dana.locator(".au-confirm")).to_contain_text("Disable dana? They are signed out")
    expect(dana.get_by_role("button", name="Disable dana")).to_be_focused()
    dana.get_by_role("button", name="Keep").click()
    expect(dana.get_by_role("button", name="Disable")).to_be_focused()
    assert accounts(svc)["dana"][4] is True
    dana.get_by_role("button", name="Disable").click()
    dana.get_by_role("button", name="Disable dana").click()
    expect(dana).to_have_class("disabled")
    expect(dana).to_contain_text("Disabled")
    expect(pane.locator("#au-list .ad-status")).to_contain_text("dana is disabled")
    assert accounts(svc)["dana"][4] is False
    r = svc.http.post("/api/v1/auth/token", data={"username": "dana", "password": PASSWORD})
    assert r.status_code == 401
    color = dana.locator("td").first.evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(138, 148, 158)"  # greyed
    shoot(pane, "admin-users")

    # Nobody disables their own account (the service refuses it: tests/fast/
    # test_admin_users.py): their own row offers no Disable, only Change.
    expect(row(pane, "ada").get_by_role("button", name="Change")).to_be_visible()
    expect(row(pane, "ada").get_by_role("button", name="Disable")).to_have_count(0)
    expect(dana.get_by_role("button", name="Enable")).to_be_visible()


def test_a_supervisor_cannot_make_an_administrator_or_a_peer(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "users-north", org=ORG, team="Housing North")
    add_badge(svc.store, "users-south", org="South Trust", team="Care")
    svc.user("ada", Role.ADMIN)
    svc.user("south-op", Role.OPERATOR, org="South Trust")
    svc.user("sam", Role.SUPERVISOR, org=ORG)
    before = accounts(svc)
    page = sign_in(chrome, base, "sam")
    pane = open_users(page)
    # Only the accounts of the supervisor's organisation, and only its scopes to give.
    expect(pane.locator("#au-list tbody tr")).to_have_count(1)
    expect(row(pane, "sam")).to_be_visible()
    scopes = pane.locator("#au-add select[name=scope]").evaluate(
        "s => [...s.options].map((o) => o.text)"
    )
    assert scopes == [ORG, f"{ORG} · Housing North"]
    # Nor the roles they may not give: no administrator is offered.
    roles = pane.locator("#au-add select[name=role]").evaluate(
        "s => [...s.options].map((o) => o.text)"
    )
    assert roles == ["Operator", "Supervisor"]

    # A supervisor of the supervisor's own scope (a peer) is refused by the service.
    add = pane.locator("#au-add form")
    add.locator("input[name=username]").fill("mallory")
    add.locator("input[name=full_name]").fill("Mallory Lead")
    add.locator("select[name=role]").select_option("supervisor")
    add.locator("select[name=scope]").select_option(label=ORG)
    add.locator("input[name=password]").fill(PASSWORD)
    add.locator("input[name=confirm]").fill(PASSWORD)
    add.locator("button[type=submit]").click()
    status = add.locator(".ad-status")
    expect(status).to_have_text(
        "Not saved: a supervisor manages supervisors of a narrower scope only, not their peers"
    )
    expect(status).to_have_class("ad-status error")
    # The form keeps what was typed; nothing was made.
    expect(add.locator("input[name=username]")).to_have_value("mallory")
    assert accounts(svc) == before
    shoot(add, "admin-users-refused")


def test_an_operator_has_no_admin_tab(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    svc.user("op1")
    page = sign_in(chrome, base, "op1")
    expect(page.locator("#tab-alerts")).to_be_visible()
    expect(page.locator("#tab-admin")).to_be_hidden()
