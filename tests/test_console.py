"""The console in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from monitor.users.models import Role
from tests.support import PASSWORD, Running

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    # The browser tests are about the console; one database is enough.
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def sign_in(browser: Browser, base: str, username: str) -> Page:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(base + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
    return page


def test_alert_appears_and_taking_charge_shows_everywhere(svc: Running, browser: Browser) -> None:
    base = svc.serve_http()
    svc.user("alice", Role.OPERATOR)
    svc.user("bob", Role.OPERATOR)
    alice = sign_in(browser, base, "alice")
    bob = sign_in(browser, base, "bob")

    badge, _ = svc.badge("badge-ui", name="Nia <b>Okoro</b>")
    t0 = time.monotonic()
    alert_id = badge.raise_alert(type="red", note="<img src=x onerror=alert(1)>")
    row = alice.locator("#queue tbody tr").first
    expect(row).to_contain_text("Panic", timeout=5_000)
    assert time.monotonic() - t0 < 2.0
    # What people typed is shown as text, never as HTML.
    expect(row).to_contain_text("Nia <b>Okoro</b>")
    expect(bob.locator("#queue tbody tr").first).to_contain_text("Panic")

    row.click()
    expect(alice.locator("#d-facts")).to_contain_text("<img src=x onerror=alert(1)>")
    alice.click("#ack")
    badge.wait_for("alert_acknowledged", alert_id=alert_id, timeout=10)
    expect(bob.locator("#queue tbody tr").first).to_contain_text("alice", timeout=5_000)

    alice.fill("#note", "Called the worker, police on the way")
    alice.click("#note-form button")
    expect(alice.locator("#timeline")).to_contain_text("police on the way")
    alice.select_option("#outcome", "genuine_emergency")
    alice.click("#resolve-form button")
    expect(alice.locator("#empty")).to_be_visible(timeout=5_000)
    expect(bob.locator("#empty")).to_be_visible(timeout=5_000)
    badge.wait_for("alert_closed", alert_id=alert_id, timeout=10)


def test_duress_shows_as_duress(svc: Running, browser: Browser) -> None:
    base = svc.serve_http()
    svc.user("carol", Role.OPERATOR)
    page = sign_in(browser, base, "carol")
    badge, b = svc.badge("badge-ui2")
    alert_id = badge.raise_alert(type="red")
    expect(page.locator("#queue tbody tr").first).to_contain_text("Panic", timeout=5_000)
    badge.cancel_alert(alert_id, b.duress_pin)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    expect(page.locator("#queue tbody tr").first).to_contain_text("Duress", timeout=5_000)


def test_dropped_websocket_reconnects_and_catches_up(svc: Running, browser: Browser) -> None:
    base = svc.serve_http()
    svc.user("dan", Role.OPERATOR)
    page = sign_in(browser, base, "dan")
    badge, _ = svc.badge("badge-ui3")
    # Drop the socket, raise an alert while it is down, and let it reconnect by itself.
    page.evaluate("state.ws.close()")
    expect(page.locator("#conn")).to_have_text("offline")
    badge.raise_alert(type="man_down")
    expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
    expect(page.locator("#queue tbody tr").first).to_contain_text("Man down", timeout=5_000)
