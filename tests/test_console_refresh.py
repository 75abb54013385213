"""The open alert, kept current without getting in the operator's way (Chromium): a position
update does not stop the recording being listened to, a burst of updates makes a bounded
number of requests (none while the pane is hidden), Back on a phone stays back through
updates and after a resolve, a deep link to an alert that is not there says so, and while
the console is offline its title says so and the pane's times stop."""

from __future__ import annotations

import io
import re
import time
import wave
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect

from monitor.users.models import Role
from tests.browsers import resolve_in_console, sign_in, watched_context
from tests.escalation_support import load
from tests.support import Running, wait_until

ROOT = Path(__file__).parents[1]
DEFAULT_POLICY = ROOT / "escalation" / "default_policy.yaml"


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'vigil.db'}"


def _raise(svc: Running, prefix: str, name: str):  # type: ignore[no-untyped-def]
    """A panic raised by a new badge of worker `name`: the badge, its device record, and the
    alert's id in the service."""
    badge, b = svc.badge(prefix, name=name)
    for i in range(2):
        badge.send_location(lat=51.5 + i * 0.0004, lon=-0.12, acc=8, qos=1)
    device_alert = badge.raise_alert(type="red")
    badge.wait_for("alert_received", alert_id=device_alert, timeout=10)
    op = svc.login("op1")
    (row,) = [
        a
        for a in svc.http.get("/api/v1/alerts", headers=op).json()
        if a["device_id"] == badge.device_id
    ]
    return badge, b, device_alert, int(row["id"])


def _row(page: Page, pk: int):  # type: ignore[no-untyped-def]
    return page.locator(f'#queue tbody tr[data-id="{pk}"]')


def until(page: Page, condition: str, timeout_s: float) -> None:
    """A JavaScript condition, asked from here (the content security policy refuses
    Playwright's own polling, which evaluates strings)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({condition})"):
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {condition}"
        time.sleep(0.1)


class Requests:
    """The requests a page makes about one alert, by part: alert, escalation, calls,
    procedure."""

    def __init__(self, page: Page, pk: int) -> None:
        self.seen: list[str] = []
        self.path = re.compile(rf"/api/v1/alerts/{pk}(/(escalation|calls|procedure))?$")
        page.on("request", self._on)

    def _on(self, request: Request) -> None:
        m = self.path.search(urlparse(request.url).path)
        if m and request.method == "GET":
            self.seen.append(m.group(2) or "alert")

    def count(self) -> dict[str, int]:
        return {p: self.seen.count(p) for p in ("alert", "escalation", "calls", "procedure")}

    def clear(self) -> None:
        self.seen.clear()


def _positions(page: Page, pk: int, n: int) -> None:
    """`n` position messages about alert `pk`, as the hub sends them, all within one task
    (a burst). Their sequence numbers sit between the last one seen and the next real one,
    which is still taken."""
    page.evaluate(
        """([pk, n]) => {
          const seq = state.seq;
          for (let i = 1; i <= n; i++) {
            onMessage({ kind: "alert.position", seq: seq + i / (n + 1), epoch: state.epoch,
              alert_ids: [pk], device_id: "x", lat: 51.5 + i / 1000, lon: -0.12, acc: 5 });
          }
          state.seq = seq;
        }""",
        [pk, n],
    )


def _clip(seconds: int) -> bytes:
    """A quiet WAV recording of `seconds`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 8000 * seconds)
    return out.getvalue()


