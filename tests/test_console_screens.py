"""The console in a real browser: the truth about the connection, deliberate resolution,
phone, tablet and desktop widths, deep links and the keyboard."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from sqlalchemy import update

from monitor.alerts.models import Alert
from monitor.db import utcnow
from monitor.procedures import definitions as procedures
from monitor.users.models import Role
from tests.browsers import resolve_in_console, sign_in, watched_context
from tests.escalation_support import load
from tests.support import PASSWORD, Running

ROOT = Path(__file__).parents[1]
DEFAULT_PROCEDURES = ROOT / "monitor" / "procedures" / "default_procedures.yaml"
DEFAULT_POLICY = ROOT / "escalation" / "default_policy.yaml"

# Set to a folder to keep the screenshots of each width, to look at them.
SHOTS = os.environ.get("VIGIL_SHOTS")


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def _raise(svc: Running, prefix: str, name: str, type: str = "red") -> int:
    """An alert raised by a new badge of worker `name`; its id in the service."""
    badge, _ = svc.badge(prefix, name=name)
    for i in range(2):
        badge.send_location(lat=51.5 + i * 0.0004, lon=-0.12, acc=8, qos=1)
    device_alert = badge.raise_alert(type=type)
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    op = svc.login("op1")
    (row,) = [
        a
        for a in svc.http.get("/api/v1/alerts", headers=op).json()
        if a["device_id"] == badge.device_id
    ]
    return int(row["id"])


def _row(page: Page, pk: int):  # type: ignore[no-untyped-def]
    return page.locator(f'#queue tbody tr[data-id="{pk}"]')


def test_stale_while_the_service_is_away_and_caught_up_on_return(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    op = svc.user("op1")
    page = sign_in(chrome, base, "op1")
    gone = _raise(svc, "stale-a", "Ada Stone")
    _row(page, gone).click()
    expect(page.locator("#ack")).to_be_enabled()
    age = _row(page, gone).locator("td.age")

    svc.stop_http()
    banner = page.locator("#conn-banner")
    expect(banner).to_contain_text(re.compile(r"Connection to the service lost at \d\d:\d\d:\d\d"))
    expect(banner).to_contain_text("may be out of date")
    expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"))
    for control in ("#ack", "#resolve-open", "#note"):
        expect(page.locator(control)).to_be_disabled()
    # The banner stays on screen and says why the actions are off: the alert's own note, which
    # would repeat it, is not shown beside it (on a phone the two took a quarter of it).
    expect(page.locator("#detail .offline-note")).to_be_hidden()
    # Not the service's own banner: this console cannot reach it, which is another thing.
    expect(page.locator("#service-banner")).to_be_hidden()
    _shot(page, "stale")
    # A request that could not leave says so, not "Failed to fetch" (say a click that beat
    # the banner).
    page.evaluate(f"act(() => post('/api/v1/alerts/{gone}/notes', {{ text: 'on my way' }}))")
    expect(page.locator("#action-error")).to_contain_text(
        "Could not reach the service: this may not have been done"
    )
    frozen = age.text_content()
    page.wait_for_timeout(2_200)
    assert age.text_content() == frozen, "the ages must stop while out of date"

    # The service itself is stopped and started again, and while the console cannot reach
    # it the alert on screen is resolved and another is raised.
    svc.restart()
    r = svc.http.post(f"/api/v1/alerts/{gone}/resolve", json={"outcome": "test"}, headers=op)
    assert r.status_code == 200
    new = _raise(svc, "stale-b", "Ben Ode", type="man_down")

    svc.serve_http(port=urlparse(base).port)
    expect(banner).to_contain_text(
        re.compile(r"Reconnected at \d\d:\d\d:\d\d; caught up"), timeout=15_000
    )
    expect(_row(page, new)).to_contain_text("Ben Ode")
    _shot(page, "caught-up")
    expect(_row(page, gone)).to_have_count(0)
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#d-facts")).to_contain_text("Test")  # the alert on screen, as it is now
    expect(page.locator("#resolve-open")).to_be_disabled()  # resolved: nothing more to do
    expect(page.locator("#note")).to_be_enabled()
    expect(banner).to_be_hidden()


def test_resolve_needs_an_outcome_a_note_and_a_confirmation(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    alice = svc.user("alice")
    svc.user("lead", Role.SUPERVISOR)
    mine = _raise(svc, "res-a", "Cai Rowe")
    held = _raise(svc, "res-b", "Dee Marsh")
    late = _raise(svc, "res-c", "Eli Moss")
    page = sign_in(chrome, base, "lead")

    _row(page, mine).click()
    page.click("#resolve-open")
    dialog = page.locator("#resolve-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#outcome")).to_have_value("")  # no outcome chosen for the operator
    page.click("#rs-next")
    # Refused in the browser: no outcome, no note; still the first step.
    assert page.locator("#outcome").evaluate("e => !e.validity.valid")
    expect(page.locator("#rs-confirm")).to_be_hidden()
    page.select_option("#outcome", "false_alarm")
    page.fill("#resolve-note", "   ")
    page.click("#rs-next")
    expect(page.locator("#rs-confirm")).to_be_hidden()
    page.fill("#resolve-note", "Pressed by mistake in a pocket")
    page.click("#rs-next")
    _shot(page, "resolve-confirm")
    summary = page.locator("#rs-summary")
    expect(summary).to_contain_text("False alarm")
    expect(summary).to_contain_text("Pressed by mistake in a pocket")
    expect(page.locator("#rs-held")).to_be_hidden()
    expect(page.locator("#rs-confirm")).to_be_focused()
    page.click("#rs-confirm")
    expect(dialog).to_be_hidden()
    expect(_row(page, mine)).to_have_count(0)
    entries = svc.http.get(f"/api/v1/alerts/{mine}", headers=alice).json()["timeline"]
    assert [e["actor"] for e in entries if e["kind"] == "resolved"] == ["user:lead"]

    # Alice takes charge while the lead reads the confirmation: the dialog goes back to the
    # first step with the warning, and the take-over to tick.
    _row(page, held).click()
    page.click("#resolve-open")
    expect(page.locator("#rs-held")).to_be_hidden()
    page.select_option("#outcome", "worker_safe")
    page.fill("#resolve-note", "Worker called back, safe")
    page.click("#rs-next")
    assert svc.http.post(f"/api/v1/alerts/{held}/acknowledge", headers=alice).status_code == 200
    expect(page.locator("#rs-error")).to_contain_text("alice has just taken charge")
    expect(page.locator("#rs-held")).to_contain_text("alice has taken charge")
    expect(page.locator("#rs-confirm")).to_be_hidden()
    page.click("#rs-next")  # the take-over is not ticked: refused
    expect(page.locator("#rs-confirm")).to_be_hidden()
    page.check("#rs-take-over")
    page.click("#rs-next")
    expect(summary).to_contain_text("Taken over from")
    expect(summary).to_contain_text("alice")
    page.click("#rs-confirm")
    expect(dialog).to_be_hidden()
    expect(_row(page, held)).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text("Taken over from alice to resolve")

    # The same, with the news still on its way to the console when the lead confirms: the
    # service refuses (409) and the dialog says why, with the warning.
    _row(page, late).click()
    page.click("#resolve-open")
    page.select_option("#outcome", "worker_safe")
    page.fill("#resolve-note", "Worker called back, safe")
    page.click("#rs-next")
    page.evaluate("window.__heard = state.ws.onmessage; state.ws.onmessage = null")
    assert svc.http.post(f"/api/v1/alerts/{late}/acknowledge", headers=alice).status_code == 200
    page.click("#rs-confirm")
    expect(page.locator("#rs-error")).to_contain_text(
        "alice took charge of this alert just before you confirmed"
    )
    expect(page.locator("#rs-held")).to_contain_text("alice has taken charge")
    expect(page.locator("#rs-take-over")).not_to_be_checked()
    _shot(page, "resolve-refused")
    page.evaluate("() => { state.ws.onmessage = window.__heard; }")
    page.click("#rs-cancel")
    expect(dialog).to_be_hidden()
    assert svc.http.get(f"/api/v1/alerts/{late}", headers=alice).json()["state"] == "acknowledged"


def test_an_alert_opened_while_a_resolve_finishes_stays_open(
    svc: Running, chrome: BrowserContext
) -> None:
    """The operator resolves one alert and opens the next before the console has read the
    first one back: the end of the resolve must not close what the operator opened."""
    base = svc.serve_http()
    svc.user("op1")
    done = _raise(svc, "next-a", "Fay Lund")
    nxt = _raise(svc, "next-b", "Gus Hale")
    page = sign_in(chrome, base, "op1")
    held: dict[int, list[Route]] = {done: [], nxt: []}
    # Each read is held until the test lets it go, so that they answer in the order of a
    # loaded service: the resolved alert's reads back (the resolve's own, and the refresh
    # its news brings) after the next alert's opening began.
    for pk in (done, nxt):
        page.route(f"**/api/v1/alerts/{pk}", _hold(held, pk))
    _row(page, done).click()
    _let_go(page, held, done)
    resolve_in_console(page, "false_alarm", "Pressed by mistake")
    expect(page.locator("#resolve-dialog")).to_be_hidden()
    expect(_row(page, done)).to_have_count(0)  # told by the websocket; its read is held
    _row(page, nxt).click()
    page.wait_for_function(f"() => state.selected === {nxt}")
    _let_go(page, held, done)
    page.wait_for_timeout(300)  # the resolve's end runs before the next alert's answer
    _let_go(page, held, nxt)
    for pk in (done, nxt):
        page.unroute(f"**/api/v1/alerts/{pk}")
    for routes in held.values():  # later reads (the websocket's news), answered now
        while routes:
            routes.pop().continue_()
    expect(page.locator("#d-title")).to_contain_text("Gus Hale")
    expect(page.locator("#resolve-open")).to_be_enabled()
    expect(_row(page, nxt)).to_have_class(re.compile(r"\bselected\b"))


def _hold(held: dict[int, list[Route]], pk: int) -> Callable[[Route], None]:
    return lambda route: held[pk].append(route)


def _let_go(page: Page, held: dict[int, list[Route]], pk: int) -> None:
    """Answer the held reads of alert `pk`, once the console has asked for it."""
    for _ in range(200):
        if held[pk]:
            while held[pk]:
                held[pk].pop(0).continue_()
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"the console never read alert {pk}")


def _inside(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    width = page.evaluate("innerWidth")
    assert box is not None, f"{selector} is not on screen"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (selector, box, width)


def _fits(page: Page, what: str) -> None:
    scroll, width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert scroll <= width, f"{what}: the page is {scroll} px wide on a {width} px screen"


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


@pytest.mark.parametrize("width,height", [(390, 844), (768, 1024), (1366, 768)])
def test_every_screen_width_fits(svc: Running, chromium: Browser, width: int, height: int) -> None:
    # Everything an alert can show: the default procedures and escalation policy (its
    # contacts, steps and calls), besides the map, the facts and the timeline.
    with svc.store.begin() as db:
        procedures.replace_all(db, procedures.parse_file(DEFAULT_PROCEDURES.read_text()))
    load(svc, DEFAULT_POLICY.read_text())
    base = svc.serve_http()
    svc.user("op1")
    svc.user("lead", Role.SUPERVISOR)
    pk = _raise(svc, "wide", "Evangeline Featherstonehaugh-Smythe")
    taken = _raise(svc, "wide2", "Fin Hale", type="test")
    # Taken by someone: the queue's last column has a name in it.
    assert svc.http.post(f"/api/v1/alerts/{taken}/acknowledge", headers=svc.login("op1")).is_success
    # Untaken for most of an hour: its age is as long as an age gets, with its lateness
    # ("59 min 50 s · over 2 min"), and may not widen the queue.
    with svc.store.begin() as db:
        earlier = utcnow() - timedelta(minutes=59, seconds=50)
        db.execute(update(Alert).where(Alert.id == pk).values(raised_at=earlier))
    # A long word (a reference, a link) may not widen the page either.
    note = {"text": "Police reference CAD-" + "0123456789" * 8}
    assert svc.http.post(
        f"/api/v1/alerts/{pk}/notes", json=note, headers=svc.login("op1")
    ).is_success
    context, blocked = watched_context(chromium, width, height)
    try:
        page = sign_in(context, base, "lead")
        expect(_row(page, pk)).to_be_visible()
        _fits(page, "the queue")
        _shot(page, f"{width}-queue")
        _row(page, pk).click()
        expect(page.locator("#d-facts")).to_contain_text("Featherstonehaugh")
        narrow = width < 1100
        if narrow:  # the alert in the queue's place, its title focused, and a way back
            expect(page.locator("#back-to-queue")).to_be_visible()
            expect(page.locator("#queue-pane")).to_be_hidden()
            expect(page.locator("#d-title")).to_be_focused()
        for key in ("#ack", "#resolve-open", "#map", "#note"):
            page.locator(key).scroll_into_view_if_needed()
            _inside(page, key)
        _fits(page, "an alert")
        if not narrow:  # the queue beside the alert keeps every column, "Taken by" last
            scroll, shown = page.evaluate(
                "(p => [p.scrollWidth, p.clientWidth])(document.querySelector('#queue-pane'))"
            )
            assert scroll <= shown, f"the queue beside the alert is {scroll} px in {shown} px"
        # The order for someone under stress: at a glance (state, who, where, phone), the
        # actions with the note under them, the procedure, the calls it asks for; the
        # escalation, evidence and timeline last.
        expect(page.locator("#d-summary")).to_contain_text("Raised, nobody in charge")
        expect(page.locator("#d-summary")).to_contain_text("Phone")
        expect(page.locator("#d-summary .coords")).to_be_visible()
        expect(page.locator("#d-procedure")).to_be_visible()
        expect(page.locator("#d-calls")).to_be_visible()
        expect(page.locator("#d-escalation .plan-status")).to_be_visible()
        order = [
            "#d-title",
            "#d-summary",
            "#detail > .actions",
            "#note",
            "#d-procedure",
            "#d-calls",
            "#d-escalation",
            "#timeline",
        ]
        tops = page.evaluate(
            "sels => sels.map(s => document.querySelector(s).getBoundingClientRect().top"
            " + scrollY)",
            order,
        )
        assert tops == sorted(tops), dict(zip(order, tops, strict=True))
        expect(page.locator("#d-bar-title")).to_have_text(
            "Panic · Evangeline Featherstonehaugh-Smythe"
        )
        if width < 700:  # on a phone the steps' details are folded but for the next one
            expect(page.locator("#d-procedure .sop-step.current .sop-detail")).to_be_visible()
            expect(
                page.locator("#d-procedure .sop-step:not(.current) .sop-detail").first
            ).to_be_hidden()
        # Nothing draws over the sticky actions: the map scrolled under the bar leaves Take
        # charge the thing under the pointer at its centre.
        page.evaluate("window.scrollTo(0, 0)")
        under = page.evaluate(
            """() => {
              const map = document.querySelector('#map');
              // Twice: the first scroll brings the bar to its sticky place.
              for (let i = 0; i < 2; i++) {
                const ack = document.querySelector('#ack').getBoundingClientRect();
                const z = map.querySelector('.leaflet-control-zoom').getBoundingClientRect();
                window.scrollBy(0, z.top - ack.top);
              }
              const b = document.querySelector('#ack').getBoundingClientRect();
              const hit = document.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
              const m = map.getBoundingClientRect();
              // And where the map's zoom buttons are, now under the bar: the bar, not them.
              const z = map.querySelector('.leaflet-control-zoom').getBoundingClientRect();
              const bar = document.querySelector('#detail > .actions');
              const there = document.elementFromPoint(z.left + z.width / 2, z.top + z.height / 2);
              return [hit && hit.id, m.top < b.bottom && m.bottom > b.top,
                      bar.contains(there)];
            }"""
        )
        assert under == ["ack", True, True], under
        page.evaluate("window.scrollTo(0, 0)")
        _shot(page, f"{width}-alert")
        # The actions stay in reach at the foot of a long alert.
        page.locator("#timeline").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        expect(page.locator("#ack")).to_be_in_viewport()
        if narrow:
            page.click("#back-to-queue")
            expect(_row(page, pk)).to_be_focused()
            page.keyboard.press("a")  # the alert is off screen: A takes nothing
            page.wait_for_timeout(500)
            op = svc.login("op1")
            assert svc.http.get(f"/api/v1/alerts/{pk}", headers=op).json()["state"] == "raised"
        page.click("#tab-map")
        expect(page.locator("#fleetmap")).to_be_visible()
        _fits(page, "the fleet map")
        _shot(page, f"{width}-map")
        page.click("#tab-fleet")
        expect(page.locator("#devices tbody tr").first).to_be_visible()
        _fits(page, "the fleet")
        _shot(page, f"{width}-fleet")
        page.click("#tab-review")
        expect(page.locator("#incidents")).to_be_visible()
        _fits(page, "the review")
        _shot(page, f"{width}-review")
        page.click("#tab-alerts")
        if narrow:  # back in the queue since the Back control: open the alert again
            _row(page, pk).click()
        page.click("#resolve-open")
        for key in ("#outcome", "#resolve-note", "#rs-next", "#rs-cancel"):
            _inside(page, key)
        _shot(page, f"{width}-resolve")
        assert blocked == []
    finally:
        context.close()


def test_deep_link_opens_the_alert_from_any_tab_and_after_sign_in(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    svc.user("lead", Role.SUPERVISOR)
    pk = _raise(svc, "link", "Gus Penn")
    page = sign_in(chrome, base, "lead")
    for tab in ("#tab-fleet", "#tab-review"):
        page.click(tab)
        expect(page.locator("#console")).to_be_hidden()
        page.goto(f"{base}/#alert={pk}")
        expect(page.locator("#console")).to_be_visible()
        expect(page.locator("#d-title")).to_contain_text("Gus Penn")
        expect(page.locator("#tab-alerts")).to_have_attribute("aria-pressed", "true")
        page.goto(f"{base}/#")

    # Opened from an SMS by someone not yet signed in: the alert once they are.
    fresh = chrome.new_page()
    fresh.goto(f"{base}/#alert={pk}")
    fresh.fill("input[name=username]", "lead")
    fresh.fill("input[name=password]", PASSWORD)
    fresh.click("button[type=submit]")
    expect(fresh.locator("#d-title")).to_contain_text("Gus Penn")


def test_the_keyboard_moves_through_the_queue_and_acts(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    first = _raise(svc, "key-a", "Hal Ives")
    second = _raise(svc, "key-b", "Ivy Lund", type="man_down")
    page = sign_in(chrome, base, "op1")
    _row(page, first).focus()
    page.keyboard.press("ArrowDown")
    expect(_row(page, second)).to_be_focused()
    expect(page.locator("#d-title")).to_contain_text("Ivy Lund")
    page.keyboard.press("ArrowUp")
    expect(_row(page, first)).to_be_focused()
    expect(page.locator("#d-title")).to_contain_text("Hal Ives")

    page.keyboard.press("a")  # take charge: focus goes to the note
    expect(page.locator("#note")).to_be_focused(timeout=5_000)
    expect(page.locator("#timeline")).to_contain_text("Taken charge")
    # The note is right under the actions: focusing it scrolls neither the alert's title nor
    # the queue (which keeps its place beside the alert) off the screen.
    expect(page.locator("#d-title")).to_be_in_viewport()
    expect(_row(page, first)).to_be_in_viewport()
    expect(page.locator("#d-bar-title")).to_have_text("Panic · Hal Ives")
    # Typing in a field is typing: "a" and "r" here take nothing and open nothing.
    page.keyboard.type("Called her: a fall on the stairs")
    page.keyboard.press("Enter")
    expect(page.locator("#timeline")).to_contain_text("a fall on the stairs")
    expect(page.locator("#resolve-dialog")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(_row(page, first)).to_be_focused()
    # Taken, Hal's panic went below Ivy's man down, which nobody has taken (order.js).
    page.keyboard.press("ArrowUp")
    expect(page.locator("#d-title")).to_contain_text("Ivy Lund")
    page.keyboard.press("n")
    expect(page.locator("#note")).to_be_focused()
    expect(page.locator("#note")).to_have_value("")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    expect(page.locator("#resolve-dialog")).to_be_visible()
    expect(page.locator("#outcome")).to_be_focused()
    page.keyboard.press("Escape")  # the dialog closes, and only the dialog
    expect(page.locator("#resolve-dialog")).to_be_hidden()
    expect(page.locator("#resolve-open")).to_be_focused()
    op = svc.login("op1")
    states = {a["id"]: a["state"] for a in svc.http.get("/api/v1/alerts", headers=op).json()}
    assert states == {first: "acknowledged", second: "raised"}

    # The focused row's alert is resolved elsewhere: the focus goes to the row in its place.
    _row(page, second).focus()
    r = svc.http.post(f"/api/v1/alerts/{second}/resolve", json={"outcome": "test"}, headers=op)
    assert r.status_code == 200
    expect(_row(page, second)).to_have_count(0)
    expect(_row(page, first)).to_be_focused()


def test_the_queue_puts_what_nobody_has_taken_first(svc: Running, chrome: BrowserContext) -> None:
    """One order for the rows and within a worker's group (order.js): nobody in charge
    first, then by priority, then the oldest. A new panic never falls below a taken one."""
    base = svc.serve_http()
    svc.user("op1")
    panic = _raise(svc, "ord-a", "Ann Ash")
    still = _raise(svc, "ord-b", "Bo Birch", type="no_motion")
    test = _raise(svc, "ord-c", "Cy Cole", type="test")
    op = svc.login("op1")
    page = sign_in(chrome, base, "op1")
    expect(_row(page, test)).to_be_visible()

    def rows_are(ids: list[int]) -> None:
        page.wait_for_function(
            "ids => JSON.stringify([...document.querySelectorAll('#queue tbody tr')]"
            ".map(r => Number(r.dataset.id))) === JSON.stringify(ids)",
            arg=ids,
            timeout=5_000,
        )

    rows_are([panic, still, test])
    # Taken: the panic goes below every alert nobody has taken, a test included (it still
    # waits for someone, or closes itself), and says who has it in words.
    assert svc.http.post(f"/api/v1/alerts/{panic}/acknowledge", headers=op).status_code == 200
    rows_are([still, test, panic])
    expect(_row(page, panic).locator("td").nth(5)).to_have_text("op1")
    # A new panic goes to the top, above the no-motion raised before it.
    fresh = _raise(svc, "ord-d", "Di Dale")
    rows_are([fresh, still, test, panic])
