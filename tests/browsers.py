"""Real browsers for the tests: Debian's Chromium and Firefox ESR, driven by Playwright, and
signing in to the console."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Locator, Page, Playwright, expect

from tests.support import PASSWORD, WAIT_S

# Not Playwright's 5 s (tests/support.py, WAIT_S).
expect.set_options(timeout=WAIT_S * 1000)

# VIGIL_SCREENSHOTS=docs/images: the tests that show what the docs show take the docs'
# screenshots there; without it, they only check.
SHOTS = os.environ.get("VIGIL_SCREENSHOTS")


def shoot(target: Page | Locator, name: str, **kw: Any) -> None:
    """`name`.png of the page or element, in VIGIL_SCREENSHOTS, when it is set."""
    if SHOTS:
        target.screenshot(path=str(Path(SHOTS) / f"{name}.png"), **kw)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FIREFOX = shutil.which("firefox-esr") or "/usr/bin/firefox-esr"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch(p: Playwright, name: str) -> Browser:
    if name == "chromium":
        return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    # Debian's Firefox ESR, driven over WebDriver BiDi (Playwright's "moz-" channels):
    # Playwright's own patched Firefox is not something the test command may download.
    return p.firefox.launch(channel="moz-firefox", executable_path=FIREFOX)


def watched_context(
    engine: Browser, width: int = 1366, height: int = 768
) -> tuple[BrowserContext, list[str]]:
    """A fresh browser profile, and the list that collects what the content security policy
    blocked in it: anything it blocks is a broken console. (Chromium reports these on the
    console; Firefox over WebDriver BiDi does not.)"""
    context = engine.new_context(viewport={"width": width, "height": height})
    blocked: list[str] = []

    def watch(page: Page) -> None:
        page.on(
            "console",
            lambda m: (
                blocked.append(m.text)
                if "Content-Security-Policy" in m.text or "Content Security Policy" in m.text
                else None
            ),
        )

    context.on("page", watch)
    return context, blocked


def sign_in(browser: BrowserContext, base: str, username: str) -> Page:
    """A new page of the console, signed in as `username` and live."""
    # Each operator gets a page of their own (sessionStorage is per page anyway).
    page = browser.new_page()
    page.goto(base + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#conn")).to_have_text("live")
    return page


def resolve_in_console(page: Page, outcome: str, note: str) -> None:
    """Resolve the alert open in the console, as an operator does: the dialog's outcome and
    note, then its confirmation step."""
    page.click("#resolve-open")
    page.select_option("#outcome", outcome)
    page.fill("#resolve-note", note)
    page.click("#rs-next")
    page.click("#rs-confirm")
