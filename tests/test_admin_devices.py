"""The Admin tab's Devices section in a real browser (Chromium): an administrator adds an
OwnTracks phone for a worker and sees its secret once (copied with the button, gone once
hidden and nowhere in the list), disables it after confirming (a cancelled confirmation
changes nothing), gives it a new secret, filters the list, and makes a phone-app enrolment
code whose QR code reads back as its link; a change the service refuses shows its reason
beside the form and changes nothing; a team supervisor sees only their team's devices; on a
phone each device is a card.

VIGIL_SCREENSHOTS=docs/images: the tests also write the docs' admin-devices*.png; without
it, they only check."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import BrowserContext, Locator, Page, expect
from sqlalchemy import func, select

from monitor.devices.models import Device
from monitor.security import verify_device_secret
from monitor.users.models import Role
from tests.browsers import shoot, sign_in, watched_context
from tests.support import Running, add_badge

ORG = "Northshire Council"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def stored(svc: Running, device_id: str) -> Device | None:
    with svc.store.session() as db:
        return db.get(Device, device_id)


def open_devices(page: Page) -> Locator:
    page.click("#tab-admin")
    page.click("#ad-tab-devices")
    pane = page.locator("#ad-devices")
    expect(pane.locator("#adv-list h3")).to_contain_text("Devices (")
    return pane


def row(pane: Locator, device_id: str) -> Locator:
    return pane.locator(f'#adv-list tr[data-device="{device_id}"]')


def test_an_admin_adds_a_device_sees_its_secret_once_disables_and_rotates(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "badge-0007", name="Sam Lee", org=ORG, team="Housing")
    add_badge(svc.store, "badge-0012", name="Priya Nair", org=ORG, team="Nursing")
    svc.user("ada", Role.ADMIN)
    chrome.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = sign_in(chrome, base, "ada")
    pane = open_devices(page)
    expect(row(pane, "badge-0007")).to_contain_text("Sam Lee")
    expect(row(pane, "badge-0007")).to_contain_text("Badge (protocol v1)")

    add = pane.locator("#adv-add form")
    add.locator("select[name=worker_id]").select_option(label="Sam Lee (Housing)")
    add.locator("select[name=kind]").select_option("owntracks")
    add.locator("input[name=id]").fill("ot-sam-phone")
    add.locator("input[name=heartbeat_interval_s]").fill("1800")
    add.locator("button[type=submit]").click()
    expect(add.locator(".ad-status")).to_have_text(
        "ot-sam-phone added. Its secret is shown above, this once."
    )
    shown = pane.locator("#adv-shown")
    expect(shown.locator("h3")).to_have_text("ot-sam-phone added for Sam Lee")
    # The keyboard is at the credential to copy, above, not left at the form.
    expect(shown.locator("dd").first.get_by_role("button", name="Copy")).to_be_focused()
    expect(shown.locator(".adv-warning")).to_contain_text("Shown this once")
    secret = shown.locator("dd code").nth(1).inner_text()
    device = stored(svc, "ot-sam-phone")
    assert device is not None and device.kind == "owntracks"
    assert device.heartbeat_interval_s == 1800
    assert verify_device_secret(device.secret_hash, secret)
    shown.locator("dd").nth(1).get_by_role("button", name="Copy").click()
    expect(shown.locator("dd").nth(1).get_by_role("button")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    expect(row(pane, "ot-sam-phone")).to_contain_text("OwnTracks")
    shoot(pane, "admin-devices-secret")

    # Hidden, it is gone for good: not on the page, not in the list when it comes back.
    shown.get_by_role("button", name="Done: hide it").click()
    expect(shown).to_be_empty()
    page.click("#ad-tab-devices")
    expect(row(pane, "ot-sam-phone")).to_be_visible()
    assert secret not in page.content()

    # Disable, after a confirmation; cancelled, nothing changes.
    row(pane, "ot-sam-phone").get_by_role("button", name="Disable").click()
    confirm = pane.locator(".adv-confirm")
    expect(confirm).to_contain_text("Disable ot-sam-phone? From now on its messages are refused")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    assert stored(svc, "ot-sam-phone").enabled  # type: ignore[union-attr]
    row(pane, "ot-sam-phone").get_by_role("button", name="Disable").click()
    confirm.get_by_role("button", name="Disable").click()
    expect(row(pane, "ot-sam-phone")).to_contain_text("Disabled")
    expect(row(pane, "ot-sam-phone")).to_have_class("disabled")
    expect(pane.locator("#adv-list .ad-status")).to_have_text("ot-sam-phone is disabled.")
    assert not stored(svc, "ot-sam-phone").enabled  # type: ignore[union-attr]

    # A new secret, shown once; the old one no longer matches.
    row(pane, "badge-0007").get_by_role("button", name="New secret").click()
    expect(confirm).to_contain_text("Its present one stops working at once")
    confirm.get_by_role("button", name="Give a new secret").click()
    expect(shown.locator("h3")).to_have_text("New secret for badge-0007")
    new = shown.locator("dd code").nth(1).inner_text()
    badge = stored(svc, "badge-0007")
    assert badge is not None and verify_device_secret(badge.secret_hash, new)

    # The filters.
    pane.locator("#adv-filter select[name=kind]").select_option("owntracks")
    expect(pane.locator("#adv-list tbody tr")).to_have_count(1)
    expect(row(pane, "ot-sam-phone")).to_be_visible()
    pane.locator("#adv-filter select[name=kind]").select_option("")
    pane.locator("#adv-filter select[name=worker]").select_option(label="Priya Nair (Nursing)")
    expect(pane.locator("#adv-list tbody tr")).to_have_count(1)
    expect(row(pane, "badge-0012")).to_be_visible()
    pane.locator("#adv-filter select[name=worker]").select_option("")
    expect(pane.locator("#adv-list tbody tr")).to_have_count(3)
    shown.get_by_role("button", name="Done: hide it").click()
    shoot(pane, "admin-devices")


def test_a_refused_device_shows_the_reason_and_changes_nothing(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "badge-0007", name="Sam Lee", org=ORG, team="Housing")
    add_badge(svc.store, "badge-0012", name="Priya Nair", org=ORG, team="Nursing")
    svc.user("lead", Role.SUPERVISOR, org=ORG, team="Housing")
    page = sign_in(chrome, base, "lead")
    pane = open_devices(page)
    # A team's supervisor: only the team's devices and workers.
    expect(pane.locator("#adv-list tbody tr")).to_have_count(1)
    expect(row(pane, "badge-0007")).to_be_visible()
    workers = pane.locator("#adv-add select[name=worker_id] option").all_inner_texts()
    assert workers == ["Choose…", "Sam Lee (Housing)"]

    def count() -> int:
        with svc.store.session() as db:
            return int(db.scalar(select(func.count()).select_from(Device)) or 0)

    before = count()
    add = pane.locator("#adv-add form")
    add.locator("select[name=worker_id]").select_option(label="Sam Lee (Housing)")
    add.locator("input[name=id]").fill("badge-0012")  # Priya's, in another team
    add.locator("button[type=submit]").click()
    status = add.locator(".ad-status")
    expect(status).to_have_text("Not saved: device badge-0012 already exists")
    expect(status).to_have_class("ad-status error")
    add.locator("input[name=id]").fill("badge 13")
    add.locator("button[type=submit]").click()
    expect(status).to_have_text(
        "Not saved: device id must be 1 to 64 characters of A-Z a-z 0-9 _ -"
    )
    expect(add.locator("input[name=id]")).to_have_value("badge 13")  # kept to correct
    expect(pane.locator("#adv-shown")).to_be_empty()
    assert count() == before
    shoot(pane.locator("#adv-add"), "admin-devices-refused")


def test_a_phone_app_enrolment_code_shows_its_qr_code(svc: Running, chrome: BrowserContext) -> None:
    base = svc.serve_http()
    add_badge(svc.store, "badge-0007", name="Sam Lee", org=ORG, team="Housing")
    svc.user("lead", Role.SUPERVISOR, org=ORG, team="Housing")
    page = sign_in(chrome, base, "lead")
    pane = open_devices(page)
    enrol = pane.locator("#adv-enrol form")
    enrol.locator("select[name=worker_id]").select_option(label="Sam Lee (Housing)")
    enrol.locator("button[type=submit]").click()
    expect(enrol.locator(".ad-status")).to_contain_text("its enrolment code is shown below")
    shown = pane.locator(".adv-enrolment")
    qr = shown.locator("img.ad-qr")
    expect(qr).to_be_visible()
    link = shown.locator("code").inner_text()
    assert link.startswith(f"{svc.settings.public_url.rstrip('/')}/app/#enrol=")
    # The code as drawn on the page reads back as the link.
    image = Image.open(io.BytesIO(qr.screenshot()))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [link]
    expect(shown).to_contain_text("Shown this once: Sam Lee scans it")
    # The new app device is in the list, for Sam.
    app_row = pane.locator("#adv-list tbody tr", has_text="Phone (worker app")
    expect(app_row).to_contain_text("Sam Lee")
    r = svc.http.post("/api/v1/app/enrol", json={"code": link.split("#enrol=")[1]})
    assert r.status_code == 200 and r.json()["worker_name"] == "Sam Lee"
    shoot(pane.locator("#adv-enrol"), "admin-devices-enrol")


def test_on_a_phone_each_device_is_a_card_with_its_id_in_sight(
    svc: Running, chrome: BrowserContext
) -> None:
    """At 390 px the list does not scroll sideways with the device's id out of sight: each
    row is a card whose values say what they are, and its buttons work as on a desk."""
    base = svc.serve_http()
    add_badge(svc.store, "badge-0007", name="Sam Lee", org=ORG, team="Housing")
    add_badge(svc.store, "badge-0012", name="Priya Nair", org=ORG, team="Nursing")
    svc.user("ada", Role.ADMIN)
    phone_ctx, blocked = watched_context(chrome.browser, 390, 844)  # type: ignore[arg-type]
    try:
        page = sign_in(phone_ctx, base, "ada")
        pane = open_devices(page)
        card = row(pane, "badge-0007")
        expect(card.get_by_text("badge-0007", exact=True)).to_be_in_viewport()
        expect(card.get_by_role("cell", name="Sam Lee")).to_be_in_viewport()
        box = card.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        table = pane.locator("#adv-list table")
        assert table.evaluate("t => t.scrollWidth <= t.clientWidth")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # Each value under its column's name; the empty ones take no room.
        labels = card.locator("td").evaluate_all(
            "tds => tds.filter(td => td.offsetHeight)"
            ".map(td => getComputedStyle(td, '::before').content)"
        )
        assert labels[:3] == ['"Device"', '"Kind"', '"Worker"'], labels
        # Still a table to a screen reader.
        assert card.get_attribute("role") == "row"
        expect(pane.get_by_role("columnheader", name="Connection")).to_have_count(1)
        shoot(page, "admin-devices-phone")

        card.get_by_role("button", name="Disable").click()
        confirm = pane.locator(".adv-confirm")
        expect(confirm).to_be_in_viewport()
        confirm.get_by_role("button", name="Disable").click()
        expect(card).to_contain_text("Disabled")
        assert not stored(svc, "badge-0007").enabled  # type: ignore[union-attr]
    finally:
        phone_ctx.close()
    assert blocked == [], blocked