def test_the_recording_plays_on_through_position_updates(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    badge, b, device_alert, pk = _raise(svc, "rf-audio", "Ada Stone")
    audio = _clip(20)
    badge.send_evidence(
        "clip-1", alert_id=device_alert, data=audio, codec="wav", duration_ms=20_000
    )
    wait_until(
        lambda: (
            svc.http.put(
                f"/api/v1/devices/{b.device_id}/evidence/clip-1",
                content=audio,
                auth=(b.device_id, b.secret),
            ).status_code
            == 200
        ),
        timeout=10,
        what="the upload",
    )
    page = sign_in(chrome, base, "op1")
    requests = Requests(page, pk)
    _row(page, pk).click()
    page.click("#d-evidence button")  # Listen
    player = "document.querySelector('#d-evidence audio')"
    until(page, f"{player} && !{player}.paused && {player}.currentTime > 0.5", 10)
    page.evaluate(f"window.player = {player}")
    started = page.evaluate("window.player.currentTime")
    requests.clear()

    # The worker moves: real positions from the badge, each one a message to the console.
    for i in range(4):
        badge.send_location(lat=51.51 + i * 0.001, lon=-0.12, acc=5, qos=1)
        page.wait_for_timeout(400)
    wait_until(lambda: requests.count()["alert"] >= 1, timeout=5, what="a refresh")
    page.wait_for_timeout(600)
    # The alert was fetched again, and the pane shows the new position…
    expect(page.locator("#d-facts")).to_contain_text("51.51")
    # …while the same player plays on, from where it was.
    assert page.evaluate(f"window.player === {player}"), "the <audio> was replaced"
    assert page.evaluate("!window.player.paused"), "the recording stopped"
    assert page.evaluate("window.player.currentTime") > started
    expect(page.locator("#d-evidence audio")).to_have_count(1)
    # A position changes neither the escalation, nor the calls, nor the procedure.
    assert requests.count()["escalation"] == requests.count()["calls"] == 0
    assert requests.count()["procedure"] == 0


def test_a_burst_of_updates_makes_few_requests_and_none_while_hidden(
    svc: Running, chrome: BrowserContext
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    _, _, _, pk = _raise(svc, "rf-burst", "Ben Ode")
    page = sign_in(chrome, base, "op1")
    requests = Requests(page, pk)
    _row(page, pk).click()
    expect(page.locator("#d-title")).to_contain_text("Ben Ode")
    page.wait_for_timeout(1_500)
    # Opening: each part once; the procedure's first fetch writes "Procedure for …" in the
    # timeline, which fetches the alert and its procedure again, and nothing else.
    opened = requests.count()
    assert opened["escalation"] == 1 and opened["calls"] == 1, opened
    assert opened["alert"] <= 2 and opened["procedure"] <= 2, opened

    requests.clear()
    _positions(page, pk, 8)
    page.wait_for_timeout(1_000)
    assert requests.count() == {"alert": 1, "escalation": 0, "calls": 0, "procedure": 0}

    # Updates arriving for a second and more: at most one refresh per quarter second.
    requests.clear()
    began = time.monotonic()
    for _ in range(10):
        _positions(page, pk, 2)
        page.wait_for_timeout(100)
    page.wait_for_timeout(500)
    most = int((time.monotonic() - began) / 0.25) + 1
    assert 2 <= requests.count()["alert"] <= most, (requests.count(), most)
    assert requests.count()["alert"] < 20  # not one per message

    # The Map tab in front, the pane hidden: nothing is fetched for it…
    page.click("#tab-map")
    expect(page.locator("#fleetmap")).to_be_visible()
    page.wait_for_timeout(300)
    requests.clear()
    for _ in range(20):
        _positions(page, pk, 1)
    page.wait_for_timeout(1_000)
    assert sum(requests.count().values()) == 0, requests.count()
    # …until it shows again: once.
    page.click("#tab-alerts")
    page.wait_for_timeout(1_000)
    assert requests.count() == {"alert": 1, "escalation": 0, "calls": 0, "procedure": 0}


def test_back_on_a_phone_stays_back_through_updates_and_after_a_resolve(
    svc: Running, chromium: Browser
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    svc.user("lead", Role.SUPERVISOR)
    badge, _, _, pk = _raise(svc, "rf-back", "Cai Rowe")
    context, _ = watched_context(chromium, 390, 844)
    try:
        page = sign_in(context, base, "lead")
        _row(page, pk).click()
        expect(page.locator("#d-title")).to_be_focused()
        page.click("#back-to-queue")
        expect(_row(page, pk)).to_be_focused()
        # The worker moves and someone writes a note: the alert changes, the queue stays.
        for i in range(3):
            badge.send_location(lat=51.52 + i * 0.001, lon=-0.12, acc=5, qos=1)
        r = svc.http.post(
            f"/api/v1/alerts/{pk}/notes", json={"text": "On my way"}, headers=svc.login("op1")
        )
        assert r.is_success
        page.wait_for_timeout(1_500)
        expect(page.locator("#queue-pane")).to_be_visible()
        expect(page.locator("#detail")).to_be_hidden()
        expect(page.locator("#console")).not_to_have_class(re.compile(r"\bdetail-open\b"))
        expect(_row(page, pk)).to_be_focused()

        # Opened again, it is as it is now.
        _row(page, pk).click()
        expect(page.locator("#d-title")).to_be_focused()
        expect(page.locator("#timeline")).to_contain_text("On my way")

        # Resolved: the queue, and the resolved alert's own updates do not bring it back.
        resolve_in_console(page, "false_alarm", "Pressed by mistake")
        expect(page.locator("#resolve-dialog")).to_be_hidden()
        page.wait_for_timeout(1_500)
        expect(page.locator("#detail")).to_be_hidden()
        expect(page.locator("#queue-pane")).to_be_visible()
        assert page.evaluate("document.activeElement !== document.body")
    finally:
        context.close()


def test_a_link_to_an_alert_not_there_says_so_and_a_link_opens_like_a_click(
    svc: Running, chromium: Browser
) -> None:
    base = svc.serve_http()
    svc.user("op1")
    _, _, _, pk = _raise(svc, "rf-link", "Dee Marsh")
    _, _, _, other = _raise(svc, "rf-link2", "Eli Moss")
    context, _ = watched_context(chromium, 390, 844)
    try:
        page = sign_in(context, base, "op1")
        page.goto(f"{base}/#alert=99999")
        expect(page.locator("#link-error")).to_have_text(
            "Alert 99999 was not found, or is not yours to see."
        )
        assert page.evaluate("state.selected") is None
        assert page.evaluate("location.hash") == ""  # handled: the same link can come again
        expect(page.locator("#detail")).to_be_hidden()

        # On a phone, a link opens the alert as a click does: its title has the focus.
        page.evaluate(f"location.hash = '#alert={pk}'")
        expect(page.locator("#d-title")).to_contain_text("Dee Marsh")
        expect(page.locator("#d-title")).to_be_focused()
        expect(page.locator("#link-error")).to_be_hidden()
        assert page.evaluate("location.hash") == ""
        # Elsewhere meanwhile, the same link again opens it again.
        page.click("#back-to-queue")
        _row(page, other).click()
        expect(page.locator("#d-title")).to_contain_text("Eli Moss")
        page.evaluate(f"location.hash = '#alert={pk}'")
        expect(page.locator("#d-title")).to_contain_text("Dee Marsh")
    finally:
        context.close()


def test_offline_the_title_says_so_and_the_panes_times_stop(
    svc: Running, chrome: BrowserContext
) -> None:
    load(svc, DEFAULT_POLICY.read_text())
    base = svc.serve_http()
    svc.user("op1")
    _, _, _, pk = _raise(svc, "rf-off", "Fin Hale")
    page = sign_in(chrome, base, "op1")
    expect(page).to_have_title(re.compile(r"^\(1\) PANIC · Vigil$"))
    _row(page, pk).click()
    ago = page.locator("#d-facts time.ago").first
    countdown = page.locator("#d-escalation .countdown").first
    expect(countdown).to_be_visible()

    svc.stop_http()
    expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"))
    expect(page).to_have_title(re.compile(r"^OFFLINE · \(1\) PANIC · Vigil$"))
    page.wait_for_timeout(1_200)
    frozen = ago.text_content(), countdown.text_content()
    page.wait_for_timeout(2_200)
    assert (ago.text_content(), countdown.text_content()) == frozen, "the pane's times must stop"

    svc.serve_http(port=urlparse(base).port)
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"), timeout=15_000)
    expect(page).to_have_title(re.compile(r"^\(1\) PANIC · Vigil$"))
