"""Urgency in the console, in Chromium: the alarm repeats until someone takes charge, and a
silence stops it on one console only; the title; rows that age against the targets; a
worker's alerts as one row; the sound banner when the browser refuses to play. (A duress on a
taken alert, in both engines: test_console_duress.py.)"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from monitor.users.models import Role
from tests.browsers import ARGS, CHROMIUM, sign_in
from tests.escalation_support import alert_pk
from tests.support import Broker, Running, running, service_settings

REPEAT_S = 2


def quick_service(tmp_path: Path, mqtt_broker: Broker) -> Iterator[Running]:
    """The service with short timers, so that a test sees the alarm repeat and rows pass both
    targets."""
    settings = service_settings(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'vigil.db'}",
        mqtt_broker,
        alarm_repeat_s=REPEAT_S,
        ack_targets="3:80,6:99",
    )
    with running(settings, mqtt_broker) as r:
        yield r


@pytest.fixture
def svc(tmp_path: Path, mqtt_broker: Broker) -> Iterator[Running]:
    yield from quick_service(tmp_path, mqtt_broker)


def until(page: Page, condition: str, timeout_s: float) -> None:
    """Wait for a JavaScript condition, asked from here: the console's content security
    policy refuses Playwright's own polling, which evaluates strings."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({condition})"):
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {condition}"
        time.sleep(0.1)


def count_plays(page: Page) -> None:
    """Count every real 'play' event of the two alarm sounds."""
    page.evaluate(
        """() => { window.plays = { chime: 0, duress: 0 };
        $('#chime').addEventListener('play', () => window.plays.chime++);
        $('#duress-alarm').addEventListener('play', () => window.plays.duress++); }"""
    )


def plays(page: Page, which: str = "chime") -> int:
    return int(page.evaluate(f"window.plays.{which}"))


def has(cls: str) -> re.Pattern[str]:
    """A class attribute that holds `cls`."""
    return re.compile(rf"(^|\s){cls}(\s|$)")


def row(page: Page, device_alert_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#queue tbody tr[data-device-alert="{device_alert_id}"]')


def test_the_alarm_repeats_until_taken_and_a_silence_is_for_one_console(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("carol", Role.OPERATOR)
    svc.user("dave", Role.OPERATOR)
    carol = sign_in(chrome, base, "carol")
    dave = sign_in(chrome, base, "dave")
    for page in (carol, dave):
        count_plays(page)
    # Desktop alerts are offered by a button after sign-in, never asked for on load.
    expect(carol.locator("#notify-banner")).to_be_visible()
    badge, _ = svc.badge("badge-ur2", name="Sam Lee")
    alert_id = badge.raise_alert(type="man_down")
    expect(row(carol, alert_id)).to_be_visible(timeout=5_000)
    # At once, then every REPEAT_S.
    until(carol, "window.plays.chime >= 3", 3 * REPEAT_S + 2)
    until(dave, "window.plays.chime >= 3", 2)

    row(carol, alert_id).click()
    expect(carol.locator("#silence-form")).to_be_visible()
    carol.select_option("#silence-minutes", "2")
    carol.click("#silence-form button")
    expect(carol.locator("#silence-state")).to_contain_text("Sound off here until")
    expect(carol.locator("#timeline")).to_contain_text(
        "Alarm sound silenced on carol's console for 2 min (carol)"
    )
    silenced_at, dave_at = plays(carol), plays(dave)
    carol.wait_for_timeout(3 * REPEAT_S * 1000 + 500)
    assert plays(carol) == silenced_at  # silent here...
    assert plays(dave) >= dave_at + 2  # ...and still sounding on Dave's console
    expect(row(carol, alert_id)).to_have_class(has("flash"))
    expect(row(carol, alert_id)).to_have_class(has("silenced"))
    expect(carol).to_have_title("(1) MAN DOWN · Vigil")

    row(dave, alert_id).click()
    dave.click("#ack")
    expect(row(dave, alert_id)).to_contain_text("dave", timeout=5_000)
    taken = plays(dave)
    dave.wait_for_timeout(REPEAT_S * 1000 + 800)
    assert plays(dave) == taken
    expect(dave).to_have_title("Vigil console")


def test_a_silence_does_not_cover_the_duress_that_follows(
    svc: Running, chrome: BrowserContext
) -> None:
    """One operator on a night shift silences a panic for 10 min; the worker then keys the
    duress PIN. The silence was for the panic: the duress alarm sounds on that console."""
    base = svc.serve_http()
    svc.user("nina", Role.OPERATOR)
    nina = sign_in(chrome, base, "nina")
    count_plays(nina)
    badge, b = svc.badge("badge-ur-sd", name="Sam Lee")
    alert_id = badge.raise_alert(type="red")
    expect(row(nina, alert_id)).to_be_visible(timeout=5_000)
    row(nina, alert_id).click()
    nina.select_option("#silence-minutes", "10")
    nina.click("#silence-form button")
    expect(nina.locator("#silence-state")).to_contain_text("Sound off here until")
    quiet = plays(nina)
    nina.wait_for_timeout(REPEAT_S * 1000 + 800)
    assert plays(nina) == quiet and plays(nina, "duress") == 0

    badge.cancel_alert(alert_id, b.duress_pin)
    badge.wait_for("alert_cancelled", alert_id=alert_id, timeout=10)
    expect(row(nina, alert_id)).to_have_class(has("k-duress"), timeout=5_000)
    until(nina, "window.plays.duress > 0", 5)
    expect(row(nina, alert_id)).not_to_have_class(has("silenced"))
    # The pane offers to silence the duress itself, if the operator must.
    expect(nina.locator("#silence-state")).to_have_text("")
    expect(nina.locator("#silence-form button")).to_be_enabled()


def test_rows_age_against_the_targets_and_a_worker_is_one_row(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("erin", Role.OPERATOR)
    page = sign_in(chrome, base, "erin")
    badge, _ = svc.badge("badge-ur3", name="Ola Berg")
    first = badge.raise_alert(type="test")
    expect(row(page, first)).to_be_visible(timeout=5_000)
    # A test is quiet: no flash, and it does not age against the targets.
    expect(row(page, first)).to_have_class(has("k-test"))
    expect(row(page, first)).not_to_have_class(has("flash"))
    panic = badge.raise_alert(type="red")
    lead = row(page, panic)
    expect(lead).to_be_visible(timeout=5_000)
    # Ola's two alerts are one row, the panic leading, with a count.
    expect(row(page, first)).to_be_hidden()
    expect(lead.locator("td").nth(1)).to_have_attribute("data-more", "+1")
    expect(page.locator("#queue tbody tr:visible")).to_have_count(1)
    expect(lead).to_have_class(has("late-1"), timeout=5_000)
    expect(lead.locator("td.age")).to_contain_text("over 3\u00a0s")
    expect(lead).to_have_class(has("late-2"), timeout=5_000)
    expect(lead.locator("td.age")).to_contain_text("over 6\u00a0s")
    expect(row(page, first)).not_to_have_class(re.compile(r"(^|\s)late-"))
    # Opening the row shows the worker's other alert under it.
    lead.click()
    expect(row(page, first)).to_be_visible()
    expect(lead).to_have_attribute("aria-expanded", "true")
    # Someone takes the panic: it stops ageing against the targets.
    page.click("#ack")
    expect(lead).not_to_have_class(re.compile(r"(^|\s)late-"), timeout=5_000)


def test_a_new_alarm_shows_on_the_desktop_while_the_page_is_hidden(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("gil", Role.OPERATOR)
    chrome.grant_permissions(["notifications"], origin=base)
    page = sign_in(chrome, base, "gil")
    expect(page.locator("#notify-banner")).to_be_hidden()  # allowed already: nothing to ask
    # Each notification the page makes, through the browser's own Notification.
    page.evaluate(
        """() => { const Real = window.Notification; window.shown = [];
        window.Notification = new Proxy(Real, {
          construct(target, args) {
            window.shown.push(args[0]); return Reflect.construct(target, args); },
          get(target, key) { const v = Reflect.get(target, key, target);
            return typeof v === "function" ? v.bind(target) : v; } }); }"""
    )
    seen, _ = svc.badge("badge-ur5", name="Kim Seen")
    expect(row(page, seen.raise_alert(type="red"))).to_be_visible(timeout=5_000)
    assert page.evaluate("() => window.shown") == []  # the page is in front: no notification
    page.evaluate("() => Object.defineProperty(document, 'hidden', { get: () => true })")
    hidden, _ = svc.badge("badge-ur6", name="Lee Hidden")
    expect(row(page, hidden.raise_alert(type="man_down"))).to_be_attached(timeout=5_000)
    until(page, "window.shown.length === 1", 3)
    assert page.evaluate("() => window.shown") == ["Man down: Lee Hidden"]


def test_a_refused_sound_asks_for_a_click(svc: Running, chromium: Browser) -> None:
    # Chromium as a desktop browser is: no sound before the page has been used.
    engine = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*ARGS, "--autoplay-policy=document-user-activation-required"],
    )
    try:
        context = engine.new_context(viewport={"width": 1366, "height": 768})
        base = svc.serve_http()
        svc.user("fay", Role.OPERATOR)
        page = sign_in(context, base, "fay")
        badge, _ = svc.badge("badge-ur4")
        alert_id = badge.raise_alert(type="red")
        alert_pk(svc, alert_id)
        expect(row(page, alert_id)).to_be_visible(timeout=5_000)
        # The console opened with a session kept (as after a reload), in a profile that has
        # never been used on this site: nobody has used this page yet. Nothing may touch the
        # page until it has tried to sound: Playwright's evaluations count as the user's.
        token = page.evaluate("() => state.token")
        context.close()
        context = engine.new_context(viewport={"width": 1366, "height": 768})
        context.add_init_script(f"sessionStorage.setItem('vigil.token', {token!r})")
        page = context.new_page()
        page.goto(base + "/")
        time.sleep(REPEAT_S / 2)
        banner = page.locator("#sound-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Click to turn the alarm sound on")
        count_plays(page)
        page.click("#sound-on")
        expect(banner).to_be_hidden()
        until(page, "window.plays.chime >= 1", 3)
    finally:
        engine.close()
